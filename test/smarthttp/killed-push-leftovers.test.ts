// Leftover regression. receive-pack writes an incoming push into objects/tmp_objdir-incoming-* and
// removes it itself unless it is killed with SIGKILL: a server killed with kill -9 during a push
// (the OOM killer, a container stop) left one behind for ever, up to the pack size limit each, and
// so did every push the server itself killed (client gone, time or idle limit). Now the server
// sweeps them at start, in the background, and after a killed or failed push of a repository that
// no other push in this process is writing to; the repository stays sound (git fsck).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { repoDir } from '../../src/git/repo-path.ts';
import { git, gitOk, makeWorkTree, repoUrl } from '../helpers/git.ts';
import { api, childProcesses, startServer, type TestServer } from '../helpers/server.ts';

const quarantines = (dir: string) => fs.readdirSync(path.join(dir, 'objects')).filter((n) => n.startsWith('tmp_objdir-incoming-') || n.startsWith('incoming-'));

async function waitFor(f: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A repository with one small commit, and a work tree holding a large incompressible commit on top. */
async function bigPush(s: TestServer): Promise<{ repoId: string; dir: string; wc: string; url: string; before: string }> {
  const repoId = (await api(s, 'POST', '/git/v1/repo', { key: s.adminKey, body: {} })).body.repoId as string;
  const url = repoUrl(s.url, repoId, 'x-access-token', s.adminKey);
  const wc = await makeWorkTree(1);
  await gitOk(['push', url, 'main'], { cwd: wc });
  const before = (await gitOk(['rev-parse', 'HEAD'], { cwd: wc })).trim();
  fs.writeFileSync(path.join(wc, 'big.bin'), crypto.randomBytes(48 * 1024 * 1024));
  await gitOk(['add', '.'], { cwd: wc });
  await gitOk(['commit', '-qm', 'big'], { cwd: wc });
  return { repoId, dir: repoDir(s.dataDir, repoId), wc, url, before };
}

/** SIGKILL for a process and everything below it, all at once (as the OOM killer or a container stop would). */
function killTree(pid: number): void {
  const all = [pid];
  for (let i = 0; i < all.length; i++) all.push(...childProcesses(all[i]!).map((c) => c.pid));
  for (const p of all) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

// One node alone with its data folder: quarantines are swept at once, also on PostgreSQL (whose
// default grace allows for other nodes; test/cluster covers several).
const ALONE = { PALISADE_QUARANTINE_GRACE_SECONDS: '0' };

test('kill -9 of the server during a push: the quarantine left behind is swept at the next start', async () => {
  const s = await startServer(ALONE);
  let restarted: TestServer | undefined;
  try {
    const { dir, wc, url, before } = await bigPush(s);
    const push = git(['push', url, 'main'], { cwd: wc });
    await waitFor(() => quarantines(dir).length > 0, 20_000, 'the push to reach receive-pack');
    const exited = new Promise((r) => s.proc.once('exit', r));
    killTree(s.proc.pid!);
    await exited;
    assert.notEqual((await push).code, 0, 'the push failed with the server');
    await new Promise((r) => setTimeout(r, 300)); // let an orphaned index-pack notice its end of input
    assert.ok(quarantines(dir).length > 0, 'the killed push left its quarantine behind');

    restarted = await startServer(ALONE, { reuse: s });
    await waitFor(() => quarantines(dir).length === 0, 10_000, 'the sweep at start');
    await gitOk(['--git-dir', dir, 'fsck', '--full', '--no-dangling']);
    const refs = await gitOk(['ls-remote', repoUrl(restarted.url, path.basename(dir, '.git'), 'x-access-token', s.adminKey)]);
    assert.match(refs, new RegExp(`^${before}\\trefs/heads/main$`, 'm'), 'the repository still serves its old tip');
  } finally {
    await restarted?.stop();
    await s.stop();
  }
});

test('a push whose client is killed: the server sweeps the quarantine its killed receive-pack left', async () => {
  const s = await startServer(ALONE);
  try {
    const { dir, wc, url } = await bigPush(s);
    // the client in its own process group, so that git and its remote helper die together
    const client = spawn('git', ['push', url, 'main'], { cwd: wc, detached: true, stdio: 'ignore', env: { PATH: process.env.PATH, HOME: wc, GIT_CONFIG_NOSYSTEM: '1', GIT_TERMINAL_PROMPT: '0' } });
    await waitFor(() => quarantines(dir).length > 0, 20_000, 'the push to reach receive-pack');
    process.kill(-client.pid!, 'SIGKILL');
    await waitFor(() => quarantines(dir).length === 0, 10_000, 'the quarantine to be swept');
    await gitOk(['--git-dir', dir, 'fsck', '--full', '--no-dangling']);
  } finally {
    await s.stop();
  }
});
