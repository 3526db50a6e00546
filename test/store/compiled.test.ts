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

test('the look-ups read at once never answer what changed since: a write here, another process, an open transaction', async () => {
  const r = repo('c/cached', { visibility: 'public' });
  await store.insertRepo(store.db, r);
  assert.equal((await store.findRepoByName(store.db, 'c/cached'))?.visibility, 'public');
  assert.equal((await store.findRepoByName(store.db, 'c/cached'))?.visibility, 'public', 'asked again');
  // a caller that changes the row it was given changes nobody else's
  (await store.findRepoByName(store.db, 'c/cached'))!.description = 'changed by a caller';
  assert.equal((await store.findRepoByName(store.db, 'c/cached'))?.description, null);
  // a write through the store, outside and inside a transaction
  await store.updateRepo(store.db, r.id, { visibility: 'private' });
  assert.equal((await store.findRepoByName(store.db, 'c/cached'))?.visibility, 'private');
  await store.transaction((tx) => store.updateRepo(tx, r.id, { name: 'c/renamed' }));
  assert.equal(await store.findRepoByName(store.db, 'c/cached'), undefined, 'the old name is gone');
  assert.equal((await store.findRepoById(store.db, r.id))?.name, 'c/renamed');
  // a missing name, then created: found
  assert.equal(await store.findRepoByName(store.db, 'c/later'), undefined);
  await store.insertRepo(store.db, repo('c/later'));
  assert.equal((await store.findRepoByName(store.db, 'c/later'))?.name, 'c/later');
  // while a transaction is open on the connection, a read outside it does not see its rows
  // (here rolled back: a read that saw them would answer what never was)
  let inside: (() => void) | undefined;
  const held = new Promise<void>((resolve) => (inside = resolve));
  let release!: () => void;
  const tx = store.transaction(async (t) => {
    await store.updateRepo(t, r.id, { visibility: 'public' });
    inside!();
    await new Promise<void>((resolve) => (release = resolve));
    throw new Error('rolled back');
  });
  await held;
  const outside = store.findRepoById(store.db, r.id);
  release();
  await assert.rejects(tx, /rolled back/);
  assert.equal((await outside)?.visibility, 'private', 'not the rolled-back write');
  assert.equal((await store.findRepoById(store.db, r.id))?.visibility, 'private');
  await store.updateRepo(store.db, r.id, { visibility: 'public' });
  if (db) return; // PostgreSQL: no other process shares an SQLite file
  // another process's commit (the CLI's, on the same file)
  const other = new (await import('better-sqlite3')).default(path.join(dataDir, 'palisade.sqlite'));
  try {
    assert.equal((await store.findRepoById(store.db, r.id))?.visibility, 'public');
    other.prepare('UPDATE repositories SET visibility = ? WHERE id = ?').run('private', r.id);
    assert.equal((await store.findRepoById(store.db, r.id))?.visibility, 'private', "another connection's commit is seen");
    other.prepare('DELETE FROM repositories WHERE id = ?').run(r.id);
    assert.equal(await store.findRepoById(store.db, r.id), undefined);
  } finally {
    other.close();
  }
});

test("a token and a grant read at once: a revocation is seen at the next read, this process's or another's", async () => {
  const r = repo('c/granted');
  await store.insertRepo(store.db, r);
  const identityId = crypto.randomUUID();
  await store.insertIdentity(store.db, { id: identityId, account_id: userId, managed: 0, created_at: now });
  await store.insertIdentityGrant(store.db, { identity_id: identityId, repo_id: r.id, access: 'write', created_at: now });
  const tokenId = crypto.randomUUID();
  const tokenHash = crypto.randomBytes(32).toString('hex');
  await store.insertToken(store.db, { id: tokenId, identity_id: identityId, token_hash: tokenHash, created_at: now });
  assert.equal((await store.findTokenOwner(store.db, tokenHash))?.identityId, identityId);
  assert.equal((await store.repoAccessFacts(store.db, r.id, { identityId }))?.identityAccess, 'write');
  assert.equal((await store.repoAccessFacts(store.db, r.id, { identityId }))?.identityAccess, 'write', 'asked again');
  // the grant removed here: the facts say so at once
  await store.deleteIdentityGrant(store.db, identityId, r.id);
  assert.equal((await store.repoAccessFacts(store.db, r.id, { identityId }))?.identityAccess, null);
  assert.equal((await store.findTokenOwner(store.db, tokenHash))?.tokenId, tokenId);
  if (db) {
    await store.deleteToken(store.db, identityId, tokenId);
    assert.equal(await store.findTokenOwner(store.db, tokenHash), undefined);
    return;
  }
  // the token revoked by another process (the CLI, on the same file): refused at the next read
  const other = new (await import('better-sqlite3')).default(path.join(dataDir, 'palisade.sqlite'));
  try {
    other.prepare('DELETE FROM tokens WHERE id = ?').run(tokenId);
    assert.equal(await store.findTokenOwner(store.db, tokenHash), undefined, 'a revoked token is not honoured');
  } finally {
    other.close();
  }
});
