import { type GitEnv, runGit } from './runner.ts';

/**
 * Fetches every branch and tag of `url` into the bare repository `dir`,
 * mirroring them (`--prune`, forced updates). The URL must have passed the
 * SSRF guard; redirects are not followed and only http(s) and, when allowed,
 * file are permitted protocols.
 */
export async function fetchMirror(g: GitEnv, dir: string, url: string, opts: { allowFile: boolean; timeoutMs: number }): Promise<void> {
  const args = [
    '-c', 'protocol.allow=never',
    '-c', 'protocol.http.allow=always',
    '-c', 'protocol.https.allow=always',
    '-c', `protocol.file.allow=${opts.allowFile ? 'always' : 'never'}`,
    '-c', 'http.followRedirects=false',
    '--git-dir', dir,
    'fetch', '--quiet', '--prune', '--no-write-fetch-head', '--', url,
    '+refs/heads/*:refs/heads/*', '+refs/tags/*:refs/tags/*',
  ];
  const r = await runGit(g, args, { timeoutMs: opts.timeoutMs, maxOutput: 1 << 20 }, [url]);
  if (r.code !== 0) {
    const msg = r.stderr.split('\n').filter((l) => l.startsWith('fatal:') || l.startsWith('error:')).join(' ').replace(/[a-z]+:\/\/[^@\s]*@/g, '***@');
    throw new Error(msg || `git fetch exited with ${r.code}`);
  }
}
