// A git child must not outlive its request: killed when the client goes away, and when it
// runs past PALISADE_GIT_TIMEOUT_SECONDS (resource exhaustion by hanging requests).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import { test } from 'node:test';
import { repoDir } from '../../src/git/repo-path.ts';
import { gitOk, makeWorkTree, repoUrl } from '../helpers/git.ts';
import { api, startServer, type TestServer } from '../helpers/server.ts';

const childrenFor = (dir: string): number => {
  try {
    return execFileSync('pgrep', ['-f', `upload-pack --stateless-rpc ${dir}`]).toString().trim().split('\n').filter(Boolean).length;
  } catch {
    return 0; // pgrep exits 1 when nothing matches
  }
};

/** Starts an upload-pack POST whose body never ends, so the child waits on its stdin. */
function hangingRequest(s: TestServer, repoId: string): http.ClientRequest {
  const u = new URL(`${s.url}/${repoId}/git-upload-pack`);
  const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers: { authorization: `Bearer ${s.adminKey}`, 'content-type': 'application/x-git-upload-pack-request', 'transfer-encoding': 'chunked' } });
  req.on('error', () => undefined);
  req.write('0032want ');
  return req;
}

async function waitUntil(f: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (f()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return f();
}

async function repoWithCommit(s: TestServer): Promise<{ repoId: string; dir: string }> {
  const repoId = (await api(s, 'POST', '/git/v1/repo', { key: s.adminKey, body: {} })).body.repoId as string;
  const wc = await makeWorkTree(1);
  await gitOk(['push', repoUrl(s.url, repoId, 'x-access-token', s.adminKey), 'main'], { cwd: wc });
  return { repoId, dir: repoDir(s.dataDir, repoId) };
}

test('the git child is killed when the client disconnects', async () => {
  const s = await startServer();
  try {
    const { repoId, dir } = await repoWithCommit(s);
    const req = hangingRequest(s, repoId);
    assert.ok(await waitUntil(() => childrenFor(dir) === 1, 10_000), 'upload-pack started');
    req.destroy();
    assert.ok(await waitUntil(() => childrenFor(dir) === 0, 10_000), 'upload-pack gone after the client left');
  } finally {
    await s.stop();
  }
});

test('the git child is killed when it runs past the time limit', async () => {
  const s = await startServer({ PALISADE_GIT_TIMEOUT_SECONDS: '1' });
  try {
    const { repoId, dir } = await repoWithCommit(s);
    const req = hangingRequest(s, repoId);
    assert.ok(await waitUntil(() => childrenFor(dir) === 1, 10_000), 'upload-pack started');
    assert.ok(await waitUntil(() => childrenFor(dir) === 0, 10_000), 'upload-pack killed by the time limit while the client still waits');
    req.destroy();
  } finally {
    await s.stop();
  }
});
