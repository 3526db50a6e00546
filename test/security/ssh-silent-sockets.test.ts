// SSH connections that never speak. The attack: open TCP connections to the SSH port and send
// nothing, not even the version line. ssh2 reports a connection only once that line arrives, so
// such sockets were neither counted against PALISADE_SSH_MAX_CONNECTIONS nor timed by
// PALISADE_SSH_AUTH_TIMEOUT_SECONDS: a few thousand of them held file descriptors forever.
// Every accepted socket is now counted and timed from accept, and one address may hold only
// PALISADE_SSH_MAX_STARTUPS_PER_ADDRESS unauthenticated ones.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { startServer, type TestServer } from '../helpers/server.ts';

let s: TestServer;
const STARTUPS = 4;

before(async () => {
  s = await startServer({ PALISADE_SSH_PORT: '0', PALISADE_SSH_AUTH_TIMEOUT_SECONDS: '1', PALISADE_SSH_MAX_STARTUPS_PER_ADDRESS: String(STARTUPS) });
  assert.ok(s.sshPort, 'the server printed its SSH port');
});
after(() => s.stop());

interface Silent {
  socket: net.Socket;
  /** what the server sent */
  received: () => string;
  /** resolves with ms from connect to close */
  closed: Promise<number>;
}

/** A TCP connection to the SSH port that sends nothing. */
function silent(): Promise<Silent> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(s.sshPort!, '127.0.0.1');
    let data = '';
    socket.on('data', (d) => (data += d.toString('latin1')));
    socket.on('error', () => undefined);
    socket.once('connect', () => {
      const t0 = Date.now();
      const closed = new Promise<number>((r) => socket.once('close', () => r(Date.now() - t0)));
      resolve({ socket, received: () => data, closed });
    });
    socket.once('error', reject);
  });
}

const within = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms).unref())]);

describe('SSH sockets that never send a version line', () => {
  test('a silent socket is closed once the authentication timeout passes', async () => {
    const c = await silent();
    const ms = await within(c.closed, 5000, 'silent socket closed');
    assert.ok(ms >= 900, `closed after ${ms} ms, not before the 1 s timeout`);
    assert.match(c.received(), /^SSH-2\.0-/, 'the server spoke first, as SSH servers do');
  });

  test('one address holds at most PALISADE_SSH_MAX_STARTUPS_PER_ADDRESS of them; beyond, new ones are closed at once', async () => {
    const held = await Promise.all(Array.from({ length: STARTUPS }, () => silent()));
    // let the server register all of them before the next arrives
    await new Promise((r) => setTimeout(r, 100));
    const extra = await silent();
    const ms = await within(extra.closed, 800, 'connection beyond the bound closed');
    assert.ok(ms < 800);
    assert.equal(extra.received(), '', 'refused before any SSH traffic');
    for (const h of held) assert.equal(h.socket.destroyed, false, 'the earlier ones are still open');
    // once they time out the address may connect again
    await within(Promise.all(held.map((h) => h.closed)), 5000, 'held sockets timed out');
    const again = await silent();
    await new Promise((r) => setTimeout(r, 200));
    assert.match(again.received(), /^SSH-2\.0-/, 'a new connection is served after the others closed');
    again.socket.destroy();
  });

  test('the HTTP side stays up throughout', async () => {
    const held = await Promise.all(Array.from({ length: STARTUPS * 3 }, () => silent()));
    const res = await fetch(`${s.url}/healthz`);
    assert.equal(res.status, 200);
    for (const h of held) h.socket.destroy();
  });
});
