// git started through a waiting Perl launcher (src/git/launcher.ts) must behave exactly as a
// spawned git: the arguments, environment and folder it was given byte for byte, its input
// after the request frame, its exit status, its process group killed as one, and an argument
// with a NUL byte refused as Node's spawn refuses it.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { test } from 'node:test';
import { type ChildProcess } from 'node:child_process';
import { killGit, spawnGit } from '../../src/git/runner.ts';
import { gitOk, tmpDir } from '../helpers/git.ts';

const g = { home: tmpDir('palisade-launcher-') };

function run(args: string[], o: { input?: string; env?: Record<string, string>; cwd?: string } = {}): Promise<{ child: ChildProcess; code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawnGit(g, args, { timeoutMs: 10_000, env: o.env, cwd: o.cwd });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d));
    child.stderr!.on('data', (d: Buffer) => (err += d));
    child.stdin!.end(o.input);
    child.on('close', (code) => resolve({ child, code, out, err }));
  });
}

/** Runs git until one of the runs came from a launcher (the first may be spawned while the launchers start). */
async function fromLauncher(args: string[], o: Parameters<typeof run>[1] = {}) {
  for (let i = 0; i < 50; i++) {
    const r = await run(args, o);
    if (r.child.spawnfile === 'perl') return r;
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error('no launcher was ever used');
}

test('arguments, environment, folder and input reach git through a launcher unchanged', async () => {
  const dir = tmpDir('palisade-launcher-wd-');
  await gitOk(['init', '-q', '--bare', dir]);
  const odd = 'a value with spaces, "quotes", \\backslashes\\, = signs, a\nnewline and ünïcödé ✓';
  const r = await fromLauncher(['-c', `user.odd=${odd}`, 'config', '--get', 'user.odd'], { cwd: dir });
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out, `${odd}\n`);
  // the environment is exactly the one given (nothing of the server's leaks in)
  const env = await fromLauncher(['var', 'GIT_AUTHOR_IDENT'], { env: { GIT_AUTHOR_NAME: 'Zoë = Ünïcode', GIT_AUTHOR_EMAIL: 'z@example.com', GIT_AUTHOR_DATE: '1700000000 +0000' } });
  assert.equal(env.out, 'Zoë = Ünïcode <z@example.com> 1700000000 +0000\n');
  // the folder: git finds the repository from where it runs
  const where = await fromLauncher(['rev-parse', '--absolute-git-dir'], { cwd: dir });
  assert.equal(fs.realpathSync(where.out.trim()), fs.realpathSync(dir));
  // input after the request frame is git's: the hash of exactly these bytes
  const input = 'x'.repeat(100_000) + '\u0001\u0002 end';
  const h = await fromLauncher(['hash-object', '--stdin'], { input });
  const want = execFileSync('git', ['hash-object', '--stdin'], { input }).toString();
  assert.equal(h.out, want);
  // an exit status other than 0
  const bad = await fromLauncher(['rev-parse', '--verify', '--quiet', 'refs/heads/none'], { cwd: dir });
  assert.equal(bad.code, 1);
});

test('a git from a launcher is killed with its whole process group; a NUL byte is refused', async () => {
  await fromLauncher(['--version']); // launchers are ready from here on
  // a real repository: cat-file then waits on its stdin until it is killed
  const repo = tmpDir('palisade-launcher-repo-');
  await gitOk(['init', '-q', '--bare', repo]);
  let child: ChildProcess | undefined;
  for (let i = 0; i < 50 && child?.spawnfile !== 'perl'; i++) {
    child = spawnGit(g, ['cat-file', '--batch'], { timeoutMs: 10_000, cwd: os.tmpdir(), env: { GIT_DIR: repo } });
    if (child.spawnfile !== 'perl') {
      killGit(child);
      await new Promise((res) => setTimeout(res, 50));
    }
  }
  assert.equal(child!.spawnfile, 'perl');
  // it leads its own process group (the launcher was started detached and exec'ed git in place)
  const stat = fs.readFileSync(`/proc/${child!.pid}/stat`, 'latin1');
  assert.equal(Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]), child!.pid, 'process group id');
  const closed = new Promise<[number | null, NodeJS.Signals | null]>((res) => child!.on('close', (code, sig) => res([code, sig])));
  killGit(child!);
  const [code, sig] = await closed;
  assert.equal(sig, 'SIGKILL', `ended by the kill (${code}, ${sig})`);
  assert.throws(() => process.kill(-child!.pid!, 0), { code: 'ESRCH' }, 'nothing of its group is left');
  assert.throws(() => spawnGit(g, ['config', 'a\0b'], { timeoutMs: 1000 }), /NUL/);
});
