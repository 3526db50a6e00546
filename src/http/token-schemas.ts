import Type from 'typebox';
import { Nullable, Str } from './common-schemas.ts';

/**
 * Token shapes shared by the Identity API (v1 and v5), the user API's API keys and the
 * explanation of a decision. What a value means (an end in the past, past the server's
 * ceiling) is checked by the services.
 */

/** Ten years: the longest `ttlSeconds`. */
export const MAX_TTL_SECONDS = 10 * 366 * 86400;

/** The body of a token's creation: all optional (the SDKs send none, or `{}`). */
export const NewTokenBody = Type.Object(
  {
    name: Type.Optional(Nullable(Str(200, { title: 'name', description: 'A label for the token' }))),
    expiresAt: Type.Optional(Nullable(Type.String({ format: 'date-time', maxLength: 64, title: 'expiresAt', description: 'When the token stops working (RFC 3339); not with ttlSeconds' }))),
    ttlSeconds: Type.Optional(Nullable(Type.Integer({ minimum: 1, maximum: MAX_TTL_SECONDS, title: 'ttlSeconds', description: 'Seconds from now until the token stops working; not with expiresAt' }))),
  },
  { additionalProperties: false, description: 'Without an end, a token lives forever, or as long as PALISADE_MAX_TOKEN_LIFETIME_SECONDS allows' },
);

const tokenFields = {
  id: Type.String(),
  name: Nullable(Type.String()),
  createdAt: Type.String(),
  expiresAt: Nullable(Type.String({ description: 'RFC 3339; null: never' })),
};

/** A token as listings show it: never the secret. */
export const TokenInfo = Type.Object({ ...tokenFields, lastUsedAt: Nullable(Type.String({ description: 'Written at most once a minute' })) });

/** A token just created: the secret, shown once. */
export const CreatedToken = Type.Object({ ...tokenFields, token: Type.String({ description: 'The secret, shown this once' }) });

/** One fact of a decision, as the decision point weighed it. */
export const Fact = Type.Object(
  {
    fact: Type.String({ description: 'repository, credential, account, admin, owner, userGrant, groupGrant, identityGrant, visibility, sync, refRule or protectedBranch' }),
    detail: Type.String(),
    decisive: Type.Boolean({ description: 'The fact that settled the outcome' }),
    level: Type.Optional(Type.String({ description: 'What this fact alone gives: none, read, write or admin' })),
    effect: Type.Optional(Type.String({ description: 'Ref facts: allow, deny or fastForwardOnly' })),
    name: Type.Optional(Type.String({ description: "A group's name, a pattern" })),
  },
  { title: 'Fact' },
);
