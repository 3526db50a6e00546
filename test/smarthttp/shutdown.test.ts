// SIGTERM during a push: the push in flight completes, then the server exits cleanly.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { repoDir } from '../../src/git/repo-path.ts';
import { git, gitOk, makeWorkTree, repoUrl } from '../helpers/git.ts';
import { api, startServer } from '../helpers/server.ts';

test('graceful shutdown lets an in-flight push finish', async () => {
  const s = await startServer();
  try {
    const repoId = (await api(s, 'POST', '/git/v1/repo', { key: s.adminKey, body: {} })).body.repoId as string;
    const wc = await makeWorkTree(0);
    // incompressible data, so the push takes a moment on the wire
    fs.writeFileSync(path.join(wc, 'big.bin'), crypto.randomBytes(40 * 1024 * 1024));
    await gitOk(['add', '.'], { cwd: wc });
    await gitOk(['commit', '-qm', 'big'], { cwd: wc });
    const head = (await gitOk(['rev-parse', 'HEAD'], { cwd: wc })).trim();

    const dir = repoDir(s.dataDir, repoId);
    const push = git(['push', repoUrl(s.url, repoId, 'x-access-token', s.adminKey), 'main'], { cwd: wc });
    // receive-pack quarantines incoming objects in objects/incoming-*: that is "in flight"
    const deadline = Date.now() + 20_000;
    while (!fs.readdirSync(path.join(dir, 'objects')).some((n) => n.startsWith('incoming-') || n.startsWith('tmp_objdir'))) {
      if (Date.now() > deadline) throw new Error('push never reached receive-pack');
      await new Promise((r) => setTimeout(r, 5));
    }
    const exited = new Promise<number | null>((r) => s.proc.once('exit', (code) => r(code)));
    s.proc.kill('SIGTERM');
    const result = await push;
    assert.equal(result.code, 0, result.stderr);
    assert.equal(await exited, 0, 'the server exits cleanly after the push');
    const ref = (await gitOk(['--git-dir', dir, 'rev-parse', 'refs/heads/main'])).trim();
    assert.equal(ref, head);
  } finally {
    await s.stop();
  }
});
