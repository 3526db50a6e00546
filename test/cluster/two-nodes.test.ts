// Several nodes (issue 12): two `palisade serve` processes on one PostgreSQL database and one data
// folder, behind a real nginx doing round robin, behave like one server. Pushes through the
// balancer and straight to each node, clones from the other node; 20 concurrent commits.create
// with the same expected parent, split across the nodes, have one winner per round and lose
// nothing; each webhook delivery reaches the receiver once; SIGTERM of one node lets its push
// in flight finish while the other serves, and a node starting sweeps no quarantine another node
// may be writing; kill -9 of one node mid-push leaves a sound
// repository, the other carries on, and a delivery the dead node had claimed is delivered by the
// other once the lease expires.
//
// Needs PostgreSQL (PALISADE_TEST_DATABASE_URL) and nginx (/usr/sbin/nginx): skipped without.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { repoDir } from '../../src/git/repo-path.ts';
import { git, gitOk, makeWorkTree, repoUrl, tmpDir } from '../helpers/git.ts';
import { api, freePort, freshDatabase, startServer, type TestServer } from '../helpers/server.ts';

const PG_URL = process.env.PALISADE_TEST_DATABASE_URL;
const NGINX = '/usr/sbin/nginx';
const skip = !PG_URL ? 'needs PostgreSQL: set PALISADE_TEST_DATABASE_URL (several nodes share only PostgreSQL)' : !fs.existsSync(NGINX) ? `needs nginx at ${NGINX} (apt-get install nginx)` : false;

const LEASE_SECONDS = 2;


/** nginx in the foreground with its own prefix, round robin over the nodes, bodies streamed both ways. */
async function startNginx(ports: number[]): Promise<{ url: string; proc: ChildProcess; stop: () => Promise<void> }> {
  const prefix = fs.mkdtempSync(path.join(os.tmpdir(), 'palisade-nginx-'));
  const port = await freePort();
  const conf = `
daemon off;
master_process off;
worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${prefix}/body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  upstream palisade {
${ports.map((p) => `    server 127.0.0.1:${p} max_fails=1 fail_timeout=30s;`).join('\n')}
  }
  server {
    listen 127.0.0.1:${port};
    client_max_body_size 0;
    location / {
      proxy_pass http://palisade;
      proxy_http_version 1.1;
      proxy_request_buffering off;
      proxy_buffering off;
      proxy_set_header Host $http_host;
      proxy_read_timeout 300s;
      proxy_send_timeout 300s;
    }
  }
}
`;
  fs.writeFileSync(path.join(prefix, 'nginx.conf'), conf);
  const proc = spawn(NGINX, ['-p', prefix, '-e', path.join(prefix, 'error.log'), '-c', path.join(prefix, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const url = `http://127.0.0.1:${port}`;
  const end = Date.now() + 10_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`nginx exited: ${err}`);
    const ok = await new Promise<boolean>((r) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.end();
        r(true);
      });
      s.on('error', () => r(false));
    });
    if (ok) break;
    if (Date.now() > end) throw new Error(`nginx did not listen: ${err}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    proc,
    async stop() {
      if (proc.exitCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        await exited;
      }
      fs.rmSync(prefix, { recursive: true, force: true });
    },
  };
}

/** A webhook receiver that records every request (with its delivery id); `hold` keeps requests unanswered. */
class Receiver {
  received: { id: string; body: string; at: number }[] = [];
  hold = false;
  /** answer after this long: a delivery stays in flight while the other node polls */
  delayMs = 0;
  private held: http.ServerResponse[] = [];
  private server: http.Server | undefined;
  port = 0;
  async start(): Promise<void> {
    this.server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        this.received.push({ id: String(req.headers['x-palisade-delivery'] ?? ''), body, at: Date.now() });
        if (this.hold) this.held.push(res);
        else setTimeout(() => res.end('ok'), this.delayMs);
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.server.unref();
    this.port = (this.server.address() as net.AddressInfo).port;
  }
  get url() {
    return `http://127.0.0.1:${this.port}/hook`;
  }
  async stop(): Promise<void> {
    for (const r of this.held.splice(0)) r.destroy();
    this.server?.closeAllConnections();
    await new Promise<void>((r) => this.server?.close(() => r()));
  }
}

async function until<T>(f: () => Promise<T | undefined | false> | T | undefined | false, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const quarantines = (dir: string) => fs.readdirSync(path.join(dir, 'objects')).filter((n) => n.includes('incoming-'));

describe('two nodes on one PostgreSQL and one data folder behind nginx', { skip }, () => {
  let dataDir: string;
  let adminKey: string;
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let nodes: TestServer[] = [];
  let lb: Awaited<ReturnType<typeof startNginx>>;
  let sql: pg.Client;
  const env = (id: string) => ({
    PALISADE_NODE_ID: id,
    PALISADE_LEASE_SECONDS: String(LEASE_SECONDS),
    PALISADE_ALLOW_PRIVATE_URLS: '1',
    PALISADE_WEBHOOK_BACKOFF_MS: '200',
    PALISADE_SSH_PORT: '0',
    PALISADE_LOG_LEVEL: 'info',
  });

  before(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'palisade-cluster-'));
    adminKey = `pal_test_${crypto.randomBytes(24).toString('base64url')}`;
    db = await freshDatabase();
    const at = { dataDir, adminKey, databaseUrl: db!.url };
    // Both at once on a new database and an empty folder: the migrations, the admin user and
    // every key are made by one of them, and the other uses them.
    nodes = await Promise.all([startServer(env('node-a'), { at }), startServer(env('node-b'), { at })]);
    lb = await startNginx(nodes.map((n) => n.port));
    sql = new pg.Client({ connectionString: db!.url });
    await sql.connect();
  });

  after(async () => {
    await sql?.end();
    await lb?.stop();
    for (const n of nodes) await n.stop();
    await db?.drop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('nodes started at once share the webhook signing key and the SSH host key, and name themselves', async () => {
    const [a, b] = nodes as [TestServer, TestServer];
    const ka = (await api(a, 'GET', '/.well-known/jwks.json')).body.keys[0].kid;
    const kb = (await api(b, 'GET', '/.well-known/jwks.json')).body.keys[0].kid;
    assert.equal(ka, kb);
    const fp = (n: TestServer) => /ssh host key (\S+)/.exec(n.logs())?.[1];
    assert.ok(fp(a));
    assert.equal(fp(a), fp(b));
    assert.match(a.logs(), /node node-a/);
    assert.match(b.logs(), /node node-b/);
  });

  test('pushes through the balancer and straight to each node; clones from the other node', async () => {
    const [a, b] = nodes as [TestServer, TestServer];
    const repoId = (await api(lb, 'POST', '/git/v1/repo', { key: adminKey, body: {} })).body.repoId as string;
    const wc = await makeWorkTree(1);
    await gitOk(['push', repoUrl(a.url, repoId, 'x-access-token', adminKey), 'main'], { cwd: wc });
    const clonedB = tmpDir();
    await gitOk(['clone', '-q', repoUrl(b.url, repoId, 'x-access-token', adminKey), clonedB]);
    assert.equal((await gitOk(['rev-parse', 'HEAD'], { cwd: clonedB })).trim(), (await gitOk(['rev-parse', 'HEAD'], { cwd: wc })).trim());

    // from node B's clone, straight to B; then from A's side through the balancer
    fs.writeFileSync(path.join(clonedB, 'b.txt'), 'b\n');
    await gitOk(['add', '.'], { cwd: clonedB });
    await gitOk(['commit', '-qm', 'on b'], { cwd: clonedB });
    await gitOk(['push', repoUrl(b.url, repoId, 'x-access-token', adminKey), 'main'], { cwd: clonedB });
    await gitOk(['pull', '-q', '--ff-only', repoUrl(a.url, repoId, 'x-access-token', adminKey), 'main'], { cwd: wc });
    for (let i = 0; i < 4; i++) {
      fs.writeFileSync(path.join(wc, `lb${i}.txt`), `${i}\n`);
      await gitOk(['add', '.'], { cwd: wc });
      await gitOk(['commit', '-qm', `through the balancer ${i}`], { cwd: wc });
      await gitOk(['push', repoUrl(lb.url, repoId, 'x-access-token', adminKey), 'main'], { cwd: wc });
    }
    const head = (await gitOk(['rev-parse', 'HEAD'], { cwd: wc })).trim();
    // every node, and the balancer, advertise the same tip at once: no node answers from a cache
    for (const u of [a.url, b.url, lb.url, lb.url]) {
      const refs = await gitOk(['ls-remote', repoUrl(u, repoId, 'x-access-token', adminKey), 'refs/heads/main']);
      assert.equal(refs.split('\t')[0], head, u);
    }
    for (const n of [a, b]) {
      const tree = await api(n, 'GET', `/git/v1/repo/${repoId}/contents/lb3.txt`, { key: adminKey });
      assert.equal(tree.status, 200, JSON.stringify(tree.body));
    }
  });

  test('20 concurrent commits.create with one expected parent, split across the nodes: one winner a round, nothing lost', async () => {
    const [a, b] = nodes as [TestServer, TestServer];
    const repoId = (await api(lb, 'POST', '/git/v1/repo', { key: adminKey, body: {} })).body.repoId as string;
    let tip = (await api(a, 'POST', `/git/v1/repo/${repoId}/commits`, { key: adminKey, body: { message: 'root', files: [{ path: 'root.txt', content: 'r' }] } })).body.commit.sha as string;
    const winners: string[] = [];
    for (let round = 0; round < 3; round++) {
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          api(i % 2 ? b : a, 'POST', `/git/v1/repo/${repoId}/commits`, { key: adminKey, body: { message: `round ${round} writer ${i}`, expectedSha: tip, files: [{ path: `r${round}/w${i}.txt`, content: `${i}` }] } }),
        ),
      );
      const won = results.filter((r) => r.status === 200);
      assert.equal(won.length, 1, `round ${round}: ${results.map((r) => r.status).join(',')}`);
      assert.ok(results.every((r) => r.status === 200 || (r.status === 409 && /CONFLICT|expected parent/i.test(JSON.stringify(r.body)))), JSON.stringify(results.map((r) => r.body)));
      assert.equal(won[0]!.body.commit.parents[0].sha, tip);
      tip = won[0]!.body.commit.sha;
      winners.push(tip);
    }
    // and without an expected parent, 20 at once on both nodes: every one lands
    const free = await Promise.all(Array.from({ length: 20 }, (_, i) => api(i % 2 ? b : a, 'POST', `/git/v1/repo/${repoId}/commits`, { key: adminKey, body: { message: `free ${i}`, files: [{ path: `free/${i}.txt`, content: `${i}` }] } })));
    assert.deepEqual(free.map((r) => r.status), Array(20).fill(200));
    const log = (await gitOk(['--git-dir', repoDir(dataDir, repoId), 'log', '--format=%H %s', 'main'])).trim().split('\n');
    for (const w of winners) assert.ok(log.some((l) => l.startsWith(w)), `winner ${w} is in the history`);
    for (let i = 0; i < 20; i++) assert.ok(log.some((l) => l.endsWith(` free ${i}`)), `free ${i} is in the history`);
    assert.equal(log.length, 1 + 3 + 20);
    await gitOk(['--git-dir', repoDir(dataDir, repoId), 'fsck', '--no-dangling']);
  });

  test('each webhook delivery reaches the receiver once, with pushes spread over both nodes', async () => {
    const [a, b] = nodes as [TestServer, TestServer];
    const rx = new Receiver();
    // slow answers keep each attempt in flight across the other node's polls (once a second):
    // a node claiming what the other is sending would send it twice
    rx.delayMs = 700;
    await rx.start();
    try {
      const repoId = (await api(lb, 'POST', '/git/v1/repo', { key: adminKey, body: {} })).body.repoId as string;
      const t = await api(lb, 'POST', `/git/v1/repo/${repoId}/trigger`, { key: adminKey, body: { trigger: { event: 'push' }, action: { action: 'webhook', endpoint: rx.url } } });
      assert.equal(t.status, 200, JSON.stringify(t.body));
      const wc = await makeWorkTree(0);
      const N = 12;
      const commits: string[] = [];
      for (let i = 0; i < N; i++) {
        fs.writeFileSync(path.join(wc, `f${i}`), `${i}\n`);
        await gitOk(['add', '.'], { cwd: wc });
        await gitOk(['commit', '-qm', `c${i}`], { cwd: wc });
        commits.push((await gitOk(['rev-parse', 'HEAD'], { cwd: wc })).trim());
        const to = [a.url, b.url, lb.url][i % 3]!;
        await gitOk(['push', '-q', repoUrl(to, repoId, 'x-access-token', adminKey), 'main'], { cwd: wc });
      }
      await until(() => rx.received.length >= N, 20_000, `${N} deliveries`);
      // both nodes poll every second: give a second claim of any of them the time to happen
      await new Promise((r) => setTimeout(r, 2500));
      assert.equal(rx.received.length, N, 'no delivery twice');
      assert.equal(new Set(rx.received.map((r) => r.id)).size, N);
      assert.deepEqual(rx.received.map((r) => JSON.parse(r.body).commit).sort(), [...commits].sort());
      const { rows } = await sql.query<{ status: string; attempts: number; lease_owner: string | null }>('select status, attempts, lease_owner from deliveries where trigger_id = $1', [t.body.triggerId]);
      assert.equal(rows.length, N);
      assert.ok(rows.every((r) => r.status === 'delivered' && r.attempts === 1 && r.lease_owner === null), JSON.stringify(rows));
    } finally {
      await rx.stop();
    }
  });

  test('SIGTERM of one node: its push in flight completes while the other node serves; a node starting sweeps only stale quarantines', async () => {
    const victim = nodes[0]!;
    const repoId = (await api(lb, 'POST', '/git/v1/repo', { key: adminKey, body: {} })).body.repoId as string;
    const wc = await makeWorkTree(1);
    await gitOk(['push', '-q', repoUrl(lb.url, repoId, 'x-access-token', adminKey), 'main'], { cwd: wc });
    fs.writeFileSync(path.join(wc, 'big.bin'), crypto.randomBytes(32 * 1024 * 1024));
    await gitOk(['add', '.'], { cwd: wc });
    await gitOk(['commit', '-qm', 'big'], { cwd: wc });
    const head = (await gitOk(['rev-parse', 'HEAD'], { cwd: wc })).trim();
    const dir = repoDir(dataDir, repoId);
    const push = git(['push', '-q', repoUrl(victim.url, repoId, 'x-access-token', adminKey), 'main'], { cwd: wc });
    await until(() => quarantines(dir).length > 0, 20_000, 'the push to reach receive-pack');
    const exited = new Promise<number | null>((r) => victim.proc.once('exit', (code) => r(code)));
    victim.proc.kill('SIGTERM');
    // meanwhile the balancer keeps answering, from the other node
    for (let i = 0; i < 5; i++) {
      const r = await api(lb, 'GET', `/git/v1/repo/${repoId}`, { key: adminKey });
      assert.equal(r.status, 200, `${JSON.stringify(r.body)} ${[...r.headers].join(' ')}`);
    }
    const r = await push;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await exited, 0);
    const refs = await gitOk(['ls-remote', repoUrl(lb.url, repoId, 'x-access-token', adminKey), 'refs/heads/main']);
    assert.equal(refs.split('\t')[0], head);
    // The node comes back (a new process, a new node id) and joins the running deployment. Its
    // sweep at start removes a quarantine nothing wrote to for long (a push killed long ago),
    // never a fresh one: on a shared folder that may be another node's push in flight.
    const quarantine = (name: string, ageSeconds: number) => {
      const q = path.join(dir, 'objects', name);
      fs.mkdirSync(path.join(q, 'pack'), { recursive: true });
      fs.writeFileSync(path.join(q, 'pack', 'tmp_pack_x'), 'partial');
      const t = new Date(Date.now() - ageSeconds * 1000);
      for (const p of [path.join(q, 'pack', 'tmp_pack_x'), path.join(q, 'pack'), q]) fs.utimesSync(p, t, t);
      return q;
    };
    const stale = quarantine('tmp_objdir-incoming-stale', 3600);
    const live = quarantine('tmp_objdir-incoming-live', 1);
    nodes[0] = await startServer(env('node-a2'), { at: { dataDir, adminKey, databaseUrl: db!.url } });
    await until(() => !fs.existsSync(stale), 10_000, 'the sweep at start');
    assert.ok(fs.existsSync(live), 'a quarantine written to a second ago is left alone');
    fs.rmSync(live, { recursive: true });
    await lb.stop();
    lb = await startNginx(nodes.map((n) => n.port));
  });

  test('kill -9 of one node mid-push: the other carries on, the repository is sound, its leased delivery is delivered by the other', async () => {
    const rx = new Receiver();
    await rx.start();
    try {
      // a large commit ready to push (made first: the node's attempt below times out after 10 s)
      const repoId = (await api(lb, 'POST', '/git/v1/repo', { key: adminKey, body: {} })).body.repoId as string;
      const wc = await makeWorkTree(1);
      await gitOk(['push', '-q', repoUrl(lb.url, repoId, 'x-access-token', adminKey), 'main'], { cwd: wc });
      const before = (await gitOk(['rev-parse', 'HEAD'], { cwd: wc })).trim();
      fs.writeFileSync(path.join(wc, 'big.bin'), crypto.randomBytes(48 * 1024 * 1024));
      await gitOk(['add', '.'], { cwd: wc });
      await gitOk(['commit', '-qm', 'big'], { cwd: wc });
      // a delivery that a node claims and then hangs on (the receiver does not answer)
      rx.hold = true;
      const hookRepo = (await api(lb, 'POST', '/git/v1/repo', { key: adminKey, body: {} })).body.repoId as string;
      const t = await api(lb, 'POST', `/git/v1/repo/${hookRepo}/trigger`, { key: adminKey, body: { trigger: { event: 'push' }, action: { action: 'webhook', endpoint: rx.url } } });
      await api(lb, 'POST', `/git/v1/repo/${hookRepo}/commits`, { key: adminKey, body: { message: 'hook me', files: [{ path: 'a', content: 'a' }] } });
      await until(() => rx.received.length === 1, 10_000, 'the first attempt to reach the receiver');
      const { rows } = await sql.query<{ id: string; lease_owner: string }>('select id, lease_owner from deliveries where trigger_id = $1', [t.body.triggerId]);
      const owner = rows[0]!.lease_owner;
      // a lease's owner is `<node id>.<process>`
      const victim = nodes.find((n) => n.logs().includes(`node ${owner.slice(0, owner.lastIndexOf('.'))}\n`))!;
      const survivor = nodes.find((n) => n !== victim)!;
      assert.ok(victim, `the lease holder ${owner} is one of the nodes`);

      // the push in flight, to the node that holds the lease
      const dir = repoDir(dataDir, repoId);
      const push = git(['push', '-q', repoUrl(victim.url, repoId, 'x-access-token', adminKey), 'main'], { cwd: wc });
      await until(() => quarantines(dir).length > 0, 20_000, 'the push to reach receive-pack');
      const killedAt = Date.now();
      const exited = new Promise((r) => victim.proc.once('exit', r));
      victim.proc.kill('SIGKILL');
      await exited;
      rx.hold = false;
      assert.notEqual((await push).code, 0, 'the push failed with its node');

      // the survivor takes the delivery over once the dead node's lease expired, and records it
      await until(async () => (await sql.query('select status from deliveries where id = $1', [rows[0]!.id])).rows[0]?.status === 'delivered', 15_000, 'the delivery by the other node');
      const again = rx.received.filter((r) => r.id === rows[0]!.id);
      assert.equal(again.length, 2, 'sent by the dead node (never answered), then by the other');
      assert.ok(again[1]!.at >= killedAt);
      const d = (await sql.query('select attempts, lease_owner from deliveries where id = $1', [rows[0]!.id])).rows[0];
      assert.deepEqual(d, { attempts: 1, lease_owner: null });

      // the balancer routes around the dead node: pushes and clones succeed
      assert.equal((await gitOk(['ls-remote', repoUrl(lb.url, repoId, 'x-access-token', adminKey), 'refs/heads/main'])).split('\t')[0], before);
      const wc2 = tmpDir();
      await gitOk(['clone', '-q', repoUrl(lb.url, repoId, 'x-access-token', adminKey), wc2]);
      for (let i = 0; i < 3; i++) {
        fs.writeFileSync(path.join(wc2, `after${i}`), `${i}\n`);
        await gitOk(['add', '.'], { cwd: wc2 });
        await gitOk(['commit', '-qm', `after ${i}`], { cwd: wc2 });
        await gitOk(['push', '-q', repoUrl(lb.url, repoId, 'x-access-token', adminKey), 'main'], { cwd: wc2 });
        assert.equal((await api(lb, 'POST', `/git/v1/repo/${repoId}/commits`, { key: adminKey, body: { message: `api ${i}`, files: [{ path: `api${i}`, content: 'x' }] } })).status, 200);
        await gitOk(['pull', '-q', '--ff-only', repoUrl(lb.url, repoId, 'x-access-token', adminKey), 'main'], { cwd: wc2 });
      }
      // the push the kill interrupted goes through the survivor (as a branch: main moved meanwhile)
      await gitOk(['push', '-q', repoUrl(survivor.url, repoId, 'x-access-token', adminKey), 'HEAD:refs/heads/big'], { cwd: wc });
      await gitOk(['--git-dir', dir, 'fsck', '--full', '--no-dangling']);
    } finally {
      await rx.stop();
    }
  });
});
