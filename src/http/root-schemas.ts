import Type from 'typebox';
import { errorResponses } from './common-schemas.ts';

/** Schemas of the server's own routes (registered in app.ts): health and the webhook signing keys. */

export const healthz = {
  summary: 'Ready to serve (the database answers)',
  response: { 200: Type.Object({ status: Type.Literal('ok') }), ...errorResponses },
};

/** Only the public members of the key: whatever else the object holds is never serialised. */
const Jwk = Type.Object({
  kty: Type.String(),
  crv: Type.String(),
  x: Type.String(),
  kid: Type.String(),
  alg: Type.String(),
  use: Type.String(),
});

export const jwks = {
  summary: 'Public keys that verify webhook signatures (x-freestyle-signature, EdDSA)',
  response: { 200: Type.Object({ keys: Type.Array(Jwk) }), ...errorResponses },
};
