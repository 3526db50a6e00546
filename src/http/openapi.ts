import type { FastifyInstance, RouteOptions } from 'fastify';

interface Op {
  method: string;
  url: string;
}

const SURFACES: [RegExp, string][] = [
  [/^\/identity\/v1\//, 'Identity API (Freestyle, seed 000)'],
  [/^\/git\/v1\//, 'Git REST API (Freestyle)'],
  [/^\/_admin\/api/, 'Admin JSON-RPC (RhodeCode, seed 002)'],
];

/**
 * `/openapi.json`: an OpenAPI 3 document generated from the routes Fastify
 * registered (paths, methods, path parameters, tags per surface). Request and
 * response bodies are described in the README and the SDK's types: the routes
 * validate by hand, so there are no JSON schemas to lift them from.
 */
export function registerOpenApi(app: FastifyInstance): void {
  const ops: Op[] = [];
  app.addHook('onRoute', (r: RouteOptions) => {
    for (const m of [r.method].flat()) if (m !== 'HEAD' && !r.url.startsWith('/openapi') && r.url !== '/*') ops.push({ method: m.toLowerCase(), url: r.url });
  });
  app.get('/openapi.json', async () => {
    const paths: Record<string, Record<string, unknown>> = {};
    for (const op of ops) {
      const params: string[] = [];
      let p = op.url.replace(/:([A-Za-z_]+)/g, (_m, n: string) => {
        params.push(n);
        return `{${n}}`;
      });
      if (p.endsWith('*')) {
        // the rest of the path: a branch or tag name (may hold "/"), or a file path
        const name = p.includes('/refs/heads/') ? 'branch' : p.includes('/refs/tags/') ? 'tag' : 'path';
        p = `${p.slice(0, -1)}{${name}}`;
        params.push(name);
      }
      const tag = SURFACES.find(([re]) => re.test(op.url))?.[1] ?? 'Server';
      (paths[p] ??= {})[op.method] = {
        tags: [tag],
        operationId: `${op.method}${p.replace(/[^A-Za-z0-9]+/g, '_')}`,
        parameters: params.map((name) => ({ name, in: 'path', required: true, schema: { type: 'string' } })),
        responses: { default: { description: 'JSON; errors are {code, message} (JSON-RPC: HTTP 200 with {id, result, error})' } },
      };
    }
    paths['/{repo}/info/refs'] = { get: { tags: ['Git smart HTTP'], parameters: [{ name: 'repo', in: 'path', required: true, schema: { type: 'string' } }, { name: 'service', in: 'query', required: true, schema: { type: 'string', enum: ['git-upload-pack', 'git-receive-pack'] } }], responses: { 200: { description: 'ref advertisement' } } } };
    for (const svc of ['git-upload-pack', 'git-receive-pack']) paths[`/{repo}/${svc}`] = { post: { tags: ['Git smart HTTP'], parameters: [{ name: 'repo', in: 'path', required: true, schema: { type: 'string' } }], responses: { 200: { description: `${svc} result` } } } };
    return {
      openapi: '3.0.3',
      info: { title: 'Palisade', version: '0.1.0', description: 'Self-hosted Git server: Freestyle Identity and Git APIs, RhodeCode admin JSON-RPC, git smart HTTP.' },
      components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer' }, basic: { type: 'http', scheme: 'basic' } } },
      security: [{ apiKey: [] }],
      paths,
    };
  });
}
