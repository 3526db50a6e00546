// The command list at the head of a receive-pack request, read as it streams past: every
// split of the bytes gives the same commands, and the pack after the flush is never looked at.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { PushCommandReader } from '../../src/git/push-commands.ts';

const pkt = (s: string) => Buffer.concat([Buffer.from((Buffer.byteLength(s) + 4).toString(16).padStart(4, '0')), Buffer.from(s)]);
const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const Z = '0'.repeat(40);

async function read(chunks: Buffer[]): Promise<{ commands: unknown[]; out: Buffer }> {
  const r = new PushCommandReader();
  const out: Buffer[] = [];
  r.on('data', (d: Buffer) => out.push(d));
  await new Promise<void>((resolve, reject) => {
    Readable.from(chunks).pipe(r).on('end', resolve).on('error', reject);
  });
  return { commands: r.commands, out: Buffer.concat(out) };
}

test('commands before the flush are read, whatever the chunking; the bytes pass unchanged', async () => {
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
    const { commands, out } = await read(chunks);
    assert.deepEqual(commands, want, `chunks of ${size}`);
    assert.ok(out.equals(body), 'passed through unchanged');
  }
});

test('a body that is not pkt-lines yields no commands and still passes through', async () => {
  const body = Buffer.from(`xyz! ${A} ${B} refs/heads/main\n`);
  const { commands, out } = await read([body]);
  assert.deepEqual(commands, []);
  assert.ok(out.equals(body));
});
