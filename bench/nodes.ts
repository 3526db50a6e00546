// Several nodes (issue 12): API requests per second for repository creation and identity creation
// with one `palisade serve` on PostgreSQL, and with two on the same database and data folder
// (behind nginx round robin, and with the client alternating between them, which leaves nginx
// out). On a 2-core machine two nodes compete for the same cores as the database and the client:
// the figure shows the overhead of the second node (leases, two pools on one database), not
// scaling. Needs PostgreSQL: PALISADE_BENCH_DATABASE_URL or PALISADE_TEST_DATABASE_URL (a URL
// allowed to create databases); without it, it says so and exits 0.
// Usage: node --import tsx bench/nodes.ts [--requests N] [--concurrency C] [--rounds R] (defaults 1200, 16, 5)
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { spawn, type ChildProcess } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { api, freePort, median, startPalisade, WORK } from './lib.ts';

const { values } = parseArgs({ options: { requests: { type: 'string' }, concurrency: { type: 'string' }, rounds: { type: 'string' } } });
const REQUESTS = Number(values.requests ?? 1200);
const CONCURRENCY = Number(values.concurrency ?? 16);
const ROUNDS = Number(values.rounds ?? 5);
const ADMIN_URL = process.env.PALISADE_BENCH_DATABASE_URL ?? process.env.PALISADE_TEST_DATABASE_URL;
const NGINX = '/usr/sbin/nginx';


async function startNginx(ports: number[], prefix: string): Promise<{ url: string; proc: ChildProcess }> {
  fs.mkdirSync(prefix, { recursive: true });
  const port = await freePort();
  fs.writeFileSync(
    path.join(prefix, 'nginx.conf'),
    `daemon off;\nmaster_process off;\nworker_processes 1;\npid ${prefix}/nginx.pid;\nerror_log ${prefix}/error.log warn;\nevents { worker_connections 1024; }\nhttp {\n  access_log off;\n  client_body_temp_path ${prefix}/body;\n  proxy_temp_path ${prefix}/proxy;\n  fastcgi_temp_path ${prefix}/fastcgi;\n  uwsgi_temp_path ${prefix}/uwsgi;\n  scgi_temp_path ${prefix}/scgi;\n  upstream palisade {\n${ports.map((p) => `    server 127.0.0.1:${p};`).join('\n')}\n    keepalive 32;\n  }\n  server {\n    listen 127.0.0.1:${port};\n    client_max_body_size 0;\n    location / {\n      proxy_pass http://palisade;\n      proxy_http_version 1.1;\n      proxy_set_header Connection "";\n      proxy_request_buffering off;\n      proxy_buffering off;\n    }\n  }\n}\n`,
  );
  const proc = spawn(NGINX, ['-p', prefix, '-e', path.join(prefix, 'error.log'), '-c', path.join(prefix, 'nginx.conf')], { stdio: 'inherit' });
  for (let i = 0; ; i++) {
    const ok = await new Promise<boolean>((r) => net.connect(port, '127.0.0.1', function (this: net.Socket) { this.end(); r(true); }).on('error', () => r(false)));
    if (ok) break;
    if (i > 200) throw new Error('nginx did not listen');
    await new Promise((r) => setTimeout(r, 25));
  }
  return { url: `http://127.0.0.1:${port}`, proc };
}

async function freshDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `palisade_bench_${crypto.randomBytes(6).toString('hex')}`;
  const c = new pg.Client({ connectionString: ADMIN_URL });
  await c.connect();
  await c.query(`CREATE DATABASE ${name}`);
  await c.end();
  return {
    url: ADMIN_URL!.replace(/(^[a-z]+:\/\/[^/]*)\/[^?]*/, `$1/${name}`),
    async drop() {
      const d = new pg.Client({ connectionString: ADMIN_URL });
      await d.connect();
      await d.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await d.end();
    },
  };
}

/** REQUESTS calls of `op` by CONCURRENCY clients; client i sends its n-th call to urls[(i + n) % urls.length]. */
async function rate(urls: string[], key: string, op: (url: string, key: string) => Promise<unknown>): Promise<number> {
  let next = 0;
  const t = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, c) => {
      for (let n = 0; next < REQUESTS; n++) {
        next++;
        await op(urls[(c + n) % urls.length]!, key);
      }
    }),
  );
  return REQUESTS / ((performance.now() - t) / 1000);
}

const createRepo = (url: string, key: string) => api(url, key, 'POST', '/git/v1/repo', {});
const createIdentity = (url: string, key: string) => api(url, key, 'POST', '/identity/v1/identities', {});

async function main(): Promise<void> {
  if (!ADMIN_URL) {
    console.log('bench/nodes.ts: set PALISADE_BENCH_DATABASE_URL (or PALISADE_TEST_DATABASE_URL) to a PostgreSQL URL allowed to create databases; skipped');
    return;
  }
  if (!fs.existsSync(NGINX)) {
    console.log(`bench/nodes.ts: needs nginx at ${NGINX}; skipped`);
    return;
  }
  fs.mkdirSync(WORK, { recursive: true });
  const key = `pal_bench_${crypto.randomBytes(12).toString('hex')}`;
  const results: Record<string, { repo: number[]; identity: number[] }> = {};
  const configs = ['one node', 'two nodes, nginx round robin', 'two nodes, client alternating'] as const;
  for (const cfg of configs) results[cfg] = { repo: [], identity: [] };
  for (let round = 0; round < ROUNDS; round++) {
    // the order rotates per round, so that a drift of the machine does not favour one deployment
    for (const cfg of configs.map((_, i) => configs[(i + round) % configs.length]!)) {
      const db = await freshDatabase();
      const data = path.join(WORK, 'nodes-data');
      fs.rmSync(data, { recursive: true, force: true });
      const n = cfg === 'one node' ? 1 : 2;
      const env = { DATABASE_URL: db.url, PALISADE_AUTH_FAILURE_LIMIT: '1000000' };
      const nodes = [];
      // one after the other: the first creates the admin user and the keys
      for (let i = 0; i < n; i++) nodes.push(await startPalisade(data, key, { ...env, PALISADE_NODE_ID: `bench-${i}` }));
      const lb = cfg.includes('nginx') ? await startNginx(nodes.map((x) => Number(new URL(x.url).port)), path.join(WORK, 'nodes-nginx')) : undefined;
      const urls = lb ? [lb.url] : nodes.map((x) => x.url);
      try {
        // warm: the connection pools, the JIT
        for (let i = 0; i < 50; i++) await createRepo(urls[i % urls.length]!, key);
        results[cfg]!.repo.push(await rate(urls, key, createRepo));
        results[cfg]!.identity.push(await rate(urls, key, createIdentity));
      } finally {
        lb?.proc.kill('SIGTERM');
        for (const x of nodes) {
          const exited = new Promise((r) => x.proc.once('exit', r));
          x.proc.kill('SIGTERM');
          await exited;
        }
        await db.drop();
      }
      console.log(`round ${round + 1} ${cfg}: repositories ${results[cfg]!.repo.at(-1)!.toFixed(0)}/s, identities ${results[cfg]!.identity.at(-1)!.toFixed(0)}/s`);
    }
  }
  const base = results['one node']!;
  // each round's figure against the one-node figure of the same round: removes the round's drift
  const paired = (cfg: string, k: 'repo' | 'identity') => median(results[cfg]![k].map((v, i) => v / base[k][i]!));
  const lines = [
    `${REQUESTS} requests per figure, ${CONCURRENCY} concurrent clients, median of ${ROUNDS} rounds (order rotating); PostgreSQL 15 on the same machine; load average at the end ${os.loadavg()[0]!.toFixed(1)}`,
    '',
    '| deployment | repositories created / s | paired ratio to one node | identities created / s | paired ratio to one node |',
    '| --- | --- | --- | --- | --- |',
    ...configs.map((cfg) => `| ${cfg} | ${median(results[cfg]!.repo).toFixed(0)} | ${paired(cfg, 'repo').toFixed(2)}× | ${median(results[cfg]!.identity).toFixed(0)} | ${paired(cfg, 'identity').toFixed(2)}× |`),
  ];
  console.log(`\n${lines.join('\n')}`);
  fs.writeFileSync(path.join(WORK, 'nodes.md'), `${lines.join('\n')}\n`);
}

await main();
