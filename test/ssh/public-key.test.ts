// The SSH public key parser on its own: the stored form, and the malformed keys ssh2 alone
// would take (a point off its curve, a curve under another type's name, base64 that decodes
// to the same bytes from another text).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fingerprintOf, parsePublicKey } from '../../src/services/ssh-public-key.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'palisade-pubkey-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

let n = 0;
function keygen(type: string, bits?: number): { line: string; fingerprint: string; file: string } {
  const file = path.join(tmp, `${type}${bits ?? ''}-${n++}`);
  execFileSync('ssh-keygen', ['-q', '-t', type, ...(bits ? ['-b', String(bits)] : []), '-N', '', '-C', 'some one@host', '-f', file]);
  return { line: fs.readFileSync(`${file}.pub`, 'utf8'), fingerprint: execFileSync('ssh-keygen', ['-lf', `${file}.pub`], { encoding: 'utf8' }).split(' ')[1]!, file };
}

const refused = (line: string, re: RegExp) => assert.throws(() => parsePublicKey(line), (e: Error) => re.test(e.message), line.slice(0, 60));

test('stored form: `type base64` without the comment; fingerprint as ssh-keygen prints it', () => {
  const k = keygen('ecdsa', 384);
  const parsed = parsePublicKey(k.line);
  const [type, b64] = k.line.split(' ');
  assert.equal(parsed.type, 'ecdsa-sha2-nistp384');
  assert.equal(parsed.line, `${type} ${b64}`);
  assert.equal(parsed.comment, 'some one@host');
  assert.equal(parsed.fingerprint, k.fingerprint);
  assert.equal(fingerprintOf(parsed.blob), k.fingerprint);
});

test('what ssh2 would parse but is not a valid key is refused', () => {
  const ec = keygen('ecdsa', 256).line.split(' ') as [string, string];
  const blob = Buffer.from(ec[1], 'base64');
  // the point's last byte changed: off the curve (OpenSSL refuses to load it)
  const offCurve = Buffer.from(blob);
  offCurve[offCurve.length - 1]! ^= 0x01;
  refused(`${ec[0]} ${offCurve.toString('base64')}`, /not a valid/);
  // a nistp256 key announced as nistp384: the outer type and the blob disagree
  refused(`ecdsa-sha2-nistp384 ${ec[1]}`, /does not match|malformed/);
  // the same bytes from other base64 text (stray bits in the last character before the
  // padding: a nistp256 blob is 104 bytes, so its base64 ends in one '=' and 2 unused bits)
  assert.match(ec[1], /[^=]=$/);
  const last = ec[1].slice(-2, -1);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  const twin = `${ec[1].slice(0, -2)}${alphabet[alphabet.indexOf(last) ^ 1]!}=`;
  assert.ok(Buffer.from(twin, 'base64').equals(blob), 'the twin decodes to the same bytes');
  refused(`${ec[0]} ${twin}`, /not canonical/);
  assert.equal(parsePublicKey(`${ec[0]} ${ec[1]}`).type, 'ecdsa-sha2-nistp256');
  const ed = keygen('ed25519').line.split(' ') as [string, string];
  // an ed25519 key is 32 bytes
  refused(`ssh-ed25519 ${Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from('ssh-ed25519'), Buffer.from([0, 0, 0, 31]), Buffer.alloc(31, 1)]).toString('base64')}`, /malformed/);
  // a good key still passes
  assert.equal(parsePublicKey(`ssh-ed25519 ${ed[1]}`).type, 'ssh-ed25519');
});

test('"private key" in a public key\'s comment is only a comment; a private key body without its armour is refused', () => {
  const k = keygen('ed25519');
  const [type, b64] = k.line.split(' ');
  assert.equal(parsePublicKey(`${type} ${b64} not my PRIVATE KEY`).comment, 'not my PRIVATE KEY');
  const body = fs.readFileSync(k.file, 'utf8').split('\n').filter((l) => l && !l.startsWith('-----')).join('');
  refused(body, /private key/);
  refused(`ssh-ed25519 ${body}`, /private key/);
});
