import { type HgEnv, runHg } from './runner.ts';

export interface HgNode {
  name: string;
  type: 'file' | 'dir';
}

const REV_RE = /^[A-Za-z0-9_][A-Za-z0-9._\/+-]{0,199}$/;

/**
 * A revision given by a caller as a revset that can only be a name: a changeset id (full or
 * short), `tip`, a branch, tag or bookmark. It is quoted, so hg looks it up as one symbol and
 * never parses it as a revset expression (no functions, no ranges).
 */
export function hgSymbol(rev: string): string | undefined {
  if (!REV_RE.test(rev) || rev.includes('..')) return undefined;
  return `"${rev}"`;
}

/**
 * Every file and folder under `root` (normalised: "" or "a/b") at `rev`, flat, paths from the
 * repository root, as get_repo_nodes answers for git; undefined when the revision or the path
 * does not exist.
 */
export async function listHgTree(h: HgEnv, dir: string, rev: string, root: string, timeoutMs: number): Promise<HgNode[] | undefined> {
  const symbol = hgSymbol(rev);
  if (!symbol) return undefined;
  // run in the repository's root: `hg files` prints paths relative to the working folder
  const r = await runHg(h, ['-R', dir, 'files', '-0', '-r', symbol], { cwd: dir, timeoutMs, maxOutput: 64 << 20 }, [dir, symbol]);
  // exit 1: no files at that revision (an empty changeset); anything else: no such revision
  if (r.code !== 0 && !(r.code === 1 && r.stdout.length === 0 && !r.stderr)) return undefined;
  const files = r.stdout.toString('utf8').split('\0').filter(Boolean);
  const prefix = root ? `${root}/` : '';
  const under = files.filter((f) => f.startsWith(prefix));
  if (root && under.length === 0) return undefined;
  const dirs = new Set<string>();
  for (const f of under) {
    const parts = f.split('/');
    for (let i = root ? root.split('/').length + 1 : 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  return [...[...dirs].sort().map((name) => ({ name, type: 'dir' as const })), ...under.map((name) => ({ name, type: 'file' as const }))];
}
