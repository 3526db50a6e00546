import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import fastifySwagger, { type SwaggerTransformObject } from '@fastify/swagger';
import type { FastifyInstance, FastifySchema } from 'fastify';
import Type from 'typebox';
import { ErrorBody } from './common-schemas.ts';

/** Surfaces by URL prefix: their tag in the document and how callers authenticate. */
const SURFACES: { prefix: string; tag: string; security: Record<string, string[]>[] }[] = [
  { prefix: '/identity/v1/', tag: 'Identity API', security: [{ bearerAuth: [] }] },
  { prefix: '/git/v1/', tag: 'Git REST API', security: [{ bearerAuth: [] }, { identityToken: [] }, { basicAuth: [] }, {}] },
  { prefix: '/_admin/api', tag: 'Admin JSON-RPC', security: [] },
  { prefix: '/user/v1/', tag: 'User API', security: [{ bearerAuth: [] }] },
  { prefix: '/vm/v1/', tag: 'VM registry', security: [{ bearerAuth: [] }] },
  { prefix: '/v5/', tag: 'Identity API v5', security: [{ bearerAuth: [] }, { identityToken: [] }] },
  { prefix: '/admin/v1/', tag: 'Admin API', security: [{ bearerAuth: [] }] },
];
const SERVER = { tag: 'Server', security: [] };
const SMART_HTTP = 'Git smart HTTP';

const TAGS = [
  { name: 'Identity API', description: "Freestyle's IdentityApi (seed 000): identities, access tokens, git and VM grants. Errors: `{code, message}`." },
  { name: 'Git REST API', description: 'The Freestyle Git API as the `freestyle-sandboxes` SDK calls it. Anonymous callers reach public repositories. Errors: `{code, message}`.' },
  { name: 'Admin JSON-RPC', description: "RhodeCode's admin API (seed 002): `{id, api_key, method, args}` in, always HTTP 200 with `{id, result, error}`." },
  { name: 'User API', description: "What an account does for itself with its API key: its SSH public keys (git over SSH) and its API keys. Errors: `{code, message}`." },
  { name: 'VM registry', description: 'The machines identities may reach through the SSH gateway, each registered by an account, and the gateway key a VM installs. Errors: `{code, message}`.' },
  { name: 'Identity API v5', description: "`/v5/identities` as the current Freestyle SDK (`freestyle` 0.2.17) calls it: the same identities, tokens and grants as `/identity/v1`. Errors: `{code, message}`." },
  { name: 'Admin API', description: 'The audit log, for admins. Errors: `{code, message}`.' },
  { name: SMART_HTTP, description: "git's own protocol (v0/v1/v2); `repo` is an id or a full name, with or without `.git`. Errors are plain text that git prints." },
  { name: 'Server', description: 'Health, webhook signing keys, this document.' },
];

/** What the wildcard at the end of a route is, in the document: a branch, a tag or a file path. */
const wildcardName = (url: string) => (url.includes('/refs/heads/') ? 'branch' : url.includes('/refs/tags/') ? 'tag' : 'path');

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * A request body to describe in /openapi.json that Fastify does not validate, because the
     * route checks it itself (JSON-RPC answers every failure with HTTP 200).
     */
    openapiBody?: unknown;
  }
}

/**
 * Per route: the surface's tag and security, an operation id, and a name for the trailing
 * wildcard (`*` -> `{branch}`, its `params` property renamed to match). Git's catch-all
 * route and the docs' static files are left out (smart HTTP is described by hand below).
 */
function transform({ schema: given, url, route }: { schema: FastifySchema | undefined; url: string; route: { method: string | string[]; config?: unknown } }): { schema: FastifySchema; url: string } {
  const described = (route.config as { openapiBody?: unknown } | undefined)?.openapiBody;
  const schema = described ? { ...given, body: described } : (given ?? {});
  if (url === '/*' || url === '/docs' || url.startsWith('/docs/')) return { schema: { ...schema, hide: true }, url };
  const surface = SURFACES.find((s) => url.startsWith(s.prefix)) ?? SERVER;
  const method = [route.method].flat()[0]!.toLowerCase();
  const operationId = `${method}${url.replace(/\*$/, wildcardName(url)).replace(/:/g, '').replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ?? '').toUpperCase())}`;
  const out: Record<string, unknown> = { operationId, ...schema, tags: [surface.tag], security: surface.security };
  let docUrl = url;
  if (url.endsWith('*')) {
    const name = wildcardName(url);
    docUrl = `${url.slice(0, -1)}{${name}}`;
    const params = schema.params as { properties: Record<string, unknown>; required?: string[] } | undefined;
    if (params?.properties?.['*']) {
      const { '*': wild, ...rest } = params.properties;
      out.params = { ...params, properties: { ...rest, [name]: wild }, required: [...(params.required ?? []).filter((r) => r !== '*'), name] };
    }
  }
  return { schema: out as FastifySchema, url: docUrl };
}

const binary = { type: 'string', format: 'binary' } as const;
const text = (description: string) => ({ description, content: { 'text/plain': { schema: { type: 'string' } } } });
const repoParam = { name: 'repo', in: 'path', required: true, description: 'Repository id or full name (`group/sub/name`, slashes included), with or without `.git`', schema: { type: 'string', maxLength: 260 } };
const protocolHeader = { name: 'Git-Protocol', in: 'header', required: false, description: 'e.g. `version=2`; passed to git only if it is key=value pairs', schema: { type: 'string', maxLength: 256 } };
const gitErrors = { 401: text('Authentication required or failed (with `WWW-Authenticate: Basic`)'), 403: text('Visible but not allowed (a push without write access), or not the smart protocol'), 404: text('No such repository, or hidden from the caller'), 405: text('Wrong method'), 415: text('Wrong Content-Type') };
const gitSecurity = [{ basicAuth: [] }, { bearerAuth: [] }, {}];

/** Git smart HTTP, served by one catch-all route (its handler parses the path), described by hand. */
const SMART_HTTP_PATHS: Record<string, unknown> = {
  '/{repo}/info/refs': {
    get: {
      tags: [SMART_HTTP],
      operationId: 'gitInfoRefs',
      summary: 'Ref advertisement (read access for upload-pack, write access for receive-pack)',
      security: gitSecurity,
      parameters: [repoParam, { name: 'service', in: 'query', required: true, schema: { type: 'string', enum: ['git-upload-pack', 'git-receive-pack'] } }, protocolHeader],
      responses: {
        200: { description: 'pkt-line ref advertisement', content: { 'application/x-git-upload-pack-advertisement': { schema: binary }, 'application/x-git-receive-pack-advertisement': { schema: binary } } },
        ...gitErrors,
      },
    },
  },
  ...Object.fromEntries(
    (['git-upload-pack', 'git-receive-pack'] as const).map((svc) => [
      `/{repo}/${svc}`,
      {
        post: {
          tags: [SMART_HTTP],
          operationId: svc === 'git-upload-pack' ? 'gitUploadPack' : 'gitReceivePack',
          summary: svc === 'git-upload-pack' ? 'Fetch and clone (read access)' : 'Push (write access; a refused push writes nothing)',
          security: gitSecurity,
          parameters: [repoParam, protocolHeader, { name: 'Content-Encoding', in: 'header', required: false, schema: { type: 'string', enum: ['gzip', 'x-gzip'] } }],
          requestBody: { required: true, content: { [`application/x-${svc}-request`]: { schema: binary } } },
          responses: { 200: { description: `${svc} result (pkt-line, streamed)`, content: { [`application/x-${svc}-result`]: { schema: binary } } }, ...gitErrors },
        },
      },
    ]),
  ),
};

/**
 * Registers @fastify/swagger (call before any route: it collects them as they are added) and
 * the shared schemas routes refer to; `registerDocs` then serves the document and the docs.
 * `/openapi.json` is generated from the routes' own schemas, the ones Fastify validates and
 * serialises with.
 */
export async function registerOpenApi(app: FastifyInstance): Promise<void> {
  app.addSchema(ErrorBody);
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Palisade',
        version: '0.1.0',
        description: 'Self-hosted Git server: the Freestyle Identity and Git APIs, the RhodeCode admin JSON-RPC API and git smart HTTP, on one port. Browsable at `/docs`.',
      },
      tags: TAGS,
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', description: 'An account API key (`pal_…`) or an identity access token' },
          basicAuth: { type: 'http', scheme: 'basic', description: 'git: `x-access-token` + an access token or API key, or a username + its password or API key' },
          identityToken: { type: 'apiKey', in: 'header', name: 'X-Freestyle-Identity-Access-Token', description: "The SDK's client-side mode: an identity access token" },
        },
      },
      security: [{ bearerAuth: [] }],
    },
    // shared schemas keep their $id as their name under components/schemas
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
    transform,
    transformObject: (doc) => {
      const o = (doc as { openapiObject: { paths?: Record<string, unknown> } }).openapiObject;
      return { ...o, paths: { ...o.paths, ...SMART_HTTP_PATHS } } as ReturnType<SwaggerTransformObject>;
    },
  });
}

const OpenApiDocument = Type.Object({ openapi: Type.String(), info: Type.Object({}, { additionalProperties: true }) }, { additionalProperties: true, description: 'This OpenAPI 3.1 document' });

/** The few swagger-ui-dist files the docs page loads: a fixed list, so no request names a file. */
const DOCS_FILES: Record<string, string> = {
  'swagger-ui.css': 'text/css; charset=utf-8',
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
  'favicon-32x32.png': 'image/png',
  'favicon-16x16.png': 'image/png',
};

const DOCS_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Palisade API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/favicon-32x32.png" sizes="32x32">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
`;

// Offline: the document comes from this server, no validator badge calls out.
const DOCS_INIT = `window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#swagger-ui', presets: [SwaggerUIBundle.presets.apis], layout: 'BaseLayout', validatorUrl: null, deepLinking: true });\n`;

/**
 * `GET /openapi.json` and the browsable docs at `/docs`: a small page and swagger-ui's own
 * files, read from the installed `swagger-ui-dist` by fixed names (works offline, no CDN).
 */
export function registerDocs(app: FastifyInstance): void {
  app.get('/openapi.json', { schema: { summary: 'This OpenAPI document', response: { 200: OpenApiDocument } } }, async () => app.swagger());

  const dist = path.dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
  const headers = { 'cache-control': 'public, max-age=3600', 'x-content-type-options': 'nosniff' };
  app.get('/docs', async (_req, reply) => reply.headers(headers).type('text/html; charset=utf-8').send(DOCS_PAGE));
  app.get('/docs/init.js', async (_req, reply) => reply.headers(headers).type('text/javascript; charset=utf-8').send(DOCS_INIT));
  for (const [name, type] of Object.entries(DOCS_FILES)) {
    const file = path.join(dist, name);
    app.get(`/docs/${name}`, async (_req, reply) => reply.headers(headers).type(type).send(fs.createReadStream(file)));
  }
}
