import Type from 'typebox';
import { MAX_SSH_KEY_TITLE } from '../services/ssh-keys.ts';
import { Nullable, Str, Uuid } from './common-schemas.ts';

/**
 * SSH public key shapes shared by the Identity API (`/identity/v1/identities/{identity}/ssh-keys`)
 * and the user API (`/user/v1/ssh-keys`). What the key means (its type, size, validity) is
 * checked by the service.
 */

/** Longest accepted key line, comment included: a 16384-bit RSA key takes about 2,800 characters. */
export const MAX_PUBLIC_KEY_LINE = 8192;

export const SshKeyId = Uuid('key id', 'SSH key id');

export const NewSshKeyBody = Type.Object(
  {
    publicKey: Str(MAX_PUBLIC_KEY_LINE, { minLength: 1, title: 'publicKey', description: 'One OpenSSH public key line, `<type> <base64> [comment]` (a `.pub` file): ssh-ed25519, ecdsa-sha2-nistp256/384/521 or ssh-rsa of 2048 bits or more' }),
    title: Type.Optional(Nullable(Str(MAX_SSH_KEY_TITLE, { title: 'title', description: "A name for the key (default: the key's comment)" }))),
  },
  { additionalProperties: false },
);

export const SshKey = Type.Object({
  id: Type.String(),
  fingerprint: Type.String({ description: '`SHA256:…`, as `ssh-keygen -lf` prints it' }),
  title: Nullable(Type.String()),
  createdAt: Type.String(),
});

export const SshKeyList = Type.Object({ keys: Type.Array(SshKey) });
