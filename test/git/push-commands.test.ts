// The command list at the head of a receive-pack request, read before anything reaches git:
// every split of the bytes gives the same commands, the bytes after the flush are kept for git
// untouched, and a head receive-pack might read differently is refused, not passed on.
import assert from 'node:assert/strict';
import { PassThrough, Readable } from 'node:stream';
import { test } from 'node:test';
import { prefixed, readPushHead, refusalReport } from '../../src/git/push-commands.ts';

const pkt = (s: string) => Buffer.concat([Buffer.from((Buffer.byteLength(s) + 4).toString(16).padStart(4, '0')), Buffer.from(s)]);
const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const Z = '0'.repeat(40);

async function head(chunks: Buffer[], idleMs = 0) {
  const input = new PassThrough();
  const h = readPushHead(input, { maxBytes: 1 << 20, idleMs, signal: new AbortController().signal });
  for (const c of chunks) input.write(c);
  if (!idleMs) input.end();
  return { h: await h, input };
}

const collect = async (r: Readable) => {
  const out: Buffer[] = [];
  for await (const d of r) out.push(d as Buffer);
  return Buffer.concat(out);
};

test('commands before the flush are read, whatever the chunking; head and rest make the request again', async () => {
  // a pack that happens to contain what looks like a command must not count
  const body = Buffer.concat([
    pkt(`shallow ${A}\n`),
    pkt(`${Z} ${A} refs/heads/new\0report-status side-band-64k agent=git/2\n`),
    pkt(`${A} ${B} refs/heads/main\n`),
    pkt(`${B} ${Z} refs/tags/v1\n`),
    Buffer.from('0000'),
    Buffer.from('PACK'),
    pkt(`${A} ${B} refs/heads/hidden\n`),
  ]);
  const want = [
    { oldOid: Z, newOid: A, ref: 'refs/heads/new' },
    { oldOid: A, newOid: B, ref: 'refs/heads/main' },
    { oldOid: B, newOid: Z, ref: 'refs/tags/v1' },
  ];
  for (const size of [1, 3, 7, 64, body.length]) {
    const chunks = [];
    for (let i = 0; i < body.length; i += size) chunks.push(body.subarray(i, i + size));
    const { h, input } = await head(chunks);
    assert.equal(h.status, 'complete', `chunks of ${size}`);
    assert.deepEqual(h.commands, want, `chunks of ${size}`);
    assert.deepEqual(h.capabilities, ['report-status', 'side-band-64k', 'agent=git/2']);
    assert.ok((await collect(prefixed(h.buffered, input))).equals(body), 'the request, unchanged');
  }
});

test('what receive-pack could read as a command but this reader cannot is malformed, not passed on', async () => {
  const cases: [string, Buffer][] = [
    ['not pkt-lines', Buffer.from(`xyz! ${A} ${B} refs/heads/main\n`)],
    ['a line that is no command', Buffer.concat([pkt(`${A} ${B} refs/heads/main\n`), pkt('hello\n'), Buffer.from('0000')])],
    ['a delimiter', Buffer.concat([pkt(`${A} ${B} refs/heads/main\n`), Buffer.from('0001'), Buffer.from('0000')])],
    ['a certificate that never ends', Buffer.concat([pkt('push-cert\0report-status\n'), pkt('certificate version 0.1\n'), Buffer.from('0000')])],
  ];
  for (const [name, body] of cases) assert.equal((await head([body])).h.status, 'malformed', name);
  // upper-case object ids are commands to receive-pack: read (lowercased), never skipped
  const upper = await head([Buffer.concat([pkt(`${A.toUpperCase()} ${B} refs/heads/main\n`), Buffer.from('0000')])]);
  assert.deepEqual(upper.h.commands, [{ oldOid: A, newOid: B, ref: 'refs/heads/main' }]);
  // a ref with a space is the rest of the line, as receive-pack reads it (the decision refuses it)
  const spaced = await head([Buffer.concat([pkt(`${A} ${B} refs/heads/a b\n`), Buffer.from('0000')])]);
  assert.equal(spaced.h.commands[0]!.ref, 'refs/heads/a b');
});

test("a push certificate's commands are read", async () => {
  const body = Buffer.concat([
    pkt('push-cert\0report-status\n'),
    pkt('certificate version 0.1\n'),
    pkt('pusher someone 1 +0000\n'),
    pkt('\n'),
    pkt(`${A} ${B} refs/heads/main\n`),
    pkt('-----BEGIN PGP SIGNATURE-----\n'),
    pkt('push-cert-end\n'),
    Buffer.from('0000'),
  ]);
  const { h } = await head([body]);
  assert.equal(h.status, 'complete');
  assert.deepEqual(h.commands, [{ oldOid: A, newOid: B, ref: 'refs/heads/main' }]);
});

test('an input that ends or goes quiet before its flush', async () => {
  assert.equal((await head([pkt(`${A} ${B} refs/heads/main\n`)])).h.status, 'ended');
  const keep = setInterval(() => undefined, 1000); // the reader's own timer does not hold the process
  const quiet = await head([pkt(`${A} ${B} refs/heads/main\n`)], 50);
  clearInterval(keep);
  assert.equal(quiet.h.status, 'aborted');
  assert.equal(quiet.h.idle, true);
});

test('a refusal in the form the client asked for: ng per ref inside side-band 1, the message on side-band 2', () => {
  const commands = [
    { oldOid: A, newOid: B, ref: 'refs/heads/main' },
    { oldOid: Z, newOid: A, ref: 'refs/heads/x' },
  ];
  const why = (ref: string) => (ref === 'refs/heads/main' ? 'protected' : 'another ref');
  const plain = refusalReport({ commands, capabilities: ['report-status'] }, why, 'msg').toString();
  assert.equal(plain, `${pkt('unpack ok\n')}${pkt('ng refs/heads/main protected\n')}${pkt('ng refs/heads/x another ref\n')}0000`);
  const banded = refusalReport({ commands, capabilities: ['report-status', 'side-band-64k'] }, why, 'palisade: no');
  assert.equal(banded.toString('latin1', 4, 5), '\x02');
  assert.ok(banded.toString().includes('palisade: no\n'));
  assert.ok(banded.toString().includes(`\x01${plain}`));
  assert.ok(banded.toString().endsWith('0000'));
  assert.equal(refusalReport({ commands, capabilities: [] }, why, 'x').length, 0, 'nothing a client without report-status could read');
});
