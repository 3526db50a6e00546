// Benchmark: the access decision "may user U read repository R" on a large data set
// (10,000 users, 1,000 groups, 100,000 repositories, 1,000,000 grants) on SQLite, with ref
// rules on a quarter of the identity grants, protected branches on a tenth of the repositories
// and an expiry on every principal (so both are in the facts of every decision), the decision
// on one ref of a push, and JSON-RPC get_repo throughput on the same data.
// Usage: node --import tsx bench/access.ts
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
const PROTECTED = JSON.stringify(['main', 'release/*']);
const RULES = [
  { allow: ['refs/heads/agents/*'], deny: [], forcePush: false, deleteRefs: false },
  { allow: ['refs/heads/*'], deny: ['refs/heads/main', 'refs/heads/release/*'], forcePush: false, deleteRefs: true },
  { allow: ['refs/heads/agent-*', 'refs/tags/agent-*'], deny: [], forcePush: true, deleteRefs: false },
].map((r) => JSON.stringify(r));

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
  const protectedPairs: [number, number][] = [];
  const ruledPairs: [number, number][] = [];
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
    const insRepo = db.prepare("insert into repositories (id, name, owner_id, visibility, default_branch, created_at, protected_branches) values (?, ?, ?, ?, 'main', ?, ?)");
    for (let r = 0; r < REPOS; r++) insRepo.run(uuid(5, r), `org${r % 500}/repo${r}`, uuid(1, 1 + rand(USERS - 1)), r % 10 === 0 ? 'public' : 'private', at, r % 10 === 3 ? PROTECTED : null);
    const insUG = db.prepare('insert or ignore into user_repo_grants (user_id, repo_id, level, created_at) values (?, ?, ?, ?)');
    let n = 0;
    while (n < USER_GRANTS) {
      const [u, r, level] = [1 + rand(USERS - 1), rand(REPOS), rand(4)];
      const added = insUG.run(uuid(1, u), uuid(5, r), level, at).changes;
      // writers on protected repositories: the pairs a ref decision is worth measuring on
      if (added && level === 2 && r % 10 === 3 && protectedPairs.length < 2000) protectedPairs.push([u, r]);
      n += added;
    }
    const insGG = db.prepare('insert or ignore into group_repo_grants (group_id, repo_id, level, created_at) values (?, ?, ?, ?)');
    n = 0;
    while (n < GROUP_GRANTS) n += insGG.run(uuid(4, rand(GROUPS)), uuid(5, rand(REPOS)), 1 + rand(3), at).changes;
    const insI = db.prepare("insert or ignore into identity_repo_grants (identity_id, repo_id, access, created_at, ref_rules) values (?, ?, ?, ?, ?)");
    for (let i = 0; i < 20_000; i++) insIdentity.run(uuid(6, i), uuid(1, 1 + rand(USERS - 1)), 0, at);
    n = 0;
    while (n < IDENTITY_GRANTS) {
      const write = rand(2) === 1;
      // a quarter of the write grants carry ref rules (a few distinct rule sets, as a platform's would)
      const [i, r, ruled] = [rand(20_000), rand(REPOS), write && rand(2) === 0];
      const added = insI.run(uuid(6, i), uuid(5, r), write ? 'write' : 'read', at, ruled ? RULES[rand(RULES.length)]! : null).changes;
      if (added && ruled && ruledPairs.length < 2000) ruledPairs.push([i, r]);
      n += added;
    }
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
  // every principal's token has an end (an hour from now): the decision checks it against its clock
  const expiresAt = Date.now() + 3_600_000;
  const principals: Principal[] = Array.from({ length: 1000 }, (_, i) => ({ kind: 'user', userId: uuid(1, 1 + rand(USERS - 1)), username: `u${i}`, admin: false, active: true, identityId: uuid(2, i), expiresAt }));
  const idents: Principal[] = Array.from({ length: 1000 }, (_, i) => ({ kind: 'identity', identityId: uuid(6, rand(20_000)), accountId: uuid(1, i + 1), expiresAt }));
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
  // one ref of a push: the same one query, then the ref rules and protected branches
  const REFS = ['refs/heads/main', 'refs/heads/agents/x', 'refs/heads/release/1.0', 'refs/tags/agent-1'];
  const measureRefs = async (pairs: [Principal, string][]) => {
    const times: number[] = [];
    let allowed = 0;
    for (let i = 0; i < 20_000; i++) {
      const [p, repoId] = pairs[rand(pairs.length)]!;
      const t0 = performance.now();
      const [d] = await access.authorizeRefs(p, repoId, [{ ref: REFS[rand(REFS.length)]!, op: rand(4) === 0 ? 'delete' : 'update' }]);
      times.push((performance.now() - t0) * 1000);
      if (d!.allowed) allowed++;
    }
    return { times, allowed };
  };
  const userRefs = await measureRefs(protectedPairs.map(([u, r]) => [{ kind: 'user', userId: uuid(1, u), username: `user${u}`, admin: false, active: true, identityId: uuid(2, u), expiresAt }, uuid(5, r)]));
  // an identity's account: read back, so that the facts say it is active
  const s3db = new Database(path.join(WORK, 'palisade.sqlite'), { readonly: true });
  const accountOf = s3db.prepare('select account_id from identities where id = ?');
  const identityRefs = await measureRefs(ruledPairs.map(([i, r]) => [{ kind: 'identity', identityId: uuid(6, i), accountId: (accountOf.get(uuid(6, i)) as { account_id: string }).account_id, expiresAt }, uuid(5, r)]));
  s3db.close();
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
    `Data set: ${USERS.toLocaleString('en')} users (3 group memberships each), ${GROUPS.toLocaleString('en')} groups, ${REPOS.toLocaleString('en')} repositories (a tenth with protected branches), ${grants.toLocaleString('en')} grants (${USER_GRANTS.toLocaleString('en')} user, ${GROUP_GRANTS.toLocaleString('en')} group, ${IDENTITY_GRANTS.toLocaleString('en')} identity, a quarter of the identity write grants with ref rules), every principal with a token end, SQLite.`,
    '',
    '| decision (20,000 random pairs, in process, `Access`) | median µs | p99 µs | allowed | target |',
    '| --- | --- | --- | --- | --- |',
    `| may user U read R (own grant, groups, visibility, protected branches, expiry) | ${pct(users.times, 50).toFixed(0)} | ${pct(users.times, 99).toFixed(0)} | ${users.allowed} | p99 ≤ 300 µs |`,
    `| may identity I read R (grant, ref rules, expiry) | ${pct(identities.times, 50).toFixed(0)} | ${pct(identities.times, 99).toFixed(0)} | ${identities.allowed} | p99 ≤ 300 µs |`,
    `| may user U move one ref of R: writers on protected repositories (\`authorizeRefs\`) | ${pct(userRefs.times, 50).toFixed(0)} | ${pct(userRefs.times, 99).toFixed(0)} | ${userRefs.allowed} | p99 ≤ 300 µs |`,
    `| may identity I move one ref of R: grants with ref rules (\`authorizeRefs\`) | ${pct(identityRefs.times, 50).toFixed(0)} | ${pct(identityRefs.times, 99).toFixed(0)} | ${identityRefs.allowed} | p99 ≤ 300 µs |`,
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
