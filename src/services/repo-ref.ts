import { isUuid, repoNameProblem } from '../domain/validate.ts';
import type { RepoRow, Store } from '../store/index.ts';

/**
 * Finds a repository by id or full name, without any access check: for services that
 * authorize next. Malformed input finds nothing.
 */
export function findRepoByRef(store: Store, idOrName: string): Promise<RepoRow | undefined> {
  const lower = idOrName.toLowerCase();
  if (isUuid(lower)) return store.findRepoById(store.db, lower);
  if (repoNameProblem(idOrName)) return Promise.resolve(undefined);
  return store.findRepoByName(store.db, idOrName);
}
