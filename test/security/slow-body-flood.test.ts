// Slow-body flood regression. Attack: anonymous clients from one address open upload-pack
// requests on a public repository and send their bodies slowly or not at all; each request held
// a git process, and 60 of them kept 60 git processes alive for a minute. Now one client holds at
// most PALISADE_MAX_GIT_PROCESSES_PER_CLIENT processes, the requests beyond that are answered 503
// with Retry-After (after a short queue, or at once when the queue is full), other clients are
// still served, and a body that brings no byte for PALISADE_BODY_IDLE_TIMEOUT_SECONDS has its git
// process killed and its connection closed.
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { gitOk, makeWorkTree, repoUrl } from '../helpers/git.ts';
import { api, childProcesses, startServer } from '../helpers/server.ts';

interface Slow {
  status?: number;
  retryAfter?: string;
  answeredMs?: number;
  closedMs?: number;
}

/** An anonymous upload-pack POST that sends a few bytes of its body, then nothing. */
function slowUpload(base: string, repoId: string, t0: number): Slow {
  const u = new URL(`${base}/${repoId}/git-upload-pack`);
  const out: Slow = {};
  const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent: false, headers: { 'content-type': 'application/x-git-upload-pack-request', 'transfer-encoding': 'chunked' } }, (res) => {
    out.status = res.statusCode;
    out.retryAfter = res.headers['retry-after'];
    out.answeredMs = Date.now() - t0;
    res.resume();
  });
  req.on('error', () => undefined);
  req.on('close', () => (out.closedMs = Date.now() - t0));
  req.write('0032want ');
  return out;
}

test('slow anonymous bodies: bounded per client, 503 beyond, idle ones killed and disconnected', async () => {
  const s = await startServer({ PALISADE_MAX_GIT_PROCESSES: '6', PALISADE_MAX_GIT_PROCESSES_PER_CLIENT: '3', PALISADE_GIT_QUEUE_SECONDS: '1', PALISADE_BODY_IDLE_TIMEOUT_SECONDS: '2' });
  try {
    const repoId = (await api(s, 'POST', '/git/v1/repo', { key: s.adminKey, body: { public: true } })).body.repoId as string;
    await gitOk(['push', repoUrl(s.url, repoId, 'x-access-token', s.adminKey), 'main'], { cwd: await makeWorkTree(1) });

    const t0 = Date.now();
    const slow = Array.from({ length: 8 }, () => slowUpload(s.url, repoId, t0));
    let most = 0;
    const sample = setInterval(() => {
      // the anonymous bodies' processes (not the other client's ref advertisement)
      most = Math.max(most, childProcesses(s.proc.pid!).filter((c) => c.args.includes('upload-pack') && !c.args.includes('--advertise-refs')).length);
    }, 50);
    try {
      // while the anonymous client is at its bound, another client (authenticated from its first request) is served
      await new Promise((r) => setTimeout(r, 300));
      const other = Date.now();
      await gitOk(['-c', `http.extraHeader=Authorization: Bearer ${s.adminKey}`, 'ls-remote', repoUrl(s.url, repoId)]);
      assert.ok(Date.now() - other < 3000, 'an authenticated client is not queued behind the anonymous flood');
      // and so is an anonymous client from another address: a request that runs upload-pack
      // (a v0 request that wants nothing) takes a slot of its own address's share at once
      const u = new URL(`${s.url}/${repoId}/git-upload-pack`);
      const status = await new Promise<number>((resolve, reject) => {
        http
          .request({ method: 'POST', host: u.hostname, port: u.port, path: u.pathname, localAddress: '127.0.0.2', agent: false, headers: { 'content-type': 'application/x-git-upload-pack-request' } }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          })
          .on('error', reject)
          .end('0000');
      });
      assert.equal(status, 200, 'another address has its own share');

      const deadline = Date.now() + 15_000;
      while (slow.some((r) => r.closedMs === undefined) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    } finally {
      clearInterval(sample);
    }
    const served = slow.filter((r) => r.status === 200);
    const refused = slow.filter((r) => r.status === 503);
    assert.equal(served.length, 3, `3 served: ${JSON.stringify(slow)}`);
    assert.equal(refused.length, 5, `5 refused: ${JSON.stringify(slow)}`);
    for (const r of refused) {
      assert.equal(r.retryAfter, '1');
      assert.ok(r.answeredMs! < 2500, `503 comes quickly (${r.answeredMs} ms)`);
    }
    assert.ok(most <= 3, `never more than 3 upload-pack children (saw ${most})`);
    assert.equal(most, 3, 'the served requests did run git');
    for (const r of served) assert.ok(r.closedMs! >= 1800 && r.closedMs! < 8000, `idle connection closed after the idle timeout (${r.closedMs} ms)`);
    assert.equal(childProcesses(s.proc.pid!).filter((c) => c.args.includes('upload-pack')).length, 0, 'no git child left');
  } finally {
    await s.stop();
  }
});

test('a REST request body that stops arriving: the connection is dropped after the idle timeout', async () => {
  const s = await startServer({ PALISADE_BODY_IDLE_TIMEOUT_SECONDS: '1' });
  try {
    const t0 = Date.now();
    const closedMs = await new Promise<number>((resolve) => {
      const u = new URL(`${s.url}/git/v1/repo`);
      const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent: false, headers: { authorization: `Bearer ${s.adminKey}`, 'content-type': 'application/json', 'content-length': '1000' } });
      req.on('error', () => resolve(Date.now() - t0));
      req.on('response', (res) => res.on('close', () => resolve(Date.now() - t0)).resume());
      req.write('{"name": "slow');
      setTimeout(() => {
        req.destroy();
        resolve(Infinity); // still open: the server waits for the body forever
      }, 10_000).unref();
    });
    assert.ok(closedMs >= 900 && closedMs < 8000, `dropped after ${closedMs} ms`);
  } finally {
    await s.stop();
  }
});
