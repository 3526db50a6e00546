import { ZERO_OID } from './objects.ts';
import { type GitEnv, runGit } from './runner.ts';

/**
 * Moves `ref` from `oldOid` (ZERO_OID: must not exist) to `newOid`
 * (ZERO_OID: delete) with `git update-ref`, which takes the ref's lock and
 * checks the old value: a compare-and-swap. Returns false when the ref had
 * moved (or been created) meanwhile.
 */
export async function casRef(g: GitEnv, dir: string, ref: string, newOid: string, oldOid: string, reason: string): Promise<boolean> {
  if (!/^refs\/(heads|tags)\/[^\s~^:?*[\\]+$/.test(ref) || ref.includes('..')) throw new Error('refusing to update an odd ref name');
  const args = newOid === ZERO_OID ? ['--git-dir', dir, 'update-ref', '-m', reason, '-d', ref, oldOid] : ['--git-dir', dir, 'update-ref', '-m', reason, ref, newOid, oldOid];
  const r = await runGit(g, args, { timeoutMs: 30_000 }, [ref]);
  if (r.code === 0) return true;
  if (/cannot lock ref|is at .* but expected|already exists|unable to resolve reference/i.test(r.stderr)) return false;
  throw new Error(`git update-ref failed: ${r.stderr.trim().slice(0, 500)}`);
}
