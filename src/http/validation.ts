import { Ajv, type ErrorObject, type Options, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import type { FastifyInstance, FastifySchemaCompiler } from 'fastify';
import { LINUX_USER_PATTERN, UUID_PATTERN, VM_ID_PATTERN } from '../domain/validate.ts';
import { invalid } from '../domain/errors.ts';
import { NO_NUL_PATTERN, REPO_REF_PATTERN } from './common-schemas.ts';

/**
 * Options every schema compiler of ours shares. `allErrors: false` stops at the first error
 * (a hostile body cannot make validation slow); `verbose` keeps the failing schema, whose
 * `title` names the field in messages; `removeAdditional` drops properties a schema does not
 * declare (with `additionalProperties: false`) before any handler sees them.
 */
export const AJV_OPTIONS: Options = { allErrors: false, verbose: true, useDefaults: true, removeAdditional: true, allowUnionTypes: true, discriminator: true, strict: true };

function ajv(opts: Options): Ajv {
  const a = new Ajv({ ...AJV_OPTIONS, ...opts });
  addFormats.default(a);
  return a;
}

/** Path and query values arrive as text: integers and booleans are coerced, an array never becomes a scalar. */
const textAjv = ajv({ coerceTypes: true });
/** JSON bodies keep the types they were sent with: `"1"` is not a number, `1` is not a string. */
const jsonAjv = ajv({ coerceTypes: false });

/**
 * ajv's coercion turns the text "Infinity" or "1e999" into Infinity and then skips every number
 * keyword, bounds included (ajv-validator/ajv#2212). A path or query value coerced to a number
 * that is not finite therefore fails here as the non-integer it is, and no handler sees one.
 * (A JSON body cannot carry one: its numbers are not coerced, and ajv refuses non-finite ones.)
 */
function finiteNumbers(validate: ValidateFunction): ValidateFunction {
  const props = (validate.schema as { properties?: Record<string, { type?: unknown }> }).properties ?? {};
  const checked = ((data: unknown, ctx?: Parameters<ValidateFunction>[1]) => {
    const ok = validate(data, ctx);
    checked.errors = validate.errors;
    if (!ok || !data || typeof data !== 'object') return ok;
    for (const [key, value] of Object.entries(data)) {
      if (typeof value !== 'number' || Number.isFinite(value)) continue;
      const parentSchema = props[key];
      checked.errors = [{ instancePath: `/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`, schemaPath: `#/properties/${key}/type`, keyword: 'type', params: { type: parentSchema?.type ?? 'number' }, message: 'must be a finite number', parentSchema, data: value }];
      return false;
    }
    return true;
  }) as ValidateFunction;
  checked.schema = validate.schema;
  checked.schemaEnv = validate.schemaEnv;
  return checked;
}

/** Fastify's validator compiler for the REST surfaces: bodies exact, path and query coerced (and finite). */
export const restValidatorCompiler: FastifySchemaCompiler<object> = ({ schema, httpPart }) =>
  httpPart === 'body' ? (jsonAjv.compile(schema) as ValidateFunction) : finiteNumbers(textAjv.compile(schema) as ValidateFunction);

/**
 * Request validation of a REST surface (call inside its plugin): the compilers above, a query
 * parameter given twice is a 400 naming it (an array never reaches a service), and an absent
 * or `null` JSON body is read as `{}` (the SDK POSTs some endpoints without one).
 */
export function registerRestValidation(app: FastifyInstance): void {
  app.setValidatorCompiler(restValidatorCompiler);
  app.addHook('preValidation', async (req) => {
    for (const [key, value] of Object.entries(req.query as Record<string, unknown>)) {
      if (Array.isArray(value)) throw invalid(`query parameter ${key.slice(0, 50)} is given ${value.length} times; give it once`);
    }
    if (req.body === undefined || req.body === null) req.body = {};
  });
}

const PATTERN_TEXT: Record<string, string> = {
  [NO_NUL_PATTERN]: 'must not contain NUL characters',
  [UUID_PATTERN]: 'must be a UUID',
  [REPO_REF_PATTERN]: 'must be a repository id or full name',
  [VM_ID_PATTERN]: 'must be 1-128 of A-Z a-z 0-9 . _ - starting with a letter or digit',
  [LINUX_USER_PATTERN]: 'must be a Linux user name',
};

const article = (t: string) => (t === 'null' ? 'null' : /^[aeiou]/.test(t) ? `an ${t}` : `a ${t}`);

/** "must be a string or null", from a `type` keyword's expectation. */
export const typeText = (type: unknown): string => `must be ${String(type).split(',').map(article).join(' or ')}`;

/** The failing schema's `title`, if the compiler kept it (`verbose`). */
const titleOf = (s: unknown): string | undefined => (s && typeof s === 'object' && typeof (s as { title?: unknown }).title === 'string' ? (s as { title: string }).title : undefined);

/** `/files/0/path` -> `files[0].path`. */
export function fieldPath(instancePath: string): string {
  return instancePath
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((acc, p) => (/^\d+$/.test(p) ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p), '');
}

/**
 * What is wrong, without the name: "must be at most 1000", "must be one of read, write".
 * Unions (`anyOf`) whose branches all failed on their type read "must be a string or null".
 */
export function problemText(e: ErrorObject, all: ErrorObject[]): string {
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'type':
      return typeText(p.type);
    case 'enum':
      return `must be one of ${(p.allowedValues as unknown[]).map(String).join(', ')}`;
    case 'const':
      return `must be ${JSON.stringify(p.allowedValue)}`;
    case 'pattern':
      return PATTERN_TEXT[String(p.pattern)] ?? 'has an invalid format';
    case 'maxLength':
      return `must be at most ${p.limit} characters`;
    case 'minLength':
      return p.limit === 1 ? 'must not be empty' : `must be at least ${p.limit} characters`;
    case 'maximum':
      return `must be at most ${p.limit}`;
    case 'minimum':
      return `must be at least ${p.limit}`;
    case 'maxItems':
      return `must have at most ${p.limit} items`;
    case 'minItems':
      return p.limit === 1 ? 'must not be empty' : `must have at least ${p.limit} items`;
    case 'maxProperties':
      return `must have at most ${p.limit} entries`;
    case 'discriminator': {
      const branches = ((e.parentSchema as { oneOf?: { properties?: Record<string, { const?: unknown }> }[] } | undefined)?.oneOf ?? []).map((b) => b.properties?.[String(p.tag)]?.const);
      return `must have ${String(p.tag)} one of ${branches.map(String).join(', ')}`;
    }
    case 'additionalProperties':
      return `has an unknown property "${String(p.additionalProperty).slice(0, 50)}"`;
    case 'anyOf':
    case 'oneOf': {
      const branches = all.filter((x) => x !== e && x.instancePath === e.instancePath);
      if (branches.length && branches.every((x) => x.keyword === 'type' || x.keyword === 'const' || x.keyword === 'enum')) {
        const expected = branches.flatMap((x) => (x.keyword === 'type' ? String((x.params as { type: unknown }).type).split(',').map(article) : [JSON.stringify((x.params as { allowedValue?: unknown }).allowedValue ?? (x.params as { allowedValues?: unknown }).allowedValues)]));
        return `must be ${[...new Set(expected)].join(' or ')}`;
      }
      const deeper = all.find((x) => x !== e && x.keyword !== 'anyOf' && x.keyword !== 'oneOf');
      return deeper ? problemText(deeper, all) : 'does not match any allowed form';
    }
    default:
      return e.message ?? 'is invalid';
  }
}

/**
 * One sentence naming the field for the first validation error of a request part:
 * "limit must be at most 1000", "identity id must be a UUID", "files[0].path is required".
 * `part` is Fastify's validation context (`body`, `querystring`, `params`).
 */
export function validationMessage(errors: ErrorObject[], part: string | undefined): string {
  // the first error, unless it is one branch of a union whose branches all failed at its own level
  const union = errors.find((x) => x.keyword === 'anyOf' || x.keyword === 'oneOf');
  const e = union && errors.every((x) => x.instancePath === union.instancePath) ? union : errors[0];
  if (!e) return 'invalid request';
  const base = fieldPath(e.instancePath);
  const what = part === 'querystring' ? 'query parameter' : part === 'params' ? 'path parameter' : 'body';
  if (e.keyword === 'required') {
    const missing = String((e.params as { missingProperty: string }).missingProperty);
    const props = (e.parentSchema as { properties?: Record<string, unknown> } | undefined)?.properties;
    const name = titleOf(props?.[missing]) ?? (base ? `${base}.${missing}` : missing);
    return `${name} is required`;
  }
  const name = titleOf(e.parentSchema) ?? (base || what);
  return `${name} ${problemText(e, errors)}`;
}
