import Type, { type TSchema, type TString, type TStringOptions } from 'typebox';
import { UUID_PATTERN } from '../domain/validate.ts';

/**
 * Building blocks for the route schemas of every surface (TypeBox: plain JSON Schema, one
 * source for validation, serialisation and /openapi.json). Schemas check shapes: types,
 * lengths, bounds, NUL-free strings; what a value means (branch names, revisions, object
 * ids, repository names) stays in the domain layer.
 */

/** No NUL anywhere: PostgreSQL refuses `\u0000` in text, and no id or name needs one. */
export const NO_NUL_PATTERN = '^[^\\u0000]*$';

/** Largest value of a 32-bit signed integer: the bound of every offset and limit. */
export const MAX_INT32 = 2 ** 31 - 1;

/**
 * A string that may reach the database or git: NUL-free and bounded. `title` names it in
 * validation messages ("identity id must be a UUID").
 */
export const Str = (maxLength: number, opts: TStringOptions = {}): TString => Type.String({ pattern: NO_NUL_PATTERN, maxLength, ...opts });

/** A UUID (any case); `title` is how messages name it, e.g. "token id". */
export const Uuid = (title: string, description?: string): TString => Type.String({ pattern: UUID_PATTERN, title, ...(description ? { description } : {}) });

/** The characters of a repository id or full name (the domain checks which names are valid). */
export const REPO_REF_PATTERN = '^[A-Za-z0-9_][A-Za-z0-9._/-]*$';

/** A repository path parameter: its id (UUID) or its full name (`group/sub/name`, URL-encoded). */
export const RepoRef = (title = 'repository'): TString =>
  Type.String({ pattern: REPO_REF_PATTERN, maxLength: 255, title, description: 'Repository id (UUID) or full name (`group/sub/name`, URL-encoded)' });

/** A non-negative integer query parameter, bounded (2^31-1 unless less is documented). */
export const Int = (opts: { minimum?: number; maximum?: number; default?: number; description?: string } = {}) =>
  Type.Integer({ minimum: 0, maximum: MAX_INT32, ...opts });

/** `limit` and `offset` of a paged listing. */
export const Paging = (maxLimit: number, defLimit: number) => ({
  limit: Type.Optional(Int({ maximum: maxLimit, description: `Page size, at most ${maxLimit} (default ${defLimit})` })),
  offset: Type.Optional(Int({ description: 'Items to skip' })),
});

/** One of a few strings (a plain `enum`: the clearest form in messages and in the docs). */
export const Enum = <const V extends string>(values: readonly V[], description?: string) =>
  Type.Unsafe<V>({ type: 'string', enum: [...values], ...(description ? { description } : {}) });

/** What a `BoolQuery` parameter may be. */
export type BoolText = 'true' | 'false' | '1' | '0';

/** A boolean query parameter: `true|false|1|0` (`queryBool` reads it). */
export const BoolQuery = (description?: string) => Enum<BoolText>(['true', 'false', '1', '0'], description);

/** The value of a `BoolQuery` parameter; undefined when absent. */
export const queryBool = (v: BoolText | undefined): boolean | undefined => (v === undefined ? undefined : v === 'true' || v === '1');

/** `T` or `null`. */
export const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

/** The body of every REST error: a Freestyle code (the SDK picks its typed error by it) and a safe message. */
export const ErrorBody = Type.Object(
  { code: Type.String({ description: 'Freestyle error code, e.g. REPO_NOT_FOUND, BAD_REQUEST' }), message: Type.String() },
  { $id: 'ErrorBody', title: 'Error' },
);

/** The error responses every REST operation may answer with, keyed as Fastify and OpenAPI expect. */
export const errorResponses = {
  '4xx': Type.Ref('ErrorBody'),
  '5xx': Type.Ref('ErrorBody'),
};

/** `{}`: what deletes and grants answer. */
export const Empty = Type.Object({}, { description: 'Empty object' });
