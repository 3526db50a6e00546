import Type from 'typebox';
import { Empty, errorResponses, Uuid } from '../common-schemas.ts';
import { NewSshKeyBody, SshKey, SshKeyId, SshKeyList } from '../ssh-key-schemas.ts';
import { CreatedToken, NewTokenBody, TokenInfo } from '../token-schemas.ts';

/** Schemas of the user API: what an account does for itself (`/user/v1`, Bearer API key). */

const ok = <T>(schema: T) => ({ 200: schema, ...errorResponses });

export const listSshKeys = { summary: 'List your SSH public keys', response: ok(SshKeyList) };
export const addSshKey = {
  summary: 'Register an SSH public key for git over SSH (400: malformed, private, DSA or RSA < 2048; 409: registered anywhere already)',
  body: NewSshKeyBody,
  response: ok(SshKey),
};
export const deleteSshKey = { summary: 'Remove one of your SSH public keys', params: Type.Object({ key: SshKeyId }), response: ok(Empty) };

export const listApiKeys = { summary: 'List your API keys (never their secrets)', response: ok(Type.Object({ keys: Type.Array(TokenInfo) })) };
export const createApiKey = { summary: 'Issue an API key for yourself (shown once), optionally named and expiring', body: NewTokenBody, response: ok(CreatedToken) };
export const revokeApiKey = { summary: 'Revoke one of your API keys', params: Type.Object({ key: Uuid('API key id', 'API key id') }), response: ok(Empty) };
