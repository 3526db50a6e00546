// Benchmark: the access decision "may user U read repository R" on a large data set
// (10,000 users, 1,000 groups, 100,000 repositories, 1,000,000 grants) on SQLite, and
// JSON-RPC get_repo throughput on the same data. Usage: node --import tsx bench/access.ts
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import { Access } from '../src/access/index.ts';
import type { Principal } from '../src/domain/access.ts';
import { hashToken } from '../src/services/secrets.ts';
import { Store } from '../src/store/index.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const WORK = path.join(ROOT, 'bench', '.work', 'access');
const USERS = 10_000;
const GROUPS = 1_000;
const REPOS = 100_000;
const USER_GRANTS = 600_000;
const GROUP_GRANTS = 200_000;
const IDENTITY_GRANTS = 200_000;
const MEMBERSHIPS_PER_USER = 3;

// deterministic pseudo-random numbers, so every run builds the same data set
let state = 0x9e3779b9;
const rand = (n: number) => {
  state ^= state << 13;
  state ^= state >>> 17;
  state ^= state << 5;
  return (state >>> 0) % n;
};
const uuid = (kind: number, i: number) => {
  const h = crypto.createHash('md5').update(`${kind}:${i}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
};
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)]!;

async function main(): Promise<void> {
  fs.rmSync(WORK, { recursive: true, force: true });
  fs.mkdirSync(WORK, { recursive: true });
  const store = await Store.open(WORK);
  await store.close();

  let t = performance.now();
  const db = new Database(path.join(WORK, 'palisade.sqlite'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF');
  const at = new Date().toISOString();
  const adminKey = `pal_bench_${crypto.randomBytes(12).toString('hex')}`;
  const load = db.transaction(() => {
    const insIdentity = db.prepare('insert into identities (id, account_id, managed, created_at) values (?, ?, ?, ?)');
    const insUser = db.prepare('insert into users (id, username, username_key, email, active, admin, identity_id, created_at) values (?, ?, ?, ?, 1, ?, ?, ?)');
    const insToken = db.prepare('insert into tokens (id, identity_id, token_hash, created_at) values (?, ?, ?, ?)');
    for (let u = 0; u < USERS; u++) {
      const id = uuid(1, u);
      const ident = uuid(2, u);
      insIdentity.run(ident, id, 1, at);
      insUser.run(id, u === 0 ? 'admin' : `user${u}`, u === 0 ? 'admin' : `user${u}`, `user${u}@example.com`, u === 0 ? 1 : 0, ident, at);
      if (u === 0) insToken.run(uuid(3, u), ident, hashToken(adminKey), at);
    }
    const insGroup = db.prepare('insert into users_groups (id, name, name_key, active, created_at) values (?, ?, ?, 1, ?)');
    for (let g = 0; g < GROUPS; g++) insGroup.run(uuid(4, g), `group${g}`, `group${g}`, at);
    const insMember = db.prepare('insert or ignore into users_group_members (id, group_id, user_id, created_at) values (?, ?, ?, ?)');
    for (let u = 0; u < USERS; u++) for (let k = 0; k < MEMBERSHIPS_PER_USER; k++) insMember.run(crypto.randomUUID(), uuid(4, rand(GROUPS)), uuid(1, u), at);
    const insRepo = db.prepare("insert into repositories (id, name, owner_id, visibility, default_branch, created_at) values (?, ?, ?, ?, 'main', ?)");
    for (let r = 0; r < REPOS; r++) insRepo.run(uuid(5, r), `org${r % 500}/repo${r}`, uuid(1, 1 + rand(USERS - 1)), r % 10 === 0 ? 'public' : 'private', at);
    const insUG = db.prepare('insert or ignore into user_repo_grants (user_id, repo_id, level, created_at) values (?, ?, ?, ?)');
    let n = 0;
    while (n < USER_GRANTS) n += insUG.run(uuid(1, 1 + rand(USERS - 1)), uuid(5, rand(REPOS)), rand(4), at).changes;
    const insGG = db.prepare('insert or ignore into group_repo_grants (group_id, repo_id, level, created_at) values (?, ?, ?, ?)');
    n = 0;
    while (n < GROUP_GRANTS) n += insGG.run(uuid(4, rand(GROUPS)), uuid(5, rand(REPOS)), 1 + rand(3), at).changes;
    const insI = db.prepare("insert or ignore into identity_repo_grants (identity_id, repo_id, access, created_at) values (?, ?, ?, ?)");
    for (let i = 0; i < 20_000; i++) insIdentity.run(uuid(6, i), uuid(1, 1 + rand(USERS - 1)), 0, at);
    n = 0;
    while (n < IDENTITY_GRANTS) n += insI.run(uuid(6, rand(20_000)), uuid(5, rand(REPOS)), rand(2) ? 'read' : 'write', at).changes;
  });
  load();
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.exec('analyze');
  db.close();
  const grants = USER_GRANTS + GROUP_GRANTS + IDENTITY_GRANTS;
  console.error(`loaded ${USERS} users, ${GROUPS} groups, ${REPOS} repositories, ${grants} grants in ${((performance.now() - t) / 1000).toFixed(1)} s`);

  // The decision, in process, through the same Access class every surface calls.
  const s2 = await Store.open(WORK);
  const access = new Access(s2);
  const principals: Principal[] = Array.from({ length: 1000 }, (_, i) => ({ kind: 'user', userId: uuid(1, 1 + rand(USERS - 1)), username: `u${i}`, admin: false, active: true, identityId: uuid(2, i) }));
  const idents: Principal[] = Array.from({ length: 1000 }, (_, i) => ({ kind: 'identity', identityId: uuid(6, rand(20_000)), accountId: uuid(1, i + 1) }));
  for (let i = 0; i < 2000; i++) await access.authorize(principals[i % 1000]!, 'repo:read', { kind: 'repo', repoId: uuid(5, rand(REPOS)) });
  const measure = async (ps: Principal[]) => {
    const times: number[] = [];
    let allowed = 0;
    for (let i = 0; i < 20_000; i++) {
      const p = ps[rand(ps.length)]!;
      const repoId = uuid(5, rand(REPOS));
      const t0 = performance.now();
      const d = await access.authorize(p, 'repo:read', { kind: 'repo', repoId });
      times.push((performance.now() - t0) * 1000);
      if (d.allowed) allowed++;
    }
    return { times, allowed };
  };
  const users = await measure(principals);
  const identities = await measure(idents);
  await s2.close();

  // JSON-RPC get_repo throughput against the real server on the same data.
  const proc = spawn(process.execPath, [path.join(ROOT, 'bin', 'palisade.js'), 'serve', '--port', '0', '--data', WORK], { env: { ...process.env, PALISADE_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve) => {
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
  });
  const durationMs = 10_000;
  const concurrency = 8;
  let done = 0;
  let errors = 0;
  const end = performance.now() + durationMs;
  t = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const r = rand(REPOS);
        const res = await fetch(`${url}/_admin/api`, { method: 'POST', body: JSON.stringify({ id: r, api_key: adminKey, method: 'get_repo', args: { repo_name: `org${r % 500}/repo${r}` } }) });
        const j = (await res.json()) as { result: { id: string } | null };
        if (j.result?.id !== uuid(5, r)) errors++;
        done++;
      }
    }),
  );
  const rps = done / ((performance.now() - t) / 1000);
  proc.kill('SIGTERM');

  const lines = [
    `Data set: ${USERS.toLocaleString('en')} users (3 group memberships each), ${GROUPS.toLocaleString('en')} groups, ${REPOS.toLocaleString('en')} repositories, ${grants.toLocaleString('en')} grants (${USER_GRANTS.toLocaleString('en')} user, ${GROUP_GRANTS.toLocaleString('en')} group, ${IDENTITY_GRANTS.toLocaleString('en')} identity), SQLite.`,
    '',
    '| decision "may P read R" (20,000 random pairs, in process, `Access.authorize`) | median µs | p99 µs | allowed | target |',
    '| --- | --- | --- | --- | --- |',
    `| user (own grant, groups, visibility) | ${pct(users.times, 50).toFixed(0)} | ${pct(users.times, 99).toFixed(0)} | ${users.allowed} | p99 < 500 µs |`,
    `| identity | ${pct(identities.times, 50).toFixed(0)} | ${pct(identities.times, 99).toFixed(0)} | ${identities.allowed} | |`,
    '',
    `JSON-RPC get_repo (admin, with members), ${concurrency} concurrent clients for ${durationMs / 1000} s: ${rps.toFixed(0)} requests/s, ${errors} wrong answers.`,
    '',
    `Machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, Node ${process.version}.`,
  ];
  console.log(lines.join('\n'));
  fs.writeFileSync(path.join(ROOT, 'bench', '.work', 'access-results.md'), lines.join('\n') + '\n');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
