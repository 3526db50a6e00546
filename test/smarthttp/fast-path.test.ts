// Git's smart HTTP is taken before the framework's routing (src/http/smarthttp/fast-path.ts):
// what the root hooks give every request must hold there too, and what the fast path leaves
// to the routes must still be answered as before.
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { api, startServer, type TestServer } from '../helpers/server.ts';

let s: TestServer;
let repoId: string;
before(async () => {
  s = await startServer({ PALISADE_LOG_LEVEL: 'info' });
  repoId = (await api(s, 'POST', '/git/v1/repo', { key: s.adminKey, body: { name: 'fast/private' } })).body.repoId;
});
after(() => s.stop());

/** One request on its own connection: status, headers, body, and whether the server closed the connection. */
function raw(method: string, path: string, headers: Record<string, string>, body?: Buffer): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string; closed: boolean }> {
  const u = new URL(s.url);
  return new Promise((resolve, reject) => {
    const agent = new http.Agent({ keepAlive: true });
    const req = http.request({ host: u.hostname, port: u.port, method, path, headers, agent }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => {
        const sock = res.socket;
        // a connection the server drops ends on its own; a kept one stays open
        const t = setTimeout(() => resolve({ status: res.statusCode!, headers: res.headers, text, closed: false }), 500);
        if (!sock || sock.destroyed) {
          clearTimeout(t);
          resolve({ status: res.statusCode!, headers: res.headers, text, closed: true });
        } else
          sock.once('close', () => {
            clearTimeout(t);
            resolve({ status: res.statusCode!, headers: res.headers, text, closed: true });
          });
      });
    });
    req.on('error', reject);
    if (body) req.write(body.subarray(0, 1024)); // the start of a body the server will refuse
    else req.end();
  });
}

test('the 401 a git client gets first: the challenge and plain text, the connection kept', async () => {
  const r = await raw('GET', '/fast/private.git/info/refs?service=git-upload-pack', { 'git-protocol': 'version=2' });
  assert.equal(r.status, 401);
  assert.equal(r.headers.connection, 'keep-alive');
  assert.match(String(r.headers['www-authenticate']), /^Basic realm="Palisade"/);
  assert.equal(r.text, 'Authentication required\n');
});

test('a push refused before its body was read is answered, then its connection dropped', async () => {
  const r = await raw('POST', `/${repoId}/git-receive-pack`, { 'content-type': 'application/x-git-receive-pack-request', 'content-length': String(10 << 20) }, Buffer.alloc(10 << 20));
  assert.equal(r.status, 401);
  assert.equal(r.headers.connection, 'close');
  assert.equal(r.closed, true);
});

test('a service named twice, a wrong content type and a wrong method get git-readable refusals', async () => {
  const auth = { authorization: `Bearer ${s.adminKey}` };
  const twice = await raw('GET', '/fast/private.git/info/refs?service=git-upload-pack&service=git-receive-pack', auth);
  assert.equal(twice.status, 403);
  assert.match(twice.text, /Only the smart HTTP protocol is served/);
  const type = await raw('POST', '/fast/private.git/git-upload-pack', { ...auth, 'content-type': 'text/plain' });
  assert.equal(type.status, 415);
  // left to the routes (answered by the same handler there): a POST to info/refs, and HEAD
  const post = await raw('POST', '/fast/private.git/info/refs?service=git-upload-pack', auth);
  assert.equal(post.status, 405);
  const head = await raw('HEAD', '/fast/private.git/info/refs?service=git-upload-pack', auth);
  assert.equal(head.status, 200);
  assert.equal(head.headers['content-type'], 'application/x-git-upload-pack-advertisement');
});

test('requests taken before routing are logged as the framework logs the others', async () => {
  await raw('GET', '/fast/private.git/info/refs?service=git-upload-pack', {});
  await new Promise((r) => setTimeout(r, 200));
  const lines = s
    .logs()
    .split('\n')
    .filter((l) => l.includes('"reqId":"git-'));
  assert.ok(lines.some((l) => /"msg":"incoming request"/.test(l) && l.includes('/fast/private.git/info/refs')), 'incoming request');
  assert.ok(lines.some((l) => /"msg":"request completed"/.test(l) && l.includes('"statusCode":401')), 'request completed');
});

test('a refusal answered while the server drains says Connection: close, and the connection ends', async () => {
  const d = await startServer();
  try {
    const id = (await api(d, 'POST', '/git/v1/repo', { key: d.adminKey, body: { name: 'fast/drain' } })).body.repoId as string;
    const u = new URL(d.url);
    const sock = net.connect(Number(u.port), u.hostname);
    await new Promise((r) => sock.once('connect', r));
    let got = '';
    sock.on('data', (b: Buffer) => (got += b.toString('latin1')));
    // whether the server was still running when the connection ended (its exit would end it anyway)
    const ended = new Promise<boolean>((r) => sock.once('close', () => r(d.proc.exitCode === null && d.proc.signalCode === null)));
    // request 1: an ls-refs whose body is still arriving when the server is told to stop
    const auth = `Basic ${Buffer.from(`x-access-token:${d.adminKey}`).toString('base64')}`;
    sock.write(`POST /${id}/git-upload-pack HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\nGit-Protocol: version=2\r\nContent-Type: application/x-git-upload-pack-request\r\nTransfer-Encoding: chunked\r\n\r\n14\r\n0014command=ls-refs\n\r\n`);
    await new Promise((r) => setTimeout(r, 300));
    d.proc.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    // its end, and request 2 behind it on the same connection: a 401 the draining server answers
    sock.write(`4\r\n0000\r\n0\r\n\r\nGET /${id}/info/refs?service=git-upload-pack HTTP/1.1\r\nHost: x\r\nGit-Protocol: version=2\r\n\r\n`);
    const closed = await Promise.race([ended, new Promise<boolean>((r) => setTimeout(() => r(false), 10_000))]);
    sock.destroy();
    const second = got.slice(got.indexOf('HTTP/1.1 401'));
    assert.match(got, /^HTTP\/1\.1 200 OK/, 'the ls-refs in flight is answered');
    assert.ok(second.startsWith('HTTP/1.1 401'), got);
    assert.match(second.slice(0, second.indexOf('\r\n\r\n')), /\r\nConnection: close\r\n/i);
    assert.equal(closed, true, 'the server ends the connection after it, while it still runs');
  } finally {
    await d.stop();
  }
});

test("git-looking URLs the routes own (the APIs', the web's `-` namespace) are not taken as git's", async () => {
  const key = { authorization: `Bearer ${s.adminKey}` };
  const apiUrl = '/git/v1/repo/fast/info/refs?service=git-upload-pack';
  const webUrl = '/fast/private/-/info/refs?service=git-upload-pack';
  // the routes answer both (git's catch-all route among them, after the APIs' and the web's own)
  for (const url of [apiUrl, webUrl]) assert.notEqual((await raw('GET', url, key)).status, 0);
  // neither was taken by the fast path (its request ids are `git-…`): both were the framework's
  await new Promise((r) => setTimeout(r, 200));
  const logged = s.logs().split('\n').filter((l) => l.includes('"msg":"incoming request"'));
  for (const url of [apiUrl, webUrl]) {
    assert.ok(logged.some((l) => l.includes(url)), `${url} logged`);
    assert.ok(!logged.some((l) => l.includes(url) && l.includes('"reqId":"git-')), `${url} not taken by the fast path`);
  }
});
