// Search-flood regression. Attack: 100 concurrent anonymous searches with a costly regular
// expression (backreferences make git grep's regex engine backtrack) on a public repository
// started 99 git/grep children and pushed the p95 of /healthz to 2.4 s. Now one search holds one
// slot of the process pool: one client gets at most PALISADE_MAX_GIT_PROCESSES_PER_CLIENT of them,
// the rest are answered 503 + Retry-After, /healthz stays fast and other clients are still served.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { api, childProcesses, startServer } from '../helpers/server.ts';

const COSTLY = '(.*)(.*)(.*)\\3\\2\\1x'; // about 50 ms of CPU per line of 30 "a" in git grep -E

test('a flood of costly searches: children bounded, 503 beyond, /healthz fast, others served', async () => {
  const s = await startServer({ PALISADE_MAX_GIT_PROCESSES: '4', PALISADE_MAX_GIT_PROCESSES_PER_CLIENT: '2', PALISADE_GIT_QUEUE_SECONDS: '1' });
  try {
    const repoId = (await api(s, 'POST', '/git/v1/repo', { key: s.adminKey, body: { public: true } })).body.repoId as string;
    const content = `${'a'.repeat(30)}\n`.repeat(6);
    assert.equal((await api(s, 'POST', `/git/v1/repo/${repoId}/commits`, { key: s.adminKey, body: { message: 'aaa', files: [{ path: 'a.txt', content }] } })).status, 200);
    const searchPath = `/git/v1/repo/${repoId}/search?isRegex=true&caseSensitive=true&query=${encodeURIComponent(COSTLY)}`;

    let flooding = true;
    let most = 0;
    const sample = setInterval(() => {
      most = Math.max(most, childProcesses(s.proc.pid!).filter((c) => /\bgrep\b/.test(c.args)).length);
    }, 50);
    const health: number[] = [];
    const probe = (async () => {
      while (flooding) {
        const t = performance.now();
        assert.equal((await fetch(`${s.url}/healthz`)).status, 200);
        health.push(performance.now() - t);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const flood = Array.from({ length: 40 }, () => fetch(s.url + searchPath).then(async (r) => ({ status: r.status, retryAfter: r.headers.get('retry-after'), body: await r.text() })));
    await new Promise((r) => setTimeout(r, 200));
    // another client (its own principal) still gets a slot while the anonymous one is at its bound
    const other = await api(s, 'GET', searchPath, { key: s.adminKey });
    const results = await Promise.all(flood);
    flooding = false;
    await probe;
    clearInterval(sample);

    assert.equal(other.status, 200, JSON.stringify(other.body));
    const refused = results.filter((r) => r.status === 503);
    const served = results.filter((r) => r.status === 200);
    assert.ok(served.length >= 2 && served.length <= 20, `some searches ran (${served.length})`);
    assert.equal(refused.length, 40 - served.length, JSON.stringify(results.filter((r) => r.status !== 200 && r.status !== 503)));
    for (const r of refused) {
      assert.equal(r.retryAfter, '1');
      assert.equal(JSON.parse(r.body).code, 'SERVICE_UNAVAILABLE');
    }
    assert.ok(most >= 1 && most <= 4, `grep children bounded by the pool (saw ${most})`);
    health.sort((a, b) => a - b);
    const p95 = health[Math.floor(health.length * 0.95)]!;
    assert.ok(health.length >= 5 && p95 < 1000, `/healthz p95 ${p95.toFixed(0)} ms over ${health.length} probes`);
  } finally {
    await s.stop();
  }
});
