import Type, { type TSchema } from 'typebox';
import { RpcEnvelope } from './args.ts';
import type { RpcMethod } from './methods.ts';

/**
 * Schemas of `POST /_admin/api` (seed 002): the envelope, each method's `args`, the answer.
 * The route checks the request itself (rpc/routes.ts), in the protocol's order and always
 * answering HTTP 200; the same compiled schemas are what /openapi.json shows.
 */

/** `{id, result, error}`: exactly one of result and error is non-null. */
export const RpcResponse = Type.Object(
  {
    id: Type.Unknown({ description: 'The request id, echoed as sent (null when the request could not be read)' }),
    result: Type.Unknown({ description: "The method's result, or null on failure" }),
    error: Type.Union([Type.String(), Type.Null()], { description: 'What went wrong, or null' }),
  },
  { description: 'Always HTTP 200' },
);

/** The request body in the document: one envelope per method, told apart by `method`. */
export function rpcRequestDoc(methods: Record<string, RpcMethod>, aliases: Record<string, string>): TSchema {
  const spelled = (name: string) => Object.entries(aliases).filter(([, to]) => to === name).map(([from]) => from);
  const branches = Object.entries(methods).map(([name, m]) => ({
    type: 'object',
    title: name,
    description: `${m.summary}${spelled(name).length ? ` (also called ${spelled(name).join(', ')})` : ''}`,
    required: ['api_key', 'method'],
    additionalProperties: false,
    properties: { ...RpcEnvelope.properties, method: { type: 'string', enum: [name, ...spelled(name)] }, args: m.args.schema },
  }));
  return Type.Unsafe({ oneOf: branches, description: 'Any Content-Type; the body is read as JSON' });
}
