import { isRevision } from '../domain/validate.ts';
import { type GitEnv, runGit } from './runner.ts';

export interface TreeNode {
  name: string;
  type: 'file' | 'dir';
}

/**
 * Every file and folder under `root` (recursively, flat, paths from the
 * repository root) at revision `rev`, or undefined when the revision or path
 * does not exist. `root` must already be normalised ("" or "a/b").
 */
export async function listTree(g: GitEnv, dir: string, rev: string, root: string, timeoutMs: number): Promise<TreeNode[] | undefined> {
  if (!isRevision(rev)) return undefined;
  const treeish = root === '' ? `${rev}^{tree}` : `${rev}:${root}`;
  const r = await runGit(g, ['--git-dir', dir, 'ls-tree', '-r', '-t', '-z', treeish], { timeoutMs, maxOutput: 64 << 20 }, [treeish]);
  if (r.code !== 0) return undefined;
  const out: TreeNode[] = [];
  for (const entry of r.stdout.toString('utf8').split('\0')) {
    if (!entry) continue;
    const tab = entry.indexOf('\t');
    const type = entry.slice(0, tab).split(' ')[1];
    const rel = entry.slice(tab + 1);
    if (type === 'tree') out.push({ name: root ? `${root}/${rel}` : rel, type: 'dir' });
    else if (type === 'blob') out.push({ name: root ? `${root}/${rel}` : rel, type: 'file' });
  }
  return out;
}

/** Normalises a path inside a repository: "" for the root; undefined for anything with `..`, `.` or control characters. */
export function normaliseRepoPath(p: string): string | undefined {
  const parts = p.split('/').filter((s) => s !== '');
  if (parts.some((s) => s === '..' || s === '.' || /[\x00-\x1f]/.test(s))) return undefined;
  return parts.join('/');
}
