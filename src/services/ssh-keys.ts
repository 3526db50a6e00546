import type { Access } from '../access/index.ts';
import type { Principal } from '../domain/access.ts';
import { conflict, invalid, isDomainError, notFound } from '../domain/errors.ts';
import { type IdentityRow, isUniqueViolation, type SshKeyRow, type Store } from '../store/index.ts';
import { newId, now } from './secrets.ts';
import { parsePublicKey } from './ssh-public-key.ts';

/** Most SSH keys one identity (or user) may hold. */
export const MAX_SSH_KEYS_PER_IDENTITY = 100;
/** Longest title, in characters (the schemas bound it the same). */
export const MAX_SSH_KEY_TITLE = 200;

/** A new key as the route schemas checked it: an OpenSSH public key line, an optional title. */
export interface NewSshKey {
  publicKey: string;
  /** absent: the key's comment, if any */
  title?: string | null;
}

/** A registered key as the surfaces show it (the public key itself stays with the server). */
export interface SshKeyOut {
  id: string;
  fingerprint: string;
  title: string | null;
  createdAt: string;
}

const keyOut = (r: SshKeyRow): SshKeyOut => ({ id: r.id, fingerprint: r.fingerprint, title: r.title, createdAt: r.created_at });

/** A title from a key's comment: printable, at most the title's length. */
function titleFromComment(comment: string): string | null {
  const t = Array.from(comment.replace(/[\x00-\x1f\x7f]/g, ' ').trim()).slice(0, MAX_SSH_KEY_TITLE).join('');
  return t || null;
}

/**
 * SSH public keys. A key belongs to an identity; a user's keys hang on the user's managed
 * identity, as its API keys do. A key (its fingerprint) is registered at most once on the
 * whole server, so that a presented key names one principal. Three ways in, each decided
 * here: the identity's account (`identity:manage`; a managed identity's keys are its user's,
 * changed only as the user's own), a user for itself (`account:use`), an admin for any user
 * (`server:admin`).
 */
export class SshKeys {
  constructor(
    private readonly store: Store,
    private readonly access: Access,
  ) {}

  /** An identity the caller manages (the decision point's rule); `modifiable`: not a managed one. */
  private manageable(p: Principal, rawId: string): Promise<IdentityRow> {
    return this.access.manageableIdentity(p, rawId);
  }

  private modifiable(p: Principal, rawId: string): Promise<IdentityRow> {
    return this.access.manageableIdentity(p, rawId, { modify: true });
  }

  /** The identity behind a user, by name, for an admin. */
  private async userIdentity(p: Principal, username: string): Promise<string> {
    await this.access.require(p, 'server:admin', { kind: 'server' });
    const u = await this.store.findUserByName(this.store.db, username);
    if (!u) throw notFound(`user ${username.slice(0, 64)} does not exist`, 'USER_NOT_FOUND');
    return u.identity_id;
  }

  private async list(identityId: string): Promise<{ keys: SshKeyOut[] }> {
    return { keys: (await this.store.listSshKeys(this.store.db, identityId)).map(keyOut) };
  }

  /**
   * Parses, checks and stores a key. invalid: malformed, private, weak or unsupported keys,
   * too many keys; conflict SSH_KEY_ALREADY_EXISTS when the key is registered anywhere (whose
   * it is is not said).
   */
  private async add(identityId: string, input: NewSshKey): Promise<SshKeyOut> {
    const key = parsePublicKey(input.publicKey);
    const title = input.title?.trim() ? input.title.trim() : titleFromComment(key.comment);
    const row: SshKeyRow = { id: newId(), identity_id: identityId, fingerprint: key.fingerprint, key_type: key.type, public_key: key.line, title, created_at: now() };
    try {
      await this.store.transaction(async (tx) => {
        // bounded per identity; on PostgreSQL two concurrent adds may each see 99 (the bound is a guard, not a quota)
        if ((await this.store.listSshKeys(tx, identityId)).length >= MAX_SSH_KEYS_PER_IDENTITY) throw invalid(`An identity may hold at most ${MAX_SSH_KEYS_PER_IDENTITY} SSH keys; delete one first`, 'TOO_MANY_SSH_KEYS');
        await this.store.insertSshKey(tx, row);
      });
    } catch (e) {
      if (isDomainError(e)) throw e;
      if (isUniqueViolation(e)) throw conflict('This SSH key is already registered', 'SSH_KEY_ALREADY_EXISTS');
      // the identity was deleted since it was loaded (its foreign key refused the key)
      if (!(await this.store.findIdentity(this.store.db, identityId))) throw notFound(`Identity not found: ${identityId}`, 'IDENTITY_NOT_FOUND');
      throw e;
    }
    return keyOut(row);
  }

  private async remove(identityId: string, rawKeyId: string): Promise<boolean> {
    return this.store.deleteSshKey(this.store.db, identityId, rawKeyId.toLowerCase());
  }

  // ---- an identity's keys, managed by its account --------------------------------

  async listForIdentity(p: Principal, identityId: string): Promise<{ keys: SshKeyOut[] }> {
    return this.list((await this.manageable(p, identityId)).id);
  }

  async addToIdentity(p: Principal, identityId: string, input: NewSshKey): Promise<SshKeyOut> {
    return this.add((await this.modifiable(p, identityId)).id, input);
  }

  /** notFound SSH_KEY_NOT_FOUND when the identity holds no such key. */
  async deleteFromIdentity(p: Principal, identityId: string, keyId: string): Promise<void> {
    const row = await this.modifiable(p, identityId);
    if (!(await this.remove(row.id, keyId))) throw notFound('SSH key not found', 'SSH_KEY_NOT_FOUND');
  }

  // ---- a user's own keys ----------------------------------------------------------

  async listOwn(p: Principal): Promise<{ keys: SshKeyOut[] }> {
    return this.list((await this.access.requireAccount(p)).identityId);
  }

  async addOwn(p: Principal, input: NewSshKey): Promise<SshKeyOut> {
    return this.add((await this.access.requireAccount(p)).identityId, input);
  }

  /** notFound SSH_KEY_NOT_FOUND when the caller holds no such key. */
  async deleteOwn(p: Principal, keyId: string): Promise<void> {
    const u = await this.access.requireAccount(p);
    if (!(await this.remove(u.identityId, keyId))) throw notFound('SSH key not found', 'SSH_KEY_NOT_FOUND');
  }

  // ---- any user's keys, for admins ------------------------------------------------

  async listForUser(p: Principal, username: string): Promise<{ keys: SshKeyOut[] }> {
    return this.list(await this.userIdentity(p, username));
  }

  async addForUser(p: Principal, username: string, input: NewSshKey): Promise<SshKeyOut> {
    return this.add(await this.userIdentity(p, username), input);
  }

  /** False when the user holds no such key. */
  async deleteForUser(p: Principal, username: string, keyId: string): Promise<boolean> {
    return this.remove(await this.userIdentity(p, username), keyId);
  }
}
