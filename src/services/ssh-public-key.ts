import crypto from 'node:crypto';
import ssh2, { type ParsedKey } from 'ssh2';
import { invalid } from '../domain/errors.ts';

/** RSA keys shorter than this are refused (NIST and OpenSSH's own minimum for new keys). */
export const MIN_RSA_BITS = 2048;
/** OpenSSH refuses longer RSA keys; so do we (they only cost CPU). */
export const MAX_RSA_BITS = 16384;

/** The key types Palisade accepts: those ssh2 verifies signatures of, minus DSA. */
const ACCEPTED = new Set(['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'ssh-rsa']);
const ACCEPTED_TEXT = 'ssh-ed25519, ecdsa-sha2-nistp256/384/521 or ssh-rsa of at least 2048 bits';

/** `type base64 [comment]`: one line, as in a `.pub` file or `authorized_keys` without options. */
const LINE_RE = /^(\S{1,64})[ \t]+([A-Za-z0-9+/]+={0,2})(?:[ \t]+(.*))?$/;

/** A parsed, checked OpenSSH public key. */
export interface SshPublicKey {
  /** e.g. `ssh-ed25519` */
  type: string;
  /** the key blob (SSH wire format), as a client presents it */
  blob: Buffer;
  /** `type base64`, without the comment: the stored form */
  line: string;
  /** `SHA256:` + unpadded base64 of SHA-256(blob), as `ssh-keygen -lf` prints it */
  fingerprint: string;
  /** the comment after the key, if any ('' otherwise) */
  comment: string;
}

/** The fingerprint of a key blob, as `ssh-keygen -lf` and OpenSSH's logs print it. */
export function fingerprintOf(blob: Buffer): string {
  return `SHA256:${crypto.createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/**
 * Parses one OpenSSH public key line (`type base64 [comment]`) with ssh2's parser and checks
 * it: an accepted type (DSA, certificates and security-key types are refused), a blob that
 * ssh2 re-encodes to exactly the bytes given (no trailing data, the inner type and curve
 * matching the outer ones), a key node:crypto can load (EC points on their curve), RSA of
 * 2048 to 16384 bits. Throws `invalid` naming `what`; the message never repeats the input,
 * so a pasted private key is not echoed.
 */
export function parsePublicKey(text: string, what = 'publicKey'): SshPublicKey {
  const input = text.trim();
  // Checked before any parser runs: ssh2 would decrypt an encrypted private key (bcrypt
  // rounds chosen by the sender), and nothing of a private key should go further.
  // (an armoured private key, PuTTY's format, or an OpenSSH private key's body without its armour;
  // not the words "private key" in a public key's comment)
  if (/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----|PuTTY-User-Key-File|b3BlbnNzaC1rZXktdjE/.test(input)) throw invalid(`${what} is a private key: send the public key (the .pub file) instead, and consider this private key exposed`);
  if (/[\r\n]/.test(input)) throw invalid(`${what} must be one line: <type> <base64> [comment]`);
  const m = LINE_RE.exec(input);
  if (!m) throw invalid(`${what} must be an OpenSSH public key: <type> <base64> [comment]`);
  const [, type, b64, comment = ''] = m as unknown as [string, string, string, string | undefined];
  if (type === 'ssh-dss') throw invalid(`${what}: DSA keys are refused (weak, and disabled by OpenSSH since 7.0); use ${ACCEPTED_TEXT}`);
  if (type.includes('-cert-')) throw invalid(`${what}: certificates are not accepted; send the plain public key`);
  if (!ACCEPTED.has(type)) throw invalid(`${what}: unsupported key type; use ${ACCEPTED_TEXT}`);
  const blob = Buffer.from(b64, 'base64');
  // base64 that does not round-trip (bad padding, stray bits) is not the key it seems to be
  if (blob.toString('base64') !== b64) throw invalid(`${what} is malformed: its base64 is not canonical`);
  // the parser the SSH listener and the gateway's client use too
  const parsed = ssh2.utils.parseKey(`${type} ${b64}`);
  if (parsed instanceof Error || Array.isArray(parsed)) throw invalid(`${what} is malformed`);
  const key = parsed as ParsedKey;
  if (key.isPrivateKey()) throw invalid(`${what} is a private key: send the public key (the .pub file) instead`);
  if (key.type !== type || !key.getPublicSSH().equals(blob)) throw invalid(`${what} is malformed: the key data does not match its type`);
  let details: crypto.AsymmetricKeyDetails;
  try {
    details = crypto.createPublicKey(key.getPublicPEM()).asymmetricKeyDetails ?? {};
  } catch {
    throw invalid(`${what} is malformed: not a valid ${type} key`);
  }
  if (type === 'ssh-rsa') {
    const bits = details.modulusLength ?? 0;
    if (bits < MIN_RSA_BITS) throw invalid(`${what}: RSA keys must have at least ${MIN_RSA_BITS} bits (this one has ${bits}); use ssh-ed25519 or a longer RSA key`);
    if (bits > MAX_RSA_BITS) throw invalid(`${what}: RSA keys may have at most ${MAX_RSA_BITS} bits`);
  }
  return { type, blob, line: `${type} ${b64}`, fingerprint: fingerprintOf(blob), comment: comment.trim() };
}
