// Security regression, malformed input reaching the database: 19 of 30,000 fuzzed requests
// answered 500 (an offset >= 2^63, repeated query parameters arriving as arrays, NUL bytes in
// ids and JSON-RPC strings on PostgreSQL). This test fuzzes EVERY operation /openapi.json
// lists (so a new route is fuzzed as soon as it is documented; JSON-RPC once per method), with
// a seeded PRNG, as admin, as a plain user, with an identity token, anonymously and with broken credentials, mixing
// valid-looking values with hostile ones (2^63, negative and huge numbers, repeated
// parameters, NUL, unicode, `../`, very long strings, wrong JSON types, invalid JSON, wrong
// content types). No answer may be a 5xx (for JSON-RPC: an "internal error") or carry a stack
// frame, a server path or SQL text, and /healthz must still answer at the end.
// PALISADE_FUZZ_SEED / PALISADE_FUZZ_REQUESTS replay or widen a run.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, test } from 'node:test';
import { api, startServer, type TestServer } from '../helpers/server.ts';

const SEED = Number(process.env.PALISADE_FUZZ_SEED ?? 0x5eed);
const REQUESTS = Number(process.env.PALISADE_FUZZ_REQUESTS ?? 4000);
const CONCURRENCY = 6;
const GHOST = '00000000-0000-4000-8000-000000000000';

/** mulberry32: a small seeded PRNG, so a failing run can be replayed exactly. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    chance: (p: number) => next() < p,
    int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!,
  };
}
const rnd = prng(SEED);

// Hostile values never contain the words the leak checks look for (paths, SQL), so an echo of
// the input in an error message cannot be mistaken for a leak.
/** NUL is what PostgreSQL refuses outright: 40% of the hostile strings carry one. */
const NUL_STRINGS = ['\u0000', 'a\u0000b', 'main\u0000', '\u0000\u0000', 'admin\u0000'];
const HOSTILE_STRINGS = [
  '',
  ' ',
  '../../etc/passwd',
  '..',
  '../',
  '-rf',
  '--upload-pack=touch x',
  'a'.repeat(300),
  'b'.repeat(5000),
  'üñíçødé',
  '😀🔥',
  '\u202eevil',
  '\ud800',
  'null',
  'true',
  '[]',
  '{}',
  '__proto__',
  'constructor',
  '$(id)',
  "'; DROP TABLE users;--",
  'a b',
  'a\nb',
  '*',
  '{*branch}',
  'HEAD@{-1}',
  'x'.repeat(101),
];
/** Past every integer type a database has: half of the hostile numbers. */
const HUGE_NUMBERS = ['9223372036854775808', '9223372036854775807', '18446744073709551616', '-9223372036854775809', '1e30'];
const HOSTILE_NUMBERS = ['-1', '2147483648', '1.5', '1e309', '0x10', 'NaN', 'Infinity', '', 'abc', ' 1'];
const HOSTILE_JSON: unknown[] = [null, true, false, 0, -1, 2 ** 63, -(2 ** 63), 1e308, 1.5, [], ['a', 'b'], {}, { $ne: 1 }, JSON.parse('{"__proto__":{"admin":true}}'), 'x'.repeat(3000), '\u0000', '../../x'];
/** URLs the server may try to fetch: all refused quickly by the outbound guard (no DNS, no network). */
const URLS = ['http://127.0.0.1:1/x.git', 'http://[::1]:1/', 'http://169.254.169.254/latest/meta-data', 'http://0x7f000001/', 'file:///etc/passwd', 'ext::sh -c id', 'ftp://127.0.0.1/x', 'not a url', 'http://10.0.0.1/x.git', ''];
const URL_FIELDS = new Set(['url', 'endpoint', 'clone_uri', 'githubRepoName', 'remoteUrl']);

/** encodeURIComponent that survives lone surrogates (encoded as the bytes a lenient client would send). */
const enc = (v: string): string => {
  try {
    return encodeURIComponent(v);
  } catch {
    return encodeURIComponent(v.replace(/[\ud800-\udfff]/g, '')) + '%ED%A0%80';
  }
};

interface Ctx {
  adminKey: string;
  userKey: string;
  identityToken: string;
  pools: Record<string, string[]>;
}

/** A value for a parameter or field called `name`: mostly plausible, sometimes hostile. */
const hostileString = () => (rnd.chance(0.4) ? rnd.pick(NUL_STRINGS) : rnd.pick(HOSTILE_STRINGS));

function stringFor(ctx: Ctx, name: string, hostileRate = 0.4): string {
  if (URL_FIELDS.has(name)) return rnd.pick(URLS);
  if (rnd.chance(hostileRate)) return hostileString();
  return rnd.pick(ctx.pools[name] ?? ctx.pools.default!);
}

type Schema = Record<string, any>;

/** A JSON value shaped by `schema`, with wrong types and hostile values mixed in. */
function valueFor(ctx: Ctx, schema: Schema | undefined, name: string, depth = 0): unknown {
  if (!schema || depth > 6) return rnd.pick(HOSTILE_JSON);
  if (rnd.chance(0.08)) return rnd.pick(HOSTILE_JSON);
  const branches = schema.oneOf ?? schema.anyOf;
  if (branches) return valueFor(ctx, rnd.pick(branches as Schema[]), name, depth + 1);
  if (schema.enum) return rnd.chance(0.9) ? rnd.pick(schema.enum as unknown[]) : hostileString();
  if (schema.const !== undefined) return rnd.chance(0.9) ? schema.const : hostileString();
  switch (schema.type) {
    case 'object': {
      const out: Record<string, unknown> = {};
      const props = (schema.properties ?? {}) as Record<string, Schema>;
      const required = new Set<string>(schema.required ?? []);
      for (const [k, s] of Object.entries(props)) if (required.has(k) || k === 'args' ? rnd.chance(0.95) : rnd.chance(0.5)) out[k] = valueFor(ctx, s, k, depth + 1);
      const extra = schema.additionalProperties ?? Object.values(schema.patternProperties ?? {})[0];
      if (typeof extra === 'object') for (let i = rnd.int(0, 3); i > 0; i--) out[stringFor(ctx, 'path')] = valueFor(ctx, extra, 'content', depth + 1);
      if (rnd.chance(0.1)) out[rnd.pick(['unknown', '__proto__', 'admin', 'a\u0000b'])] = rnd.pick(HOSTILE_JSON);
      return out;
    }
    case 'array':
      return Array.from({ length: rnd.int(0, 3) }, () => valueFor(ctx, schema.items as Schema, name, depth + 1));
    case 'integer':
    case 'number':
      return rnd.chance(0.7) ? rnd.int(0, 60) : rnd.pick([2 ** 63, -1, 2 ** 31, 1e308, 1.5, -(2 ** 53)]);
    case 'boolean':
      return rnd.chance(0.85) ? rnd.chance(0.5) : rnd.pick(['true', 1, 'yes']);
    case 'string':
      return stringFor(ctx, name);
    default:
      return rnd.chance(0.5) ? stringFor(ctx, name) : rnd.pick(HOSTILE_JSON);
  }
}

/** A query-string value for a parameter declared by `schema`. */
function queryValue(ctx: Ctx, schema: Schema, name: string): string {
  if (schema.type === 'integer' || schema.type === 'number') return rnd.chance(0.6) ? String(rnd.int(0, 60)) : rnd.pick(rnd.chance(0.5) ? HUGE_NUMBERS : HOSTILE_NUMBERS);
  if (schema.enum) return rnd.chance(0.75) ? String(rnd.pick(schema.enum as unknown[])) : hostileString();
  return stringFor(ctx, name);
}

interface Op {
  method: string;
  path: string;
  tag: string;
  params: { name: string; in: string; required?: boolean; schema: Schema }[];
  body?: { type: string; schema: Schema };
}

function operations(doc: any): Op[] {
  const ops: Op[] = [];
  for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
    for (const [method, op] of Object.entries(item)) {
      const content = op.requestBody?.content as Record<string, { schema: Schema }> | undefined;
      const [type, media] = content ? Object.entries(content)[0]! : [];
      const base = { method: method.toUpperCase(), path, tag: op.tags?.[0] ?? '', params: op.parameters ?? [] };
      // a body with one form per method (JSON-RPC) is fuzzed form by form, as that many operations
      const forms: Schema[] = media?.schema.oneOf ?? [media?.schema];
      for (const form of forms) ops.push({ ...base, body: media ? { type: type!, schema: form } : undefined });
    }
  }
  return ops;
}

interface Req {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string | Uint8Array<ArrayBuffer>;
}

function authHeaders(ctx: Ctx): { who: string; headers: Record<string, string>; rpcKey: string } {
  const r = rnd.next();
  if (r < 0.3) return { who: 'admin', headers: { authorization: `Bearer ${ctx.adminKey}` }, rpcKey: ctx.adminKey };
  if (r < 0.6) return { who: 'user', headers: { authorization: `Bearer ${ctx.userKey}` }, rpcKey: ctx.userKey };
  if (r < 0.85) return { who: 'anonymous', headers: {}, rpcKey: rnd.pick(['', 'pal_nope', '\u0000']) };
  if (r < 0.93) return { who: 'identity', headers: rnd.chance(0.5) ? { 'x-freestyle-identity-access-token': ctx.identityToken } : { authorization: `Basic ${Buffer.from(`x-access-token:${ctx.identityToken}`).toString('base64')}` }, rpcKey: ctx.identityToken };
  const broken = rnd.pick([`Basic ${Buffer.from('ad\u0000min:pw').toString('base64')}`, `Basic ${Buffer.from('admin\u0000:x').toString('base64')}`, 'Basic !!!', 'Bearer', `Bearer ${'x'.repeat(600)}`, 'Token abc', `Basic ${Buffer.from('nobody:').toString('base64')}`]);
  return { who: 'broken', headers: { authorization: broken }, rpcKey: 'pal_broken' };
}

function buildRequest(ctx: Ctx, base: string, op: Op): Req & { who: string } {
  const { who, headers, rpcKey } = authHeaders(ctx);
  const smart = op.tag === 'Git smart HTTP';
  let path = op.path.replace(/\{([^}]+)\}/g, (_m, name: string) => {
    // deleting a repository or identity aims at victims kept for it, so the other requests do
    // not race a deletion of the objects they use (every run of a seed sees the same answers)
    const v = stringFor(ctx, op.method === 'DELETE' && op.path.endsWith(`{${name}}`) && ctx.pools[`delete:${name}`] ? `delete:${name}` : name);
    // smart HTTP reads the raw path (a full name keeps its slashes); REST takes one encoded segment
    return smart && !rnd.chance(0.3) ? v.replace(/[^\x21-\x7e]/g, enc) : enc(v);
  });
  const query: string[] = [];
  for (const p of op.params) {
    if (p.in === 'query' && (p.required ? rnd.chance(0.9) : rnd.chance(0.5))) {
      const times = rnd.chance(0.07) ? 2 : 1; // a repeated parameter
      for (let i = 0; i < times; i++) query.push(`${enc(p.name)}=${enc(queryValue(ctx, p.schema, p.name))}`);
    }
    if (p.in === 'header' && rnd.chance(0.4)) headers[p.name.toLowerCase()] = rnd.pick(['version=2', 'version=1', 'x'.repeat(300), 'a=b:c=d', '../', 'gzip', 'version=2\tx']);
  }
  if (rnd.chance(0.05)) query.push(`${rnd.pick(['unknown', '__proto__', 'limit[]'])}=${enc(hostileString())}`);
  if (query.length) path += `?${query.join('&')}`;

  let body: string | Uint8Array<ArrayBuffer> | undefined;
  if (op.body) {
    const mode = rnd.next();
    if (!op.body.type.includes('json') && !op.body.type.startsWith('text/')) {
      // git's binary request bodies: garbage, with or without the right content type
      headers['content-type'] = rnd.chance(0.8) ? op.body.type : 'application/json';
      body = Uint8Array.from({ length: rnd.int(0, 200) }, () => rnd.int(0, 255));
      if (rnd.chance(0.3)) body = new TextEncoder().encode('0032want 0000000000000000000000000000000000000000\n00000009done\n');
    } else if (mode < 0.62) {
      const v = valueFor(ctx, op.body.schema, 'body') as Record<string, unknown>;
      if (v && typeof v === 'object' && !Array.isArray(v) && 'api_key' in v && rnd.chance(0.8)) v.api_key = rpcKey;
      headers['content-type'] = op.path === '/_admin/api' && rnd.chance(0.5) ? 'text/plain' : 'application/json';
      body = JSON.stringify(v);
    } else if (mode < 0.72) {
      headers['content-type'] = 'application/json';
      body = rnd.pick(['{"a":', '[1,2', 'nul', '\u0000', '{"permission":"read"}}', '{"a":1,"a":2}', '\ufeff{}', `{"x":${'['.repeat(2000)}`]);
    } else if (mode < 0.82) {
      headers['content-type'] = rnd.pick(['text/plain', 'application/x-www-form-urlencoded', 'application/xml', 'multipart/form-data; boundary=x', 'application/json; charset=utf-16']);
      body = rnd.pick(['a=1&b=2', '<x/>', '{"name":"x"}', '--x\r\n\r\n--x--']);
    } else if (mode < 0.92) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(rnd.pick(HOSTILE_JSON));
    }
  } else if (op.method !== 'GET' && rnd.chance(0.2)) {
    headers['content-type'] = 'application/json';
    body = rnd.pick(['{}', '{"a":', 'null']);
  }
  return { who, method: op.method, url: base + path, headers, body };
}

let s: TestServer;
let ctx: Ctx;

before(async () => {
  s = await startServer();
  const admin = s.adminKey;
  const userKey = await s.createUser('fuzzuser');
  const repo = await api(s, 'POST', '/git/v1/repo', { key: admin, body: { name: 'fuzz/repo', public: true } });
  assert.equal(repo.status, 200, JSON.stringify(repo.body));
  const repoId: string = repo.body.repoId;
  const c1 = await api(s, 'POST', `/git/v1/repo/${repoId}/commits`, { key: admin, body: { message: 'one', files: [{ path: 'README.md', content: 'hello TODO\n' }, { path: 'lib/a.ts', content: 'export const a = 1;\n' }] } });
  assert.equal(c1.status, 200, JSON.stringify(c1.body));
  const c2 = await api(s, 'POST', `/git/v1/repo/${repoId}/commits`, { key: admin, body: { message: 'two', files: [{ path: 'lib/b.ts', content: 'b\n' }] } });
  const commit: string = c2.body.commit.sha;
  const tree: string = c2.body.commit.tree.sha;
  const blob: string = (await api(s, 'GET', `/git/v1/repo/${repoId}/git/trees/${tree}`, { key: admin })).body.tree.find((e: { type: string }) => e.type === 'blob').sha;
  await api(s, 'POST', `/git/v1/repo/${repoId}/git/refs/heads/feature/x`, { key: admin, body: { sha: c1.body.commit.sha } });
  const own = await api(s, 'POST', '/git/v1/repo', { key: userKey, body: { name: 'fuzzuser/own' } });
  const identity: string = (await api(s, 'POST', '/identity/v1/identities', { key: admin })).body.id;
  const tok = await api(s, 'POST', `/identity/v1/identities/${identity}/tokens`, { key: admin });
  await api(s, 'POST', `/identity/v1/identities/${identity}/permissions/git/${repoId}`, { key: admin, body: { permission: 'read' } });
  await api(s, 'POST', `/identity/v1/identities/${identity}/permissions/vm/vm-1`, { key: admin, body: { allowedUsers: ['dev'] } });
  const repos = [repoId, 'fuzz/repo', own.body.repoId, 'fuzzuser/own', GHOST, repoId.toUpperCase()];
  const victimRepos = [(await api(s, 'POST', '/git/v1/repo', { key: admin, body: { name: 'fuzz/victim' } })).body.repoId, (await api(s, 'POST', '/git/v1/repo', { key: userKey, body: { name: 'fuzzuser/victim' } })).body.repoId, 'fuzz/victim', GHOST];
  const victimIdentity: string = (await api(s, 'POST', '/identity/v1/identities', { key: userKey })).body.id;
  const revs = ['main', 'feature/x', commit, 'HEAD~1', 'v1'];
  // SSH keys and VMs: valid key lines (an ed25519 key made in process), a VM of the plain
  // user's and one kept for the DELETEs
  const sshString = (b: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
  const keyLine = () => `ssh-ed25519 ${Buffer.concat([sshString(Buffer.from('ssh-ed25519')), sshString(Buffer.from(crypto.generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }).x!, 'base64url'))]).toString('base64')} fuzz@host`;
  const keyLines = [keyLine(), keyLine(), keyLine()];
  const vm = await api(s, 'POST', '/vm/v1/vms', { key: userKey, body: { host: 'vm.example.com', hostKey: keyLines[0] } });
  assert.equal(vm.status, 200, JSON.stringify(vm.body));
  const victimVm: string = (await api(s, 'POST', '/vm/v1/vms', { key: admin, body: { host: '192.0.2.1', hostKey: keyLines[1] } })).body.id;
  const sshKey: string = (await api(s, 'POST', '/user/v1/ssh-keys', { key: userKey, body: { publicKey: keyLines[2] } })).body.id;
  ctx = {
    adminKey: admin,
    userKey,
    identityToken: tok.body.token,
    pools: {
      default: ['x', 'main', 'fuzz', 'hello'],
      repo: repos,
      repo_id: repos,
      repo_name: repos,
      identity: [identity, GHOST],
      'delete:repo': victimRepos,
      'delete:identity': [victimIdentity, GHOST],
      token: [tok.body.id, GHOST],
      trigger: [GHOST],
      delivery: [GHOST],
      vm_id: ['vm-1', 'vm.2', 'VM_3'],
      hash: [commit, tree, blob, c1.body.commit.sha],
      since: [c1.body.commit.sha],
      until: [commit],
      expectedSha: [commit],
      sha: [commit, ''],
      branch: ['main', 'feature/x', 'new/branch'],
      defaultBranch: ['main', 'feature/x'],
      tag: ['v1'],
      path: ['', 'README.md', 'lib', 'lib/a.ts', 'new/file.txt'],
      root_path: ['', '/', 'lib'],
      rev: revs,
      ref: revs,
      base: revs,
      head: revs,
      revision: revs,
      query: ['hello', 'TODO', 'a.*b', 'export'],
      pathPattern: ['lib/**', '*.md'],
      excludePattern: ['lib/**'],
      username: ['admin', 'fuzzuser', 'nobody'],
      owner_name: ['admin', 'fuzzuser'],
      group_name: ['fuzzers', 'nogroup'],
      users_group: ['fuzzers'],
      perm: ['repository.read', 'repository.write', 'repository.owner'],
      name: ['fuzz/new', 'fuzz/repo', 'x'],
      message: ['a message'],
      content: ['aGVsbG8=', 'hello'],
      commitMessage: ['init'],
      email: ['a@example.com'],
      password: ['pw-1'],
      allowedUsers: ['dev', 'root'],
      service: ['git-upload-pack', 'git-receive-pack'],
      publicKey: [...keyLines, keyLine()],
      public_key: [...keyLines, keyLine()],
      hostKey: keyLines,
      key: [sshKey, GHOST],
      key_id: [sshKey, GHOST],
      title: ['laptop'],
      vm: [vm.body.id, GHOST, 'vm-1'],
      'delete:vm': [victimVm, GHOST],
      host: ['vm.example.com', '127.0.0.1', '[::1]'],
      defaultUser: ['root', 'dev'],
      // issue 9: v5 identities, token ends, ref rules, protected branches, explain, audit
      vmId: ['vm-1', 'vm-v5'],
      allowedLinuxUsers: ['dev', 'root'],
      expiresAt: ['2099-01-01T00:00:00Z', '2000-01-01T00:00:00Z'],
      branches: ['main', 'release/*'],
      allow: ['refs/heads/agents/*', 'refs/heads/*'],
      deny: ['refs/heads/agents/prod'],
      operation: ['create', 'update', 'delete'],
      actor: ['admin', 'fuzzuser'],
      target: ['fuzz/repo', repoId],
    },
  };
});
after(() => s?.stop());

const LEAKS: [string, RegExp][] = [
  ['stack frame', /\bat (?:[\w$.<>[\] ]+ \()?(?:\/|file:|node:)[^\s)]*:\d+:\d+/],
  ['server path', /\/tmp\b|\bsrc\/|palisade-test-/],
  ['SQL text', /\bSELECT\b|sqlite|syntax error|\bSQLSTATE\b/i],
];

test(`fuzz every documented operation (${REQUESTS} requests, seed ${SEED}): no 5xx, no internals in any answer`, { timeout: 120_000 }, async () => {
  const doc = (await api(s, 'GET', '/openapi.json')).body;
  const ops = operations(doc);
  assert.ok(ops.length >= 50, `only ${ops.length} operations documented`);
  const statuses = new Map<number, number>();
  const perWho = new Map<string, number>();
  const failures: string[] = [];
  const leaks = [...LEAKS, ['data folder', new RegExp(s.dataDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))] as [string, RegExp]];
  let next = 0;
  const t0 = Date.now();

  const one = async (req: Req & { who: string }) => {
    const sent = typeof req.body === 'string' ? ` ${req.body.slice(0, 120)}` : '';
    const label = `${req.who} ${req.method} ${req.url.slice(s.url.length, s.url.length + 160)}${sent}`;
    let res: Response;
    try {
      res = await fetch(req.url, { method: req.method, headers: req.headers, body: req.body, redirect: 'manual', signal: AbortSignal.timeout(30_000) });
    } catch (e) {
      failures.push(`${label}: no answer (${(e as Error).message})`);
      return;
    }
    const type = res.headers.get('content-type') ?? '';
    const buf = Buffer.from(await res.arrayBuffer());
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    perWho.set(req.who, (perWho.get(req.who) ?? 0) + 1);
    if (res.status >= 500) failures.push(`${label}: ${res.status} ${buf.toString('utf8', 0, 300)}`);
    // JSON-RPC answers every failure with HTTP 200: its 500 is an `internal error` message
    if (/"error":"internal error/.test(buf.toString('utf8', 0, 200))) failures.push(`${label}: ${buf.toString('utf8', 0, 300)}`);
    // archives and git's pack streams are binary; every other answer is text to read
    if (/json|text|html/.test(type) || type === '') {
      const text = buf.toString('utf8');
      for (const [what, re] of leaks) if (re.test(text)) failures.push(`${label}: ${what} in the answer: ${text.slice(0, 300)}`);
    }
  };

  const plan = Array.from({ length: REQUESTS }, (_, i) => buildRequest(ctx, s.url, ops[i % ops.length]!));
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < plan.length) await one(plan[next++]!);
    }),
  );

  const health = await api(s, 'GET', '/healthz');
  const summary = [...statuses].sort((a, b) => a[0] - b[0]).map(([k, v]) => `${k}: ${v}`).join(', ');
  console.log(`# fuzz: ${REQUESTS} requests over ${ops.length} operations in ${((Date.now() - t0) / 1000).toFixed(1)} s (seed ${SEED}); statuses ${summary}; callers ${[...perWho].map(([k, v]) => `${k} ${v}`).join(', ')}`);
  assert.deepEqual(failures.slice(0, 20), [], `${failures.length} bad answers`);
  assert.equal(health.status, 200, 'the server is alive after the run');
  assert.deepEqual(health.body, { status: 'ok' });
});
