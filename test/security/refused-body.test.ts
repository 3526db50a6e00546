// Refused-body regression. Attack: an anonymous client pushes a 2 GiB (or never-ending) body to a
// private repository. The server answered 401 at once, but kept the connection alive and so read
// (and threw away) the whole body to reach the next request. Now a refusal sent before the body
// was read closes the connection: the client sees the 401 and a closed socket after far less
// than the body. The same goes for a body refused as too large.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { api, startServer, type TestServer } from '../helpers/server.ts';

const LIMIT = 256 * 1024 * 1024; // the client gives up here: the server read far too much

/**
 * Sends `head`, then zero bytes: `polite` sends one block and waits for the answer, otherwise it
 * floods as fast as the connection takes them. Resolves when the server closes the connection
 * (or the client gave up at LIMIT, or after 10 s). A server that closes with bytes still unread
 * resets the connection, and the flooding client may then lose the answer: only its byte count
 * and the close matter.
 */
function send(s: TestServer, head: string, opts: { chunked: boolean; polite: boolean }): Promise<{ response: string; accepted: number; ms: number; closedByServer: boolean }> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const sock = net.connect(s.port, '127.0.0.1');
    let response = '';
    let done = false;
    const finish = (closedByServer: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ response, accepted: sock.bytesWritten - Buffer.byteLength(head), ms: Date.now() - t0, closedByServer });
    };
    const timer = setTimeout(() => finish(false), 10_000);
    sock.on('data', (d) => (response += d.toString('latin1')));
    sock.on('close', () => finish(true));
    sock.on('error', () => finish(true));
    const block = Buffer.alloc(opts.polite ? 1000 : 64 * 1024);
    const chunk = opts.chunked ? Buffer.concat([Buffer.from(`${block.length.toString(16)}\r\n`), block, Buffer.from('\r\n')]) : block;
    const pump = () => {
      while (!done && sock.bytesWritten < LIMIT) if (!sock.write(chunk)) return void sock.once('drain', pump);
      if (sock.bytesWritten >= LIMIT) finish(false);
    };
    sock.write(head);
    if (opts.polite) sock.write(chunk);
    else pump();
  });
}

test('an anonymous 2 GiB or endless push to a private repository: 401, then the connection is closed', async () => {
  const s = await startServer();
  try {
    const repoId = (await api(s, 'POST', '/git/v1/repo', { key: s.adminKey, body: {} })).body.repoId as string;
    const path = `/${repoId}/git-receive-pack`;
    for (const [what, framing, chunked] of [
      ['2 GiB body', 'Content-Length: 2147483648', false],
      ['endless chunked body', 'Transfer-Encoding: chunked', true],
    ] as const) {
      const head = `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-git-receive-pack-request\r\n${framing}\r\n\r\n`;
      // a client that sends the start of the body and reads the answer: 401, and the server hangs up
      // instead of waiting for the rest
      const polite = await send(s, head, { chunked, polite: true });
      assert.match(polite.response, /^HTTP\/1\.1 401 /, `${what}: refused`);
      assert.match(polite.response, /\r\nConnection: close\r\n/i, `${what}: announces the close`);
      assert.ok(polite.closedByServer, `${what}: the server closed the connection instead of waiting for the rest`);
      // a client that keeps pushing bytes: the connection is gone after a few MiB
      const r = await send(s, head, { chunked, polite: false });
      if (r.response) assert.match(r.response, /^HTTP\/1\.1 401 /);
      assert.ok(r.closedByServer && r.accepted < 32 * 1024 * 1024, `${what}: the connection closed after ${(r.accepted / 1048576).toFixed(1)} MiB`);
      assert.ok(r.ms < 10_000, `${what}: closed in ${r.ms} ms`);
    }
    // a JSON body over the REST limit: 413, and the rest of it is not read either
    const head = `POST /git/v1/repo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${s.adminKey}\r\nContent-Type: application/json\r\nContent-Length: 2147483648\r\n\r\n`;
    const polite = await send(s, head, { chunked: false, polite: true });
    assert.match(polite.response, /^HTTP\/1\.1 413 /);
    assert.ok(polite.closedByServer, '413: the server closed the connection');
    const r = await send(s, head, { chunked: false, polite: false });
    assert.ok(r.closedByServer && r.accepted < 32 * 1024 * 1024, `413: the connection closed after ${(r.accepted / 1048576).toFixed(1)} MiB`);
  } finally {
    await s.stop();
  }
});

// Attack (review of issues 10/11): the drain that lets hg read its 401 after an anonymous push
// of a public repository (see hgHandler) ran for any name: an anonymous client could make the
// server read (and throw away) up to the pack limit per request by POSTing `?cmd=unbundle` to a
// name that does not exist, a private repository or a git one. Now only a push to a public hg
// repository is read, holding a process slot of its address; any other is closed at once.
test('an anonymous hg push flood to a missing, private or git repository: 401 and the connection closed', async () => {
  const s = await startServer();
  try {
    const rpc = async (method: string, args: Record<string, unknown>) => {
      const r = await api(s, 'POST', '/_admin/api', { body: { id: 1, api_key: s.adminKey, method, args } });
      assert.equal(r.body.error, null, JSON.stringify(r.body.error));
    };
    await rpc('create_repo', { repo_name: 'legacy/private-hg', repo_type: 'hg', private: true });
    await rpc('create_repo', { repo_name: 'code/public-git', repo_type: 'git', private: false });
    for (const name of ['no/such-repo', 'legacy/private-hg', 'code/public-git']) {
      const head = `POST /${name}?cmd=unbundle HTTP/1.1\r\nHost: x\r\nContent-Type: application/mercurial-0.1\r\nContent-Length: 2147483648\r\n\r\n`;
      const r = await send(s, head, { chunked: false, polite: false });
      if (r.response) assert.match(r.response, /^HTTP\/1\.1 (401|400) /, name);
      assert.ok(r.closedByServer && r.accepted < 32 * 1024 * 1024, `${name}: the connection closed after ${(r.accepted / 1048576).toFixed(1)} MiB`);
      assert.ok(r.ms < 10_000, `${name}: closed in ${r.ms} ms`);
    }
  } finally {
    await s.stop();
  }
});
