import Type from 'typebox';
import { Empty, errorResponses } from '../common-schemas.ts';
import { NewSshKeyBody, SshKey, SshKeyId, SshKeyList } from '../ssh-key-schemas.ts';

/** Schemas of the user API: what an account does for itself (`/user/v1`, Bearer API key). */

const ok = <T>(schema: T) => ({ 200: schema, ...errorResponses });

export const listSshKeys = { summary: 'List your SSH public keys', response: ok(SshKeyList) };
export const addSshKey = {
  summary: 'Register an SSH public key for git over SSH (400: malformed, private, DSA or RSA < 2048; 409: registered anywhere already)',
  body: NewSshKeyBody,
  response: ok(SshKey),
};
export const deleteSshKey = { summary: 'Remove one of your SSH public keys', params: Type.Object({ key: SshKeyId }), response: ok(Empty) };
