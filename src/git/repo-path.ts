import path from 'node:path';
import { isUuid } from '../domain/validate.ts';

/**
 * A repository's folder, derived from its id only (never its name):
 * `DATA/repos/<first 2 hex of id>/<id>.git`. Throws on anything but a UUID,
 * so no input can steer the path.
 */
export function repoDir(dataDir: string, repoId: string): string {
  if (!isUuid(repoId)) throw new Error('repository id is not a UUID');
  return path.join(dataDir, 'repos', repoId.slice(0, 2), `${repoId}.git`);
}

/** Where repositories are assembled before being renamed into place, and moved before removal. */
export const scratchDir = (dataDir: string): string => path.join(dataDir, 'repos', '.scratch');
