// Data-folder exposure regression. The data folder holds the database (password hashes, token
// hashes, grants), the webhook signing key and every private repository, but it was created
// world-readable (0644 database, 0755 folders): any local user could copy it. Now the server runs
// with umask 0o077 (0700 folders, 0600 files, git's own files included) and tightens a data folder
// made by an earlier version at start.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { gitOk, makeWorkTree, repoUrl } from '../helpers/git.ts';
import { api, startServer, type TestServer } from '../helpers/server.ts';

/** Every path under `root` (itself included) that group or others may read, write or enter. */
function exposed(root: string): string[] {
  const out: string[] = [];
  const walk = (p: string) => {
    const st = fs.lstatSync(p);
    if (st.mode & 0o077) out.push(`${(st.mode & 0o777).toString(8)} ${path.relative(root, p) || '.'}`);
    if (st.isDirectory()) for (const e of fs.readdirSync(p)) walk(path.join(p, e));
  };
  walk(root);
  return out;
}

test('the data folder is readable by its owner only, after start and a push', async () => {
  const s = await startServer();
  let restarted: TestServer | undefined;
  try {
    const repoId = (await api(s, 'POST', '/git/v1/repo', { key: s.adminKey, body: {} })).body.repoId as string;
    await gitOk(['push', repoUrl(s.url, repoId, 'x-access-token', s.adminKey), 'main'], { cwd: await makeWorkTree(3) });
    assert.equal((await api(s, 'POST', `/git/v1/repo/${repoId}/commits`, { key: s.adminKey, body: { message: 'api', files: [{ path: 'a.txt', content: 'a' }] } })).status, 200);
    await s.cli('user', 'create', 'modes-user');
    assert.deepEqual(exposed(s.dataDir), []);

    // a data folder left open by an earlier version is closed at the next start
    const exited = new Promise((r) => s.proc.once('exit', r));
    s.proc.kill('SIGTERM'); // only the process: the folder stays for the restart
    await exited;
    fs.chmodSync(s.dataDir, 0o755);
    for (const e of fs.readdirSync(s.dataDir, { withFileTypes: true })) fs.chmodSync(path.join(s.dataDir, e.name), e.isDirectory() ? 0o755 : 0o644);
    restarted = await startServer({}, { reuse: s });
    const top = [s.dataDir, ...fs.readdirSync(s.dataDir).map((n) => path.join(s.dataDir, n))];
    assert.deepEqual(top.filter((p) => fs.statSync(p).mode & 0o077), [], 'the folder and what it directly holds are tightened');
  } finally {
    await restarted?.stop();
    await s.stop();
  }
});
