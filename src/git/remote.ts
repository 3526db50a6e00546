import { type GitEnv, runGit } from './runner.ts';

const FETCH_GUARDS = (allowFile: boolean) => [
  '-c', 'protocol.allow=never',
  '-c', 'protocol.http.allow=always',
  '-c', 'protocol.https.allow=always',
  '-c', `protocol.file.allow=${allowFile ? 'always' : 'never'}`,
  '-c', 'http.followRedirects=false',
];

function gitError(stderr: string, code: number | null): Error {
  const msg = stderr.split('\n').filter((l) => l.startsWith('fatal:') || l.startsWith('error:')).join(' ').replace(/[a-z]+:\/\/[^@\s]*@/g, '***@');
  return new Error(msg || `git exited with ${code}`);
}

/** The branch a remote's HEAD points at, or undefined (empty remote or no symref). */
export async function remoteHeadBranch(g: GitEnv, url: string, opts: { allowFile: boolean; timeoutMs: number }): Promise<{ head: string | undefined; empty: boolean }> {
  const r = await runGit(g, [...FETCH_GUARDS(opts.allowFile), 'ls-remote', '--symref', '--', url, 'HEAD', 'refs/heads/*'], { timeoutMs: opts.timeoutMs, maxOutput: 16 << 20 }, [url]);
  if (r.code !== 0) throw gitError(r.stderr, r.code);
  const out = r.stdout.toString('utf8');
  const m = /^ref: refs\/heads\/(\S+)\tHEAD$/m.exec(out);
  return { head: m?.[1], empty: out.trim() === '' };
}

/** Fetches `refspecs` from `url` into `dir` (optionally shallow). */
export async function fetchRefspecs(g: GitEnv, dir: string, url: string, refspecs: string[], opts: { allowFile: boolean; timeoutMs: number; depth?: number; prune?: boolean }): Promise<void> {
  const args = [...FETCH_GUARDS(opts.allowFile), '--git-dir', dir, 'fetch', '--quiet', '--no-tags', '--no-write-fetch-head'];
  if (opts.prune) args.push('--prune');
  if (opts.depth) args.push(`--depth=${opts.depth}`);
  args.push('--', url, ...refspecs);
  const r = await runGit(g, args, { timeoutMs: opts.timeoutMs, maxOutput: 1 << 20 }, [url, ...refspecs.filter((s) => !s.startsWith('+'))]);
  if (r.code !== 0) throw gitError(r.stderr, r.code);
}

/** Pushes `refspecs` to `url` without force; false when the remote refused (it moved meanwhile). */
export async function pushRefspecs(g: GitEnv, dir: string, url: string, refspecs: string[], opts: { allowFile: boolean; timeoutMs: number }): Promise<{ ok: boolean; message: string }> {
  for (const r of refspecs) if (r.startsWith('+') || r.startsWith('-')) throw new Error('refusing a forced or odd refspec');
  const args = [...FETCH_GUARDS(opts.allowFile), '--git-dir', dir, 'push', '--porcelain', '--', url, ...refspecs];
  const r = await runGit(g, args, { timeoutMs: opts.timeoutMs, maxOutput: 1 << 20 }, [url, ...refspecs]);
  if (r.code === 0) return { ok: true, message: '' };
  const rejected = /\[rejected\]|non-fast-forward|fetch first/.test(r.stdout.toString() + r.stderr);
  if (rejected) return { ok: false, message: 'the remote has commits that are not here' };
  throw gitError(r.stderr, r.code);
}

/** True when `a` is an ancestor of (or equal to) `b`. */
export async function isAncestor(g: GitEnv, dir: string, a: string, b: string): Promise<boolean> {
  const r = await runGit(g, ['--git-dir', dir, 'merge-base', '--is-ancestor', a, b], { timeoutMs: 60_000 }, [a, b]);
  return r.code === 0;
}

/**
 * Fetches every branch and tag of `url` into the bare repository `dir`,
 * mirroring them (`--prune`, forced updates), optionally shallow. The URL must
 * have passed the SSRF guard; redirects are not followed and only http(s)
 * and, when allowed, file are permitted protocols.
 */
export function fetchMirror(g: GitEnv, dir: string, url: string, opts: { allowFile: boolean; timeoutMs: number; depth?: number }): Promise<void> {
  return fetchRefspecs(g, dir, url, ['+refs/heads/*:refs/heads/*', '+refs/tags/*:refs/tags/*'], { ...opts, prune: true });
}
