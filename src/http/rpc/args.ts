import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import Type, { type TObject, type TSchema } from 'typebox';
import { invalid } from '../../domain/errors.ts';
import { Str } from '../common-schemas.ts';
import { AJV_OPTIONS, problemText } from '../validation.ts';

/**
 * JSON-RPC arguments as JSON Schemas (TypeBox), compiled once with ajv. Unlike the REST
 * bodies, nothing is coerced or silently dropped: an unknown argument is an error naming it,
 * as seed 002's server answers.
 */
const rpcAjv = new Ajv({ ...AJV_OPTIONS, coerceTypes: false, removeAdditional: false });

export type ArgValues = Record<string, string | number | boolean | null | undefined>;

/** A string argument: NUL-free (PostgreSQL refuses NUL) and bounded. */
export const RpcStr = (maxLength = 255, opts: { description?: string; default?: string } = {}) => Str(maxLength, opts);

/** A string argument that may be `null` (kept as null, unlike other optional arguments). */
export const RpcNullableStr = (maxLength = 255, description?: string) => Type.Union([RpcStr(maxLength), Type.Null()], description ? { description } : {});

/** An integer argument, bounded. */
export const RpcInt = (minimum: number, maximum: number, description?: string) => Type.Integer({ minimum, maximum, ...(description ? { description } : {}) });

const BOOL_TEXT = '^(?:[Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]|1|0)$';

/** A boolean argument; RhodeCode's clients also send "true"/"1"/1 and friends. */
export const RpcBool = (def?: boolean) =>
  Type.Unsafe<boolean>({
    anyOf: [{ type: 'boolean' }, { type: 'string', pattern: BOOL_TEXT }, { type: 'integer', enum: [0, 1] }],
    description: 'true or false (also "true"/"false", "1"/"0", 1/0)',
    ...(def === undefined ? {} : { default: def }),
  });

const isBoolSchema = (s: unknown): boolean => (s as { anyOf?: { type?: string }[] } | undefined)?.anyOf?.[0]?.type === 'boolean';
const acceptsNull = (s: unknown): boolean => !!(s as { anyOf?: { type?: string }[] } | undefined)?.anyOf?.some((b) => b.type === 'null');
const toBool = (v: unknown): boolean => v === true || v === 1 || (typeof v === 'string' && /^(true|1)$/i.test(v));

/** The arguments of one method: their schema and the other names callers use for some of them. */
export interface ArgSpec {
  schema: TObject;
  /** other name -> argument name, e.g. `users_group` -> `group_name` */
  aliases?: Record<string, string>;
}

/** One message for the first error, in seed 002's words ("missing required argument(s): "x""). */
function argsMessage(e: ErrorObject, all: ErrorObject[]): string {
  const p = e.params as Record<string, unknown>;
  if (e.keyword === 'required') return `missing required argument(s): "${String(p.missingProperty)}"`;
  if (e.keyword === 'additionalProperties') return `unexpected argument(s): "${String(p.additionalProperty).slice(0, 50)}"`;
  const name = e.instancePath.split('/')[1] ?? '';
  const where = all.find((x) => x.keyword === 'anyOf' && x.instancePath === e.instancePath);
  const s = (where ?? e).parentSchema;
  if (isBoolSchema(s)) return `argument "${name}" must be a boolean`;
  return `argument "${name}" ${problemText(where ?? e, all)}`;
}

/** A method's arguments, compiled once; `parse` checks one request's `args`. */
export class CompiledArgs {
  private readonly validate: ValidateFunction;
  private readonly props: Record<string, TSchema>;
  private readonly required: Set<string>;

  constructor(private readonly spec: ArgSpec) {
    this.validate = rpcAjv.compile(spec.schema);
    this.props = spec.schema.properties as Record<string, TSchema>;
    this.required = new Set(spec.schema.required ?? []);
  }

  /**
   * Checks `raw`: aliases become the argument's name (both given is an error), `null` for an
   * optional argument that is not nullable means "not given" (its default applies), then the
   * schema decides; booleans given as text or 0/1 become booleans. Throws `invalid` naming
   * the argument.
   */
  parse(raw: unknown): ArgValues {
    if (raw === undefined || raw === null) raw = {};
    if (typeof raw !== 'object' || Array.isArray(raw)) throw invalid('"args" must be a JSON object');
    const args: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
      const name = (this.spec.aliases && Object.hasOwn(this.spec.aliases, key) ? this.spec.aliases[key] : undefined) ?? key;
      if (Object.hasOwn(args, name)) throw invalid(`argument "${name}" given twice (as "${key.slice(0, 50)}" and another name)`);
      if (value === null && !this.required.has(name) && Object.hasOwn(this.props, name) && !acceptsNull(this.props[name])) continue;
      args[name] = value;
    }
    if (!this.validate(args)) throw invalid(argsMessage(this.validate.errors![0]!, this.validate.errors!));
    for (const [name, s] of Object.entries(this.props)) if (isBoolSchema(s) && args[name] !== undefined) args[name] = toBool(args[name]);
    return args as ArgValues;
  }
}

/** The request envelope `{id, api_key, method, args}`; `args` is checked by the method's own schema. */
export const RpcEnvelope = Type.Object(
  {
    id: Type.Optional(Type.Unknown({ description: 'Any JSON value; echoed in the answer' })),
    api_key: Type.String({ minLength: 1, maxLength: 512, description: "The caller's API key" }),
    method: Type.String({ minLength: 1, maxLength: 100, description: 'Method name' }),
    args: Type.Optional(Type.Unknown({ description: "The method's arguments (a JSON object)" })),
  },
  { additionalProperties: false },
);
const validateEnvelope = rpcAjv.compile(RpcEnvelope);

/** Checks the envelope; throws `invalid` with the protocol's messages ("Missing api_key", …). */
export function checkEnvelope(body: Record<string, unknown>): { api_key: string; method: string; args: unknown } {
  if (validateEnvelope(body)) return body as { api_key: string; method: string; args: unknown };
  const extra = Object.keys(body).filter((k) => !Object.hasOwn(RpcEnvelope.properties, k));
  if (extra.length) throw invalid(`unexpected key(s) in request: ${extra.map((k) => `"${k.slice(0, 50)}"`).join(', ')}`);
  const bad = (key: string) => validateEnvelope.errors!.some((e) => e.instancePath === `/${key}` || (e.keyword === 'required' && (e.params as { missingProperty: string }).missingProperty === key));
  if (bad('api_key')) throw invalid(typeof body.api_key === 'string' && body.api_key !== '' ? 'Invalid API KEY' : 'Missing api_key');
  if (bad('method')) throw invalid(typeof body.method === 'string' && body.method !== '' ? `Unknown method: ${body.method.slice(0, 100)}` : 'Missing method name');
  throw invalid('the request body must be a JSON object {id, api_key, method, args}');
}
