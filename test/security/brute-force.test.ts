// Brute force was free. The attack: 100 wrong passwords in 4.7 s, 300 wrong tokens in 2.6 s, all
// answered 401, on every surface. Failed authentications are now limited per client address and
// per username or key prefix (git Basic, REST Bearer, the identity-token header, JSON-RPC
// api_key): past the limit, 429 with Retry-After, without even checking the credentials; a
// successful login is never counted. Clients here bind distinct loopback addresses (127.0.0.x),
// so each surface gets an address of its own.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Agent, request } from 'undici';
import { startServer, type TestServer } from '../helpers/server.ts';

const LIMIT = 5;
let s: TestServer;
let userKey: string;
const agents: Agent[] = [];

before(async () => {
  s = await startServer({ PALISADE_AUTH_FAILURE_LIMIT: String(LIMIT), PALISADE_AUTH_FAILURE_WINDOW_SECONDS: '3' });
  const r = await fetch(`${s.url}/_admin/api`, { method: 'POST', body: JSON.stringify({ id: 1, api_key: s.adminKey, method: 'create_user', args: { username: 'victim', password: 'correct horse', email: 'v@example.com' } }) });
  userKey = ((await r.json()) as { result: { api_key: string } }).result.api_key;
  await fetch(`${s.url}/_admin/api`, { method: 'POST', body: JSON.stringify({ id: 2, api_key: s.adminKey, method: 'create_repo', args: { repo_name: 'victim/code', owner_name: 'victim', private: true } }) });
  await fetch(`${s.url}/_admin/api`, { method: 'POST', body: JSON.stringify({ id: 3, api_key: s.adminKey, method: 'create_user', args: { username: 'sprayed', password: 'pw', email: 's@example.com' } }) });
});
after(async () => {
  await Promise.all(agents.map((a) => a.close()));
  await s.stop();
});

/** A client that connects from `127.0.0.<n>`. */
function from(n: number) {
  const dispatcher = new Agent({ localAddress: `127.0.0.${n}` });
  agents.push(dispatcher);
  return async (method: 'GET' | 'POST', path: string, headers: Record<string, string> = {}, body?: string) => {
    const r = await request(`${s.url}${path}`, { method, headers, body, dispatcher });
    const text = await r.body.text();
    return { status: r.statusCode, retryAfter: r.headers['retry-after'] as string | undefined, text };
  };
}
const basic = (u: string, p: string) => ({ authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}` });

describe('failed authentication is rate limited on every surface', () => {
  test('git Basic: wrong passwords get 401 up to the limit, then 429 without a password check', async () => {
    const c = from(2);
    const info = '/victim/code.git/info/refs?service=git-upload-pack';
    for (let i = 0; i < LIMIT; i++) assert.equal((await c('GET', info, basic('victim', `guess-${i}`))).status, 401);
    const t0 = Date.now();
    const blocked = [];
    for (let i = 0; i < 100; i++) blocked.push(await c('GET', info, basic('victim', `guess-more-${i}`)));
    const ms = Date.now() - t0;
    assert.ok(blocked.every((b) => b.status === 429 && Number(b.retryAfter) >= 1), 'every later attempt is 429 with Retry-After');
    assert.ok(ms < 3000, `100 refused attempts took ${ms} ms: no scrypt ran for them`);
    console.log(`# 100 attempts past the limit refused in ${ms} ms`);
    // even the right password waits out the window from this address and for this user
    assert.equal((await c('GET', info, basic('victim', 'correct horse'))).status, 429);
  });

  test('the username is limited across addresses; other users, and the owner where it signed in before, are not', async () => {
    const home = from(21);
    assert.equal((await home('GET', '/git/v1/repo', basic('sprayed', 'pw'))).status, 200, 'the owner signs in from its usual address');
    for (let n = 10; n < 10 + LIMIT; n++) assert.equal((await from(n)('GET', '/git/v1/repo', basic('sprayed', `spray-${n}`))).status, 401);
    const fresh = from(20);
    assert.equal((await fresh('GET', '/git/v1/repo', basic('sprayed', 'spray-again'))).status, 429, 'the username is spent for addresses it was never used from');
    assert.equal((await fresh('GET', '/git/v1/repo', basic('sprayed', 'pw'))).status, 429, 'the right password too: a new address learns nothing');
    assert.equal((await fresh('GET', '/git/v1/repo', { authorization: `Bearer ${s.adminKey}` })).status, 200, 'another account from that address is unaffected');
    // an attacker cannot lock the owner out: from where it signed in before, the account works
    assert.equal((await home('GET', '/git/v1/repo', basic('sprayed', 'pw'))).status, 200, 'the owner is not locked out');
    assert.equal((await home('GET', '/git/v1/repo', basic('sprayed', 'typo'))).status, 401, 'and its own typo is a plain 401');
  });

  test('parallel guesses: no more than the limit are checked, the rest are 429 at once', async () => {
    const c = from(50);
    const answers = await Promise.all(Array.from({ length: 60 }, (_, i) => c('GET', '/victim/code.git/info/refs?service=git-upload-pack', basic('parallel-victim', `guess-${i}`))));
    const checked = answers.filter((a) => a.status === 401).length;
    assert.ok(checked <= LIMIT, `${checked} of 60 parallel guesses were checked`);
    assert.equal(answers.filter((a) => a.status === 429).length, 60 - checked);
    const tokens = await Promise.all(Array.from({ length: 60 }, (_, i) => from(51)('GET', '/git/v1/repo', { authorization: `Bearer pal_parallel_${i}` })));
    assert.ok(tokens.filter((a) => a.status === 401).length <= LIMIT);
  });

  test('REST Bearer, identity-token header and JSON-RPC api_key', async () => {
    const cases: [number, (c: ReturnType<typeof from>, i: number) => ReturnType<ReturnType<typeof from>>][] = [
      [30, (c, i) => c('GET', '/git/v1/repo', { authorization: `Bearer pal_wrong_${i}` })],
      [31, (c, i) => c('GET', '/identity/v1/identities', { 'x-freestyle-identity-access-token': `pal_wrong_${i}` })],
      [32, (c, i) => c('POST', '/_admin/api', { 'content-type': 'text/plain' }, JSON.stringify({ id: i, api_key: `pal_wrong_${i}`, method: 'get_repos', args: {} }))],
    ];
    for (const [n, call] of cases) {
      const c = from(n);
      for (let i = 0; i < LIMIT; i++) assert.notEqual((await call(c, i)).status, 429, `attempt ${i} from 127.0.0.${n}`);
      const over = await call(c, 99);
      assert.equal(over.status, 429, `127.0.0.${n}: ${over.text}`);
      assert.ok(Number(over.retryAfter) >= 1);
      if (n === 32) assert.equal(JSON.parse(over.text).result, null, 'JSON-RPC keeps its {id, result, error} shape');
    }
  });

  test('successes are never counted, and the block lifts after Retry-After', async () => {
    const c = from(40);
    for (let i = 0; i < LIMIT - 1; i++) assert.equal((await c('GET', '/git/v1/repo', { authorization: `Bearer pal_nope_${i}` })).status, 401);
    for (let i = 0; i < 30; i++) assert.equal((await c('GET', '/git/v1/repo', { authorization: `Bearer ${userKey}` })).status, 200, `success ${i}`);
    assert.equal((await c('GET', '/git/v1/repo', { authorization: 'Bearer pal_nope_last' })).status, 401, 'one failure left after 30 successes');
    const blocked = await c('GET', '/git/v1/repo', { authorization: `Bearer ${userKey}` });
    assert.equal(blocked.status, 429);
    await new Promise((r) => setTimeout(r, Number(blocked.retryAfter) * 1000 + 100));
    assert.equal((await c('GET', '/git/v1/repo', { authorization: `Bearer ${userKey}` })).status, 200, 'after Retry-After the right key works again');
  });
});
