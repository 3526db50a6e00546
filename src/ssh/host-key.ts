import fs from 'node:fs';
import path from 'node:path';
import ssh2 from 'ssh2';
import { createOnce, newEd25519 } from '../services/gateway-key.ts';
import { fingerprintOf } from '../services/ssh-public-key.ts';

const { utils } = ssh2;

/**
 * The server's host key: an ed25519 key generated once in `DATA/ssh/host_ed25519` (mode
 * 0600, OpenSSH format), created race-safe (a second process that loses the race reads the
 * winner's, never half of it). Returns the private key text and the public fingerprint clients will see.
 */
export function loadHostKey(dataDir: string): { privateKey: string; fingerprint: string; publicLine: string } {
  const dir = path.join(dataDir, 'ssh');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, 'host_ed25519');
  // written whole then linked into place: another process never reads half a key, and of two
  // racing starts one key wins
  if (!fs.existsSync(file)) createOnce(file, newEd25519('palisade-host'));
  const text = fs.readFileSync(file, 'utf8');
  const key = utils.parseKey(text);
  if (key instanceof Error || Array.isArray(key)) throw new Error('the SSH host key in the data folder cannot be read');
  const blob = key.getPublicSSH();
  return { privateKey: text, fingerprint: fingerprintOf(blob), publicLine: `${key.type} ${blob.toString('base64')}` };
}
