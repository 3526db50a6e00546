// Response-smuggling and leak regressions.
// 1. A HEAD request refused by Node's parser (431, headers too large) was answered with a JSON body,
//    which a client or proxy reusing the connection reads as the start of the next response. Now
//    such refusals carry no body and close the connection.
// 2. Smart HTTP and the root had no error mapper of their own, so Fastify's default one put an
//    unexpected error's message in the response: a NUL byte in a Basic username made PostgreSQL
//    fail, and the answer quoted the driver ("invalid byte sequence for encoding UTF8: 0x00").
//    Now each maps errors once: a generic text or JSON with the request id, details only in the log.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import pg from 'pg';
import { api, startServer } from '../helpers/server.ts';

/** Sends raw bytes and collects everything until the server closes (or 5 s pass). */
function raw(port: number, request: string): Promise<string> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let out = '';
    const timer = setTimeout(() => sock.destroy(), 5000);
    sock.on('data', (d) => (out += d.toString('latin1')));
    sock.on('error', () => undefined);
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
    sock.write(request);
  });
}

test('a HEAD request with oversized headers: 431 without a body, connection closed', async () => {
  const s = await startServer();
  try {
    const big = 'a'.repeat(20_000);
    for (const method of ['HEAD', 'GET']) {
      // a second, valid request on the same connection must not be answered after a body-less 431
      const out = await raw(s.port, `${method} /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${big}\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n`);
      const [head, ...rest] = out.split('\r\n\r\n');
      assert.match(head!, /^HTTP\/1\.1 431 /, method);
      assert.match(head!, /\r\ncontent-length: 0(\r\n|$)/i, `${method}: empty body declared`);
      assert.equal(rest.join('\r\n\r\n'), '', `${method}: nothing after the headers`);
    }
  } finally {
    await s.stop();
  }
});

test('unexpected errors reach no response body: smart HTTP and the root map them', async () => {
  const s = await startServer();
  try {
    const repoId = (await api(s, 'POST', '/git/v1/repo', { key: s.adminKey, body: {} })).body.repoId as string;
    const nul = Buffer.from('ad\0min:x').toString('base64');
    const r = await fetch(`${s.url}/${repoId}/info/refs?service=git-upload-pack`, { headers: { authorization: `Basic ${nul}` } });
    const text = await r.text();
    // SQLite finds no such user (401); PostgreSQL refuses the NUL byte (500): either way, nothing of the driver
    assert.ok(r.status === 401 || r.status === 500, `${r.status} ${text}`);
    assert.match(r.headers.get('content-type') ?? '', /^text\/plain/);
    assert.doesNotMatch(text, /byte sequence|UTF8|0x00|SQL|postgres|sqlite|\bat \//i);
    if (r.status === 500) assert.match(text, /^Internal error \(request [^)]+\)\n$/);

    // the root answers in the REST shape, not Fastify's default one
    const bad = await api(s, 'GET', '/%zz');
    assert.equal(bad.status, 400);
    assert.deepEqual(Object.keys(bad.body).sort(), ['code', 'message']);
  } finally {
    await s.stop();
  }
});

test('the root maps an unexpected error (its database gone) to a generic 500 with the request id', { skip: !process.env.PALISADE_TEST_DATABASE_URL && 'needs PostgreSQL' }, async () => {
  const s = await startServer();
  try {
    assert.equal((await fetch(`${s.url}/healthz`)).status, 200);
    const name = new URL(s.databaseUrl!.replace(/^postgres:\/\/[^/]*\//, 'postgres://h/')).pathname.slice(1);
    const admin = new pg.Client({ connectionString: process.env.PALISADE_TEST_DATABASE_URL });
    await admin.connect();
    await admin.query(`DROP DATABASE ${name} WITH (FORCE)`);
    await admin.end();
    const r = await api(s, 'GET', '/healthz');
    assert.equal(r.status, 500);
    assert.equal(r.body.code, 'INTERNAL_ERROR');
    assert.match(r.body.message, /^Internal error \(request [^)]+\)$/);
  } finally {
    await s.stop();
  }
});
