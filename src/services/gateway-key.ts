import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import ssh2, { type ParsedKey } from 'ssh2';
import { fingerprintOf } from './ssh-public-key.ts';

/**
 * The gateway's key pairs, one per account: the SSH gateway logs in to a VM with the key of
 * the account that registered it (ssh2's client cannot present OpenSSH user certificates, so
 * there is no per-session certificate). A VM trusts the gateway by listing its account's public
 * key, never a client's secret; and since a registration proves nothing about who owns the
 * machine (its host key is public), one key for every account would let any account register
 * another's machine and log in to it: a VM trusts only its own account's key. Generated once
 * per account in the data folder, shared by every node that shares the folder.
 */

/** The comment of the public key line, so that an `authorized_keys` entry says whose it is. */
export const GATEWAY_KEY_COMMENT = 'palisade-gateway';

/**
 * What a VM puts before the key in `authorized_keys`. `restrict` turns off every forwarding
 * (TCP, stream-local, agent, X11), pty allocation and `~/.ssh/rc`; `pty` turns terminals back
 * on for interactive shells. Port forwarding stays off: with it, a grant to log in to one VM
 * as one user would also open every address that VM can reach (its cloud metadata service,
 * the private network behind it), which a VM grant does not say. Agent and X11 forwarding
 * have nothing to carry (the gateway has no agent and no display).
 */
export const GATEWAY_KEY_OPTIONS = 'restrict,pty';

/** Where the VM keeps the gateway's key for every user (the sshd snippet reads it). */
export const GATEWAY_KEYS_FILE = '/etc/ssh/palisade_gateway_keys';

/** The gateway's key pair, loaded. */
export interface GatewayKeyPair {
  /** the private key in OpenSSH's format (`-----BEGIN OPENSSH PRIVATE KEY-----`), as ssh2's `Client#connect({privateKey})` takes it */
  privateKey: string;
  /** `ssh-ed25519 AAAA… palisade-gateway` */
  publicKey: string;
  /** `SHA256:…`, as `ssh-keygen -lf` prints it */
  fingerprint: string;
}

/** An account's private key file: `DATA/ssh/gateway/<account id>_ed25519` (mode 0600, its folders 0700). */
export function gatewayKeyPath(dataDir: string, accountId: string): string {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(accountId)) throw new Error('account id is not a UUID');
  return path.join(dataDir, 'ssh', 'gateway', `${accountId}_ed25519`);
}

/**
 * A new ed25519 key pair in OpenSSH's format. ssh2's generator drops a leading zero byte of the
 * public key about once in 256 keys, and neither ssh2 nor ssh-keygen reads such a file back:
 * a pair is only taken once it parses.
 */
export function newEd25519(comment: string): string {
  for (;;) {
    const pair = ssh2.utils.generateKeyPairSync('ed25519', { comment });
    const parsed = ssh2.utils.parseKey(pair.private);
    if (!(parsed instanceof Error) && !Array.isArray(parsed)) return pair.private;
  }
}

/**
 * Creates `file` with `content` unless it exists, safely against other processes doing the
 * same: the content is written in full to a private temporary file first, then hard-linked to
 * the name, which fails if the name exists. So a reader never sees a half-written key, and
 * of two racing writers exactly one wins; the loser reads the winner's key.
 */
export function createOnce(file: string, content: string): void {
  const tmp = `${file}.${crypto.randomBytes(6).toString('hex')}.tmp`;
  fs.writeFileSync(tmp, content, { mode: 0o600, flag: 'wx' });
  try {
    fs.linkSync(tmp, file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

/**
 * Loads the gateway's key pair from the data folder, generating an ed25519 pair on first use
 * (race-safe across processes). Throws a plain Error if the file holds something else than an
 * unencrypted ed25519 private key in OpenSSH's format: an operator's mistake, never replaced.
 */
export function loadGatewayKey(dataDir: string, accountId: string): GatewayKeyPair {
  const file = gatewayKeyPath(dataDir, accountId);
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  if (!fs.existsSync(file)) createOnce(file, newEd25519(GATEWAY_KEY_COMMENT));
  // a copy put there by hand keeps the mode it came with: only the server's user may read it
  if ((fs.statSync(file).mode & 0o077) !== 0) fs.chmodSync(file, 0o600);
  const privateKey = fs.readFileSync(file, 'utf8');
  const parsed = ssh2.utils.parseKey(privateKey);
  if (parsed instanceof Error || Array.isArray(parsed) || !(parsed as ParsedKey).isPrivateKey() || (parsed as ParsedKey).type !== 'ssh-ed25519') {
    throw new Error(`${file} is not an unencrypted ed25519 private key in OpenSSH format`);
  }
  const blob = (parsed as ParsedKey).getPublicSSH();
  return { privateKey, publicKey: `ssh-ed25519 ${blob.toString('base64')} ${GATEWAY_KEY_COMMENT}`, fingerprint: fingerprintOf(blob) };
}

/** The gateway's key pairs of one data folder, per account, loaded (or generated) on first use and kept. */
export class GatewayKey {
  private readonly pairs = new Map<string, GatewayKeyPair>();

  constructor(private readonly dataDir: string) {}

  get(accountId: string): GatewayKeyPair {
    let pair = this.pairs.get(accountId);
    if (!pair) {
      pair = loadGatewayKey(this.dataDir, accountId);
      if (this.pairs.size > 10_000) this.pairs.clear();
      this.pairs.set(accountId, pair);
    }
    return pair;
  }
}

/**
 * What a VM installs so that it trusts the gateway: the `authorized_keys` line, and an sshd
 * drop-in that reads it for every local user (the gateway logs in only as a user that a
 * grant's `allowedUsers` allows; the VM cannot tell grants apart, Palisade decides).
 */
export function gatewayInstall(pair: GatewayKeyPair): { authorizedKeysLine: string; sshdConfig: string } {
  const authorizedKeysLine = `${GATEWAY_KEY_OPTIONS} ${pair.publicKey}`;
  const sshdConfig = [
    '# /etc/ssh/sshd_config.d/50-palisade-gateway.conf',
    `# Trust the Palisade gateway for this account's VMs (${pair.fingerprint}) for every local user: the key is read`,
    `# from ${GATEWAY_KEYS_FILE} (root-owned, mode 0644) besides each user's own file.`,
    'PubkeyAuthentication yes',
    `AuthorizedKeysFile .ssh/authorized_keys ${GATEWAY_KEYS_FILE}`,
    '# only if identities may log in as root (a VM\'s default user is root unless you set another):',
    'PermitRootLogin prohibit-password',
    '',
  ].join('\n');
  return { authorizedKeysLine, sshdConfig };
}
