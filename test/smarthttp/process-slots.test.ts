// The process pool's queue (issue 12): more requests may wait than run (a waiting request holds
// no process), four times the slots per client and in all, so that a burst of one account's
// clients drains instead of being refused; beyond that, and past the wait, 503 as before.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ANONYMOUS, anonymousFrom, type Principal } from '../../src/domain/access.ts';
import { gitPrincipal, restPrincipal } from '../../src/http/credentials.ts';
import { clientKey, ProcessSlots, QUEUE_FACTOR } from '../../src/services/process-slots.ts';
import type { Users } from '../../src/services/users.ts';

const user = (id: string): Principal => ({ kind: 'user', userId: id, username: id, admin: false }) as unknown as Principal;

test('one client: perClient run, QUEUE_FACTOR × perClient wait, the rest are refused at once', async () => {
  const slots = new ProcessSlots({ max: 8, perClient: 2, queueMs: 5_000 });
  const a = user('a');
  const running = [await slots.acquire(a), await slots.acquire(a)];
  const waiting = Array.from({ length: QUEUE_FACTOR * 2 }, () => slots.acquire(a));
  await assert.rejects(slots.acquire(a), /Too many git processes/);
  assert.deepEqual(slots.stats(), { running: 2, queued: QUEUE_FACTOR * 2 });
  // another client is not held up by a's queue
  const b = await slots.acquire(user('b'));
  b.release();
  // releasing drains the queue in order, never past perClient at once
  for (const s of running) s.release();
  const granted = await Promise.all(waiting.slice(0, 2));
  assert.equal(slots.stats().running, 2);
  for (const s of granted) s.release();
  for (const p of waiting.slice(2)) (await p).release();
  assert.deepEqual(slots.stats(), { running: 0, queued: 0 });
});

test('a waiter is refused when its wait runs out', async () => {
  const slots = new ProcessSlots({ max: 1, perClient: 1, queueMs: 50 });
  const held = await slots.acquire(user('a'));
  await assert.rejects(slots.acquire(user('a')), /Too many git processes/);
  held.release();
});

test('server-wide: QUEUE_FACTOR × max wait in all, across clients', async () => {
  const slots = new ProcessSlots({ max: 1, perClient: 1, queueMs: 5_000 });
  const held = await slots.acquire(user('x'));
  const waiting = Array.from({ length: QUEUE_FACTOR }, (_, i) => slots.acquire(user(`c${i}`)));
  await assert.rejects(slots.acquire(user('late')), /Too many git processes/);
  held.release();
  for (const p of waiting) (await p).release();
});

test('an anonymous caller counts against its address (an IPv6 one by its /64); outside a request, one shared key', async () => {
  assert.equal(clientKey(anonymousFrom('127.0.0.1')), 'ip:127.0.0.1');
  assert.notEqual(clientKey(anonymousFrom('127.0.0.2')), clientKey(anonymousFrom('127.0.0.1')));
  // an IPv4 client seen on a dual-stack socket is the same client
  assert.equal(clientKey(anonymousFrom('::ffff:127.0.0.1')), 'ip:127.0.0.1');
  assert.equal(clientKey(anonymousFrom('2001:db8:1:2:3:4:5:6')), clientKey(anonymousFrom('2001:db8:1:2:ffff::1')));
  assert.notEqual(clientKey(anonymousFrom('2001:db8:1:2::1')), clientKey(anonymousFrom('2001:db8:1:3::1')));
  // what does not parse as an address is its own key, cut to 64 characters
  assert.equal(clientKey(anonymousFrom('not-an-address')), 'ip:not-an-address');
  assert.equal(clientKey(anonymousFrom('x'.repeat(300))), `ip:${'x'.repeat(64)}`);
  assert.equal(clientKey(ANONYMOUS), 'anonymous');
  assert.equal(clientKey(anonymousFrom(undefined)), 'anonymous');
  // and the pool keeps the shares apart: one address at its bound, another still runs
  const slots = new ProcessSlots({ max: 8, perClient: 1, queueMs: 0 });
  const held = await slots.acquire(anonymousFrom('192.0.2.1'));
  await assert.rejects(slots.acquire(anonymousFrom('192.0.2.1')), /busy|unavailable|try again/i);
  (await slots.acquire(anonymousFrom('192.0.2.2'))).release();
  held.release();
});

test('the surfaces build an anonymous caller with its address: git from the socket, REST from the request', async () => {
  // no credentials: the users service is never asked
  const users = {} as Users;
  assert.deepEqual(await gitPrincipal({ headers: {}, socket: { remoteAddress: '192.0.2.7' } }, users), { kind: 'anonymous', address: '192.0.2.7' });
  assert.deepEqual(await restPrincipal({ headers: {}, ip: '2001:db8::7' } as never, users), { kind: 'anonymous', address: '2001:db8::7' });
  // a socket already gone has no address: the shared key, as before
  assert.equal(clientKey(await gitPrincipal({ headers: {}, socket: {} }, users)), 'anonymous');
});
