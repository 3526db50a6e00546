import { type GitEnv, runGit } from './runner.ts';

/**
 * How git reaches a remote that the outbound guard has checked: the URL (without credentials),
 * whether it is a local path, `-c` settings (the pinned addresses) and environment (credentials
 * as an extra header, out of the command line and out of messages).
 */
export interface RemoteAccess {
  url: string;
  allowFile: boolean;
  /** `key=value` settings passed as `-c` */
  config: string[];
  env: Record<string, string>;
}

const guards = (r: RemoteAccess): string[] => [
  '-c', 'protocol.allow=never',
  '-c', 'protocol.http.allow=always',
  '-c', 'protocol.https.allow=always',
  '-c', `protocol.file.allow=${r.allowFile ? 'always' : 'never'}`,
  '-c', 'http.followRedirects=false',
  ...r.config.flatMap((c) => ['-c', c]),
];

/** git's complaint in one line, with any credentials in URLs hidden and no command line. */
function gitError(stderr: string, code: number | null): Error {
  const msg = stderr
    .split('\n')
    .filter((l) => l.startsWith('fatal:') || l.startsWith('error:'))
    .join(' ')
    .replace(/([a-z][a-z0-9+.-]*:\/\/)[^/@\s]*@/gi, '$1***@')
    .replace(/'\/[^']*'/g, "'…'")
    .slice(0, 500);
  return new Error(msg || `git exited with ${code}`);
}

/** The branch a remote's HEAD points at, or undefined (empty remote or no symref). */
export async function remoteHeadBranch(g: GitEnv, remote: RemoteAccess, opts: { timeoutMs: number; signal?: AbortSignal }): Promise<{ head: string | undefined; empty: boolean }> {
  const r = await runGit(g, [...guards(remote), 'ls-remote', '--symref', '--', remote.url, 'HEAD', 'refs/heads/*'], { timeoutMs: opts.timeoutMs, signal: opts.signal, maxOutput: 16 << 20, env: remote.env }, [remote.url]);
  if (r.code !== 0) throw gitError(r.stderr, r.code);
  const out = r.stdout.toString('utf8');
  const m = /^ref: refs\/heads\/(\S+)\tHEAD$/m.exec(out);
  return { head: m?.[1], empty: out.trim() === '' };
}

/** Fetches `refspecs` from the remote into `dir` (optionally shallow). */
export async function fetchRefspecs(g: GitEnv, dir: string, remote: RemoteAccess, refspecs: string[], opts: { timeoutMs: number; signal?: AbortSignal; depth?: number; prune?: boolean }): Promise<void> {
  const args = [...guards(remote), '--git-dir', dir, 'fetch', '--quiet', '--no-tags', '--no-write-fetch-head'];
  if (opts.prune) args.push('--prune');
  if (opts.depth) args.push(`--depth=${opts.depth}`);
  args.push('--', remote.url, ...refspecs);
  const r = await runGit(g, args, { timeoutMs: opts.timeoutMs, signal: opts.signal, maxOutput: 1 << 20, env: remote.env }, [remote.url, ...refspecs.filter((s) => !s.startsWith('+'))]);
  if (r.code !== 0) throw gitError(r.stderr, r.code);
}

/** Pushes `refspecs` to the remote without force; false when the remote refused (it moved meanwhile). */
export async function pushRefspecs(g: GitEnv, dir: string, remote: RemoteAccess, refspecs: string[], opts: { timeoutMs: number }): Promise<{ ok: boolean; message: string }> {
  for (const r of refspecs) if (r.startsWith('+') || r.startsWith('-')) throw new Error('refusing a forced or odd refspec');
  const args = [...guards(remote), '--git-dir', dir, 'push', '--porcelain', '--', remote.url, ...refspecs];
  const r = await runGit(g, args, { timeoutMs: opts.timeoutMs, maxOutput: 1 << 20, env: remote.env }, [remote.url, ...refspecs]);
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
 * Fetches every branch and tag of the remote into the bare repository `dir`, mirroring them
 * (`--prune`, forced updates), optionally shallow. Redirects are not followed and only http(s)
 * and, for a checked local path, file are permitted protocols.
 */
export function fetchMirror(g: GitEnv, dir: string, remote: RemoteAccess, opts: { timeoutMs: number; signal?: AbortSignal; depth?: number }): Promise<void> {
  return fetchRefspecs(g, dir, remote, ['+refs/heads/*:refs/heads/*', '+refs/tags/*:refs/tags/*'], { ...opts, prune: true });
}
