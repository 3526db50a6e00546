// /openapi.json is complete: every route the server registers appears in it with its path
// parameters, request body and response schemas (the routes are read from Fastify's own route
// tree, not from the document), and /docs serves swagger-ui from a fixed list of files.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildApp, openServices, type Services } from '../../src/app.ts';
import { loadConfig } from '../../src/config/index.ts';

let app: FastifyInstance;
let services: Services;
let dir: string;
let doc: any;

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'palisade-openapi-'));
  const config = loadConfig({ PALISADE_DATA_DIR: dir, PALISADE_LOG_LEVEL: 'fatal' });
  services = await openServices(config);
  app = await buildApp(config, services);
  await app.ready();
  doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json();
});
after(async () => {
  await app?.close();
  await services?.store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/**
 * The (method, url) pairs in Fastify's own route tree (`printRoutes`), HEAD left out. The tree
 * merges path prefixes, so urls here are only good for counting and for telling subtrees apart.
 */
function routeTree(): { method: string; url: string }[] {
  const out: { method: string; url: string }[] = [];
  const stack: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const m = /^([│ ]*)[├└]── (.*?)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (!m) continue;
    const depth = m[1]!.length / 4;
    stack.length = depth;
    const url = (stack[depth - 1] ?? '') + m[2]!;
    stack.push(url);
    for (const method of (m[3] ?? '').split(', ').filter((x) => x && x !== 'HEAD')) out.push({ method, url });
  }
  return out;
}

/** The route a documented path names: `{x}` -> `:x`, a trailing `{branch}`/`{tag}`/`{path}` -> `*`. */
const routeUrl = (p: string) => p.replace(/\{(branch|tag|path)\}$/, '*').replace(/\{([^}]+)\}/g, ':$1');

const SMART = ['get /{repo}/info/refs', 'post /{repo}/git-upload-pack', 'post /{repo}/git-receive-pack'];

/** POSTs that take no body (the SDK sends none). */
const NO_BODY = new Set(['post /identity/v1/identities', 'post /identity/v1/identities/{identity}/tokens', 'post /git/v1/repo/{repo_id}/github-sync/sync', 'post /git/v1/repo/{repo}/trigger/{trigger}/deliveries/{delivery}/redeliver']);

test('every registered route is in /openapi.json, and every documented operation is served', () => {
  const documented: { method: string; path: string }[] = [];
  for (const [p, item] of Object.entries(doc.paths as Record<string, object>)) for (const m of Object.keys(item)) documented.push({ method: m.toUpperCase(), path: p });
  // documented -> served: Fastify finds a route for each (smart HTTP: its catch-all)
  const unserved = documented.filter((d) => !SMART.includes(`${d.method.toLowerCase()} ${d.path}`) && !app.hasRoute({ method: d.method as 'GET', url: routeUrl(d.path) }));
  assert.deepEqual(unserved, [], 'documented operations that no route serves');
  for (const k of SMART) assert.ok(documented.some((d) => `${d.method.toLowerCase()} ${d.path}` === k), k);
  // served -> documented: as many routes as operations, apart from the docs' files, the
  // catch-alls (smart HTTP's, and the web's under its route constraint) and the web's pages (`/-/…`)
  const tree = routeTree();
  const docsFiles = tree.filter((r) => r.url === '/docs' || r.url.startsWith('/docs/'));
  const webPages = tree.filter((r) => r.url.startsWith('/-/'));
  const catchAll = tree.filter((r) => r.url === '*');
  assert.deepEqual(catchAll.map((r) => r.method).sort(), ['GET', 'POST'], 'the smart-HTTP and web catch-alls (one line of the route tree)');
  assert.ok(webPages.length >= 15, 'the web pages');
  assert.ok(!Object.keys(doc.paths).some((p) => p.startsWith('/-/')), 'web pages are not API operations');
  assert.ok(docsFiles.length >= 5, 'the docs page and its files');
  assert.ok(tree.length >= 60, `read only ${tree.length} routes from the route tree`);
  assert.equal(tree.length - docsFiles.length - webPages.length - catchAll.length, documented.length - SMART.length, 'every route (but /docs and the catch-all) is one documented operation');
});

test('every operation has its path parameters, request body and response schemas', () => {
  const problems: string[] = [];
  const ids = new Set<string>();
  for (const [p, item] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
    for (const [m, op] of Object.entries(item)) {
      const key = `${m} ${p}`;
      if (!op.operationId || ids.has(op.operationId)) problems.push(`${key}: missing or duplicate operationId`);
      ids.add(op.operationId);
      if (!op.tags?.length) problems.push(`${key}: no tag`);
      for (const [, name] of p.matchAll(/\{([^}]+)\}/g)) {
        const param = (op.parameters ?? []).find((x: { in: string; name: string }) => x.in === 'path' && x.name === name);
        if (!param?.schema?.type) problems.push(`${key}: path parameter ${name} has no schema`);
      }
      for (const param of op.parameters ?? []) if (!param.schema) problems.push(`${key}: parameter ${param.name} has no schema`);
      const ok = op.responses?.['200']?.content;
      const okSchema = ok && (Object.values(ok)[0] as { schema?: unknown }).schema;
      if (!okSchema) problems.push(`${key}: no 200 response schema`);
      if ((m === 'post' || m === 'put') && !NO_BODY.has(key)) {
        const body = op.requestBody?.content && (Object.values(op.requestBody.content)[0] as { schema?: unknown }).schema;
        if (!body) problems.push(`${key}: no request body schema`);
      }
      if (p.startsWith('/identity/') || p.startsWith('/git/v1/') || p.startsWith('/user/v1/') || p.startsWith('/vm/v1/') || p.startsWith('/v5/') || p.startsWith('/admin/v1/')) {
        for (const code of ['4XX', '5XX']) if (!op.responses?.[code]) problems.push(`${key}: no ${code} error schema`);
      }
    }
  }
  assert.deepEqual(problems, []);
  assert.equal(doc.openapi, '3.1.0');
  assert.deepEqual(Object.keys(doc.components.securitySchemes).sort(), ['basicAuth', 'bearerAuth', 'identityToken']);
  assert.equal(doc.servers, undefined, 'servers are omitted: the document works on any host');
  // query parameters come from the route schemas, bounded
  const list = doc.paths['/git/v1/repo/{repo}/git/commits'].get.parameters;
  assert.equal(list.find((x: { name: string }) => x.name === 'offset').schema.maximum, 2 ** 31 - 1);
  // each JSON-RPC method's args are described
  const rpc = doc.paths['/_admin/api'].post.requestBody.content['application/json'].schema.oneOf;
  assert.equal(rpc.length, 24);
  const group = rpc.find((b: { title: string }) => b.title === 'grant_users_group_permission');
  assert.deepEqual(group.properties.args.required, ['repo_name', 'group_name', 'perm']);
});

test('/docs: a page and swagger-ui from a fixed list of files, nothing else, no CDN', async () => {
  const page = await app.inject({ method: 'GET', url: '/docs' });
  assert.equal(page.statusCode, 200);
  assert.match(page.headers['content-type'] as string, /^text\/html/);
  assert.doesNotMatch(page.body, /https?:\/\//, 'everything comes from this server');
  const init = await app.inject({ method: 'GET', url: '/docs/init.js' });
  assert.match(init.body, /url: '\/openapi\.json'/);
  for (const [file, type] of [['swagger-ui.css', /text\/css/], ['swagger-ui-bundle.js', /javascript/], ['favicon-32x32.png', /image\/png/]] as const) {
    const r = await app.inject({ method: 'GET', url: `/docs/${file}` });
    assert.equal(r.statusCode, 200, file);
    assert.match(r.headers['content-type'] as string, type);
    assert.ok(r.rawPayload.length > 500, file);
  }
  // anything else under /docs is a 404: no request names a file on disk
  for (const url of ['/docs/package.json', '/docs/index.js', '/docs/..%2fpackage.json', '/docs/%2e%2e/%2e%2e/package.json', '/docs/swagger-ui.css/..', '/docs/oauth2-redirect.html']) {
    const r = await app.inject({ method: 'GET', url });
    assert.ok(r.statusCode === 404 || r.statusCode === 400, `${url}: ${r.statusCode}`);
    assert.doesNotMatch(r.body, /"name":\s*"(palisade|swagger-ui-dist)"/, `${url} leaked a package.json`);
  }
});
