// Push triggers: webhooks on git push and on the commits endpoint, signed (EdDSA JWT) and verified
// with jose against /.well-known/jwks.json; branch and glob filters; a receiver that is down;
// the delivery log and redelivery.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Freestyle } from 'freestyle-sandboxes';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { gitOk, makeWorkTree, repoUrl } from '../helpers/git.ts';
import { api, startServer, type TestServer } from '../helpers/server.ts';

let s: TestServer;
let fsdk: Freestyle;

interface Received {
  body: string;
  signature: string;
}

class Receiver {
  received: Received[] = [];
  private server: http.Server | undefined;
  port = 0;
  private waiters: (() => void)[] = [];
  async start(port = 0): Promise<void> {
    this.server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        this.received.push({ body, signature: String(req.headers['x-freestyle-signature'] ?? '') });
        res.end('ok');
        for (const w of this.waiters.splice(0)) w();
      });
    });
    await new Promise<void>((r) => this.server!.listen(port, '127.0.0.1', r));
    this.server.unref(); // a failed assertion must not leave the test file running forever
    this.port = (this.server.address() as AddressInfo).port;
  }
  async stop(): Promise<void> {
    await new Promise<void>((r) => this.server?.close(() => r()));
    this.server?.closeAllConnections();
  }
  get url() {
    return `http://127.0.0.1:${this.port}/hook`;
  }
  async waitFor(n: number, ms = 15_000): Promise<void> {
    const end = Date.now() + ms;
    while (this.received.length < n) {
      if (Date.now() > end) throw new Error(`expected ${n} deliveries, got ${this.received.length}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 200);
      });
    }
  }
}

before(async () => {
  s = await startServer({ PALISADE_ALLOW_PRIVATE_URLS: '1', PALISADE_WEBHOOK_BACKOFF_MS: '200' });
  fsdk = new Freestyle({ baseUrl: s.url, apiKey: s.adminKey });
});
after(() => s.stop());

describe('push triggers and signed webhooks', () => {
  test('a git push and an API commit each deliver a signed branchUpdate, verified with jose', async () => {
    const rx = new Receiver();
    await rx.start();
    const { repoId, repo } = await fsdk.git.repos.create({ name: 'hooks/main' });
    const { triggerId } = await repo.triggers.create({ trigger: { event: 'push', branches: ['main'] }, action: { action: 'webhook', endpoint: rx.url } });
    const listed = await repo.triggers.list();
    assert.deepEqual(listed.triggers.map((t) => [t.id, t.trigger.branches, t.action.endpoint]), [[triggerId, ['main'], rx.url]]);

    const wc = await makeWorkTree(1);
    await gitOk(['push', repoUrl(s.url, repoId, 'x-access-token', s.adminKey), 'main'], { cwd: wc });
    const head = (await gitOk(['rev-parse', 'HEAD'], { cwd: wc })).trim();
    await rx.waitFor(1);
    const jwks = createRemoteJWKSet(new URL(`${s.url}/.well-known/jwks.json`));
    const first = rx.received[0]!;
    assert.deepEqual(JSON.parse(first.body), { event: 'branchUpdate', repoId, branch: 'main', commit: head });
    const { payload, protectedHeader } = await jwtVerify(first.signature, jwks);
    assert.equal(protectedHeader.alg, 'EdDSA');
    assert.equal(payload.body_sha256, crypto.createHash('sha256').update(first.body).digest('hex'));
    assert.ok(typeof payload.jti === 'string' && typeof payload.iat === 'number' && typeof payload.exp === 'number');
    // a token whose claims were changed (say, to match a forged body) no longer verifies
    const [h, , sig] = first.signature.split('.');
    const forged = Buffer.from(JSON.stringify({ ...payload, body_sha256: crypto.createHash('sha256').update('{"forged":true}').digest('hex') })).toString('base64url');
    await assert.rejects(jwtVerify(`${h}.${forged}.${sig}`, jwks));

    const { commit } = await repo.commits.create({ message: 'via api', files: [{ path: 'api.txt', content: 'x' }] });
    await rx.waitFor(2);
    assert.deepEqual(JSON.parse(rx.received[1]!.body), { event: 'branchUpdate', repoId, branch: 'main', commit: commit.sha });
    await jwtVerify(rx.received[1]!.signature, jwks);

    // other branches do not match the filter
    await gitOk(['push', repoUrl(s.url, repoId, 'x-access-token', s.adminKey), 'main:other'], { cwd: wc });
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(rx.received.length, 2);

    const log = await api(s, 'GET', `/git/v1/repo/${repoId}/trigger/${triggerId}/deliveries`, { key: s.adminKey });
    assert.equal(log.body.deliveries.length, 2);
    assert.ok(log.body.deliveries.every((d: { status: string; attempts: number }) => d.status === 'delivered' && d.attempts === 1));

    await repo.triggers.delete({ triggerId });
    assert.deepEqual((await repo.triggers.list()).triggers, []);
    await rx.stop();
  });

  test('glob filters fire only when a matching file changed', async () => {
    const rx = new Receiver();
    await rx.start();
    const { repoId, repo } = await fsdk.git.repos.create({});
    await repo.triggers.create({ trigger: { event: 'push', globs: ['docs/**'] }, action: { action: 'webhook', endpoint: rx.url } });
    await repo.commits.create({ message: 'code', files: [{ path: 'src/a.ts', content: 'a' }] });
    await repo.commits.create({ message: 'docs', files: [{ path: 'docs/guide/intro.md', content: 'hi' }] });
    await rx.waitFor(1);
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(rx.received.length, 1);
    assert.equal(JSON.parse(rx.received[0]!.body).repoId, repoId);
    await rx.stop();
  });

  test('branch filters take globs: release/* fires for release/1.0, not for main', async () => {
    const rx = new Receiver();
    await rx.start();
    const { repo } = await fsdk.git.repos.create({});
    await repo.triggers.create({ trigger: { event: 'push', branches: ['release/*'] }, action: { action: 'webhook', endpoint: rx.url } });
    await repo.commits.create({ message: 'main', files: [{ path: 'a', content: 'a' }] });
    await repo.commits.create({ message: 'release', branch: 'release/1.0', files: [{ path: 'b', content: 'b' }] });
    await rx.waitFor(1);
    await new Promise((r) => setTimeout(r, 1000));
    assert.deepEqual(rx.received.map((r) => JSON.parse(r.body).branch), ['release/1.0']);
    await rx.stop();
  });

  test('a receiver that is down: the push is not blocked, deliveries retry with backoff, then arrive; redelivery', async () => {
    const rx = new Receiver();
    await rx.start();
    const port = rx.port;
    await rx.stop(); // down: connections are refused
    const { repoId, repo } = await fsdk.git.repos.create({});
    const { triggerId } = await repo.triggers.create({ trigger: { event: 'push' }, action: { action: 'webhook', endpoint: `http://127.0.0.1:${port}/hook` } });
    const t0 = Date.now();
    await repo.commits.create({ message: 'while down', files: [{ path: 'a', content: 'a' }] });
    assert.ok(Date.now() - t0 < 2000, 'the commit does not wait for the webhook');
    // wait until at least two attempts have failed
    const end = Date.now() + 15_000;
    let d: { status: string; attempts: number; lastError: string | null } | undefined;
    for (;;) {
      d = (await api(s, 'GET', `/git/v1/repo/${repoId}/trigger/${triggerId}/deliveries`, { key: s.adminKey })).body.deliveries[0];
      if (d && d.attempts >= 2) break;
      if (Date.now() > end) throw new Error(`no retries: ${JSON.stringify(d)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(d.status, 'pending');
    assert.ok(d.lastError);
    const back = new Receiver();
    await back.start(port);
    await back.waitFor(1, 20_000);
    // the receiver has answered; the server records the delivery just after (a moment later on PostgreSQL)
    let log: { id: string; status: string; attempts: number }[] = [];
    for (let i = 0; i < 50; i++, await new Promise((r) => setTimeout(r, 100))) {
      log = (await api(s, 'GET', `/git/v1/repo/${repoId}/trigger/${triggerId}/deliveries`, { key: s.adminKey })).body.deliveries;
      if (log[0]?.status === 'delivered') break;
    }
    assert.equal(log[0]!.status, 'delivered');
    assert.ok(log[0]!.attempts >= 3);
    const re = await api(s, 'POST', `/git/v1/repo/${repoId}/trigger/${triggerId}/deliveries/${log[0]!.id}/redeliver`, { key: s.adminKey });
    assert.equal(re.status, 200);
    await back.waitFor(2);
    assert.equal(back.received[1]!.body, back.received[0]!.body);
    await back.stop();
  });

  test('trigger validation and access', async () => {
    const { repoId } = await fsdk.git.repos.create({});
    const bad = await api(s, 'POST', `/git/v1/repo/${repoId}/trigger`, { key: s.adminKey, body: { trigger: { event: 'push' }, action: { action: 'webhook', endpoint: 'ftp://x' } } });
    assert.equal(bad.status, 400);
    const bad2 = await api(s, 'POST', `/git/v1/repo/${repoId}/trigger`, { key: s.adminKey, body: { trigger: { event: 'pull' }, action: { action: 'webhook', endpoint: 'http://127.0.0.1:1/' } } });
    assert.equal(bad2.status, 400);
    const stranger = await s.createUser(`hookless-${crypto.randomBytes(3).toString('hex')}`);
    const hidden = await api(s, 'GET', `/git/v1/repo/${repoId}/trigger`, { key: stranger });
    assert.equal(hidden.status, 404);
    const jwks = await api(s, 'GET', '/.well-known/jwks.json');
    assert.equal(jwks.body.keys[0].kty, 'OKP');
    assert.equal(jwks.body.keys[0].crv, 'Ed25519');
    assert.equal(jwks.body.keys[0].d, undefined, 'the private part is never published');
  });
});
