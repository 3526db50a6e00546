// The look-ups on the request path compiled once (src/store/compiled.ts): they answer what the
// query built anew answers, for any argument (quotes and SQL text stay values), refuse a build
// that splices an argument into the SQL, and the anonymous decision's facts taken from the
// repository row equal what the facts query answers. On SQLite, and on PostgreSQL when the suite
// runs there.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { sql } from 'kysely';
import { compiledOnce } from '../../src/store/compiled.ts';
import { anonymousAccessFacts, type RepoRow, Store } from '../../src/store/index.ts';
import { freshDatabase } from '../helpers/server.ts';

let store: Store;
let dataDir: string;
let db: Awaited<ReturnType<typeof freshDatabase>>;
const userId = crypto.randomUUID();
const now = new Date().toISOString();

before(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'palisade-compiled-'));
  db = await freshDatabase();
  store = await Store.open(dataDir, db?.url);
  const identityId = crypto.randomUUID();
  // the account and its managed identity name each other: written together, as Users.create does
  await store.transaction(async (tx) => {
    await store.insertIdentity(tx, { id: identityId, account_id: userId, managed: 1, created_at: now });
    await store.insertUser(tx, { id: userId, username: 'owner', username_key: 'owner', email: null, firstname: null, lastname: null, active: 1, admin: 0, password_hash: null, identity_id: identityId, created_at: now, ldap_dn: null });
  });
});
after(async () => {
  await store.close();
  await db?.drop();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

const repo = (name: string, o: Partial<RepoRow> = {}): RepoRow => ({ id: crypto.randomUUID(), name, owner_id: userId, visibility: 'private', default_branch: 'main', description: null, upstream_url: null, created_at: now, group_id: null, type: 'git', protected_branches: null, ...o });

test('a query compiled once answers as the query built anew, for names with quotes and SQL in them', async () => {
  const names = ["o/plain", "o/it's", 'o/x" OR 1=1 --', "o/'; DROP TABLE repositories; --", 'o/%_'];
  for (const n of names) await store.insertRepo(store.db, repo(n));
  const byName = compiledOnce((c, name: string) => c.selectFrom('repositories').selectAll().where('name', '=', name));
  for (const n of [...names, 'o/missing', '']) {
    const fresh = await store.db.selectFrom('repositories').selectAll().where('name', '=', n).executeTakeFirst();
    assert.deepEqual(await byName(store.db, n), fresh, n);
    assert.deepEqual(await store.findRepoByName(store.db, n), fresh, n);
  }
  assert.equal((await byName(store.db, 'o/%_'))?.name, 'o/%_');
  assert.equal(await byName(store.db, 'o/%'), undefined, 'a value, not a pattern');
  // inside a transaction too
  await store.transaction(async (tx) => assert.equal((await byName(tx, "o/it's"))?.name, "o/it's"));
});

test('a build that puts an argument into the SQL text, or leaves one out, is refused at its first call', async () => {
  const spliced = compiledOnce((c, col: string) => c.selectFrom('repositories').select(sql.ref(col).as('x')).where('name', '=', 'o/plain'));
  await assert.rejects(spliced(store.db, 'name'), /every argument must be one bound parameter/);
  const unused = compiledOnce((c, _name: string) => c.selectFrom('repositories').selectAll().where('name', '=', 'o/plain'));
  await assert.rejects(unused(store.db, 'o/plain'), /every argument must be one bound parameter/);
});

test('the anonymous facts from the row equal the facts query for a caller without identity or user', async () => {
  for (const r of [repo('f/public', { visibility: 'public' }), repo('f/private'), repo('f/protected', { protected_branches: JSON.stringify(['main', 'release/*']) })]) {
    await store.insertRepo(store.db, r);
    const row = (await store.findRepoById(store.db, r.id))!;
    assert.deepEqual(anonymousAccessFacts(row), await store.repoAccessFacts(store.db, r.id, {}), r.name!);
  }
});
