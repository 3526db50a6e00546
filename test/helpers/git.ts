import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface GitResult {
  code: number;
  stdout: string;
  stderr: string;
}

const home = fs.mkdtempSync(path.join(os.tmpdir(), 'palisade-git-home-'));

/** Runs the real `git` CLI in an isolated environment (no user or system config, no prompts). */
export function git(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<GitResult> {
  return new Promise((resolve) => {
    execFile(
      'git',
      args,
      {
        cwd: opts.cwd,
        maxBuffer: 256 * 1024 * 1024,
        env: {
          PATH: process.env.PATH,
          HOME: home,
          GIT_CONFIG_NOSYSTEM: '1',
          GIT_CONFIG_GLOBAL: '/dev/null',
          GIT_TERMINAL_PROMPT: '0',
          GIT_ASKPASS: '',
          LC_ALL: 'C',
          GIT_AUTHOR_NAME: 'Test Author',
          GIT_AUTHOR_EMAIL: 'author@example.com',
          GIT_COMMITTER_NAME: 'Test Committer',
          GIT_COMMITTER_EMAIL: 'committer@example.com',
          ...opts.env,
        },
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

/** Like git(), but throws with git's stderr when it fails. */
export async function gitOk(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<string> {
  const r = await git(args, opts);
  if (r.code !== 0) throw new Error(`git ${args.join(' ')} failed (${r.code}):\n${r.stderr}`);
  return r.stdout;
}

export const tmpDir = (prefix = 'palisade-wc-'): string => fs.mkdtempSync(path.join(os.tmpdir(), prefix));

/** A fresh working copy with `n` commits on main, each adding one file. */
export async function makeWorkTree(n = 1): Promise<string> {
  const dir = tmpDir();
  await gitOk(['init', '-q', '-b', 'main', dir]);
  for (let i = 0; i < n; i++) {
    fs.writeFileSync(path.join(dir, `file${i}.txt`), `content ${i}\n`);
    await gitOk(['add', '.'], { cwd: dir });
    await gitOk(['commit', '-q', '-m', `commit ${i}`], { cwd: dir });
  }
  return dir;
}

/** An authenticated URL for a repository: user:password in the URL, as git users write it. */
export function repoUrl(base: string, repo: string, user?: string, password?: string): string {
  const u = new URL(`${base}/${repo}`);
  if (user !== undefined) {
    u.username = encodeURIComponent(user);
    u.password = encodeURIComponent(password ?? '');
  }
  return u.toString();
}
