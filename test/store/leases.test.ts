// Leases (issue 12): the claims several nodes make on one database, on a periodic job. Of nodes
// claiming at once one wins; a lease that expired is another node's to take; a late finish or
// renewal by a node that lost it changes nothing; a job that ran recently anywhere is not claimed
// again. On SQLite, and on PostgreSQL when the suite runs there. (Deliveries: test/cluster and
// test/gitrest/webhooks.)
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Store } from '../../src/store/index.ts';
import { freshDatabase } from '../helpers/server.ts';

let store: Store;
let dataDir: string;
let db: Awaited<ReturnType<typeof freshDatabase>>;

before(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'palisade-leases-'));
  db = await freshDatabase();
  store = await Store.open(dataDir, db?.url);
});
after(async () => {
  await store.close();
  await db?.drop();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

const at = (s: number) => new Date(Date.UTC(2030, 0, 1, 0, 0, s)).toISOString();
const lease = (owner: string, now: number, until: number) => ({ owner, now: at(now), until: at(until) });

test('periodic jobs: one of two nodes claims, a recent run is not claimed again, an expired lease is taken over', async () => {
  const name = `test-${crypto.randomUUID()}`;
  const [a, b] = await Promise.all([store.claimJob(store.db, name, lease('a', 0, 10)), store.claimJob(store.db, name, lease('b', 0, 10))]);
  assert.equal(Number(a) + Number(b), 1, 'exactly one claim wins');
  const holder = a ? 'a' : 'b';
  const other = a ? 'b' : 'a';
  assert.equal(await store.claimJob(store.db, name, lease(other, 5, 15)), false, 'held until it expires');
  // the holder dies; at 11 s its lease has expired
  assert.equal(await store.claimJob(store.db, name, lease(other, 11, 21)), true, 'an expired lease is taken over');
  // the dead holder's late finish changes nothing: the lease is the other's
  await store.finishJob(store.db, name, holder, at(12));
  assert.equal(await store.claimJob(store.db, name, lease(holder, 13, 23)), false);
  await store.finishJob(store.db, name, other, at(14));
  // it ran at 14 s: a round that wants "not run since 10 s" skips it, one wanting "since 20 s" takes it
  assert.equal(await store.claimJob(store.db, name, lease(holder, 30, 40), at(10)), false);
  assert.equal(await store.claimJob(store.db, name, lease(holder, 30, 40), at(20)), true);
  // renewal: only the holder extends it
  await store.renewJob(store.db, name, lease(other, 35, 100));
  assert.equal(await store.claimJob(store.db, name, lease(other, 41, 50)), true, 'not extended by a node that does not hold it');
});

test('many nodes claiming one job at once: one winner', async () => {
  const name = `race-${crypto.randomUUID()}`;
  const wins = await Promise.all(Array.from({ length: 12 }, (_, i) => store.claimJob(store.db, name, lease(`n${i}`, 0, 60))));
  assert.equal(wins.filter(Boolean).length, 1);
});

