import Type from 'typebox';
import { errorResponses, Nullable, Paging, Str } from '../common-schemas.ts';

/** Schemas of the admin API (`/admin/v1`, an admin's Bearer API key). */

const Party = Type.Object({ kind: Type.String(), id: Nullable(Type.String()), name: Nullable(Type.String()) });

export const listAudit = {
  summary: 'The audit log, newest first: grants, tokens, identities, users, groups and denied accesses (admin)',
  querystring: Type.Object(
    {
      ...Paging(1000, 100),
      since: Type.Optional(Type.String({ format: 'date-time', maxLength: 64, title: 'since', description: 'Records from this time on (RFC 3339)' })),
      actor: Type.Optional(Str(255, { title: 'actor', description: 'An actor id or name (user id or username, identity id)' })),
      target: Type.Optional(Str(255, { title: 'target', description: 'A target id or name (repository id or full name, identity id, token id, username, group name, VM id)' })),
    },
    { additionalProperties: false },
  ),
  response: {
    200: Type.Object({
      entries: Type.Array(
        Type.Object({
          id: Type.String(),
          at: Type.String(),
          actor: Party,
          action: Type.String({ description: 'e.g. token.create, grant.git, access.denied, ref.denied, token.expired' }),
          target: Party,
          outcome: Type.String({ description: 'ok or denied' }),
          detail: Type.Unknown({ description: 'What changed, or the facts of a denial; never a secret' }),
        }),
      ),
      total: Type.Integer(),
      offset: Type.Integer(),
    }),
    ...errorResponses,
  },
};
