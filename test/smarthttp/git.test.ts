// The real git CLI against the real server: the permission matrix, protocols, shallow clones,
// binaries, tags, force pushes and branch deletes.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import zlib from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { repoDir } from '../../src/git/repo-path.ts';
import { git, gitOk, makeWorkTree, repoUrl, tmpDir } from '../helpers/git.ts';
import { api, startServer, type TestServer } from '../helpers/server.ts';

let s: TestServer;

before(async () => {
  s = await startServer();
});
after(() => s.stop());

async function createRepo(key: string, body: object): Promise<string> {
  const r = await api(s, 'POST', '/git/v1/repo', { key, body });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.repoId;
}
async function identityWith(repoId: string | null, permission?: 'read' | 'write'): Promise<{ id: string; token: string; tokenId: string }> {
  const id = (await api(s, 'POST', '/identity/v1/identities', { key: s.adminKey })).body.id;
  if (repoId && permission) {
    const g = await api(s, 'POST', `/identity/v1/identities/${id}/permissions/git/${repoId}`, { key: s.adminKey, body: { permission } });
    assert.equal(g.status, 200);
  }
  const t = (await api(s, 'POST', `/identity/v1/identities/${id}/tokens`, { key: s.adminKey })).body;
  return { id, token: t.token, tokenId: t.id };
}
const refsOf = async (url: string) => (await gitOk(['ls-remote', url])).trim();
const countObjects = (repoId: string) => {
  let n = 0;
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) e.isDirectory() ? walk(path.join(d, e.name)) : n++;
  };
  walk(path.join(repoDir(s.dataDir, repoId), 'objects'));
  return n;
};

type Outcome = 'ok' | 401 | 403 | 404;
function outcomeOf(r: { code: number; stderr: string }): Outcome | string {
  if (r.code === 0) return 'ok';
  if (/terminal prompts disabled|Authentication failed|returned error: 401/.test(r.stderr)) return 401;
  if (/returned error: 403/.test(r.stderr)) return 403;
  if (/not found|returned error: 404/.test(r.stderr)) return 404;
  return r.stderr;
}

describe('git smart HTTP', () => {
  test('permission matrix on a private repository: clone and push per principal', async () => {
    const repo = await createRepo(s.adminKey, { name: 'matrix/private' });
    const seed = await makeWorkTree(2);
    await gitOk(['push', repoUrl(s.url, 'matrix/private.git', 'x-access-token', s.adminKey), 'main'], { cwd: seed });

    const writer = await identityWith(repo, 'write');
    const reader = await identityWith(repo, 'read');
    const nogrant = await identityWith(null);
    const revoked = await identityWith(repo, 'write');
    assert.equal((await api(s, 'DELETE', `/identity/v1/identities/${revoked.id}/tokens/${revoked.tokenId}`, { key: s.adminKey })).status, 200);
    const stranger = await s.createUser('stranger');

    const principals: [string, (u: string) => { url: string; extra: string[] }, Outcome, Outcome][] = [
      ['owner (admin) x-access-token + API key', (u) => ({ url: repoUrl(s.url, u, 'x-access-token', s.adminKey), extra: [] }), 'ok', 'ok'],
      ['owner (admin) username + API key', (u) => ({ url: repoUrl(s.url, u, 'admin', s.adminKey), extra: [] }), 'ok', 'ok'],
      ['owner (admin) Bearer via http.extraHeader', (u) => ({ url: repoUrl(s.url, u), extra: ['-c', `http.extraHeader=Authorization: Bearer ${s.adminKey}`] }), 'ok', 'ok'],
      ['identity with write', (u) => ({ url: repoUrl(s.url, u, 'x-access-token', writer.token), extra: [] }), 'ok', 'ok'],
      ['identity with read', (u) => ({ url: repoUrl(s.url, u, 'x-access-token', reader.token), extra: [] }), 'ok', 403],
      ['identity without grant', (u) => ({ url: repoUrl(s.url, u, 'x-access-token', nogrant.token), extra: [] }), 404, 404],
      ['another user', (u) => ({ url: repoUrl(s.url, u, 'stranger', stranger), extra: [] }), 404, 404],
      ['anonymous', (u) => ({ url: repoUrl(s.url, u), extra: [] }), 401, 401],
      ['revoked token', (u) => ({ url: repoUrl(s.url, u, 'x-access-token', revoked.token), extra: [] }), 401, 401],
      ['wrong token', (u) => ({ url: repoUrl(s.url, u, 'x-access-token', 'pal_wrong'), extra: [] }), 401, 401],
      ['username with wrong password', (u) => ({ url: repoUrl(s.url, u, 'admin', 'not-the-password'), extra: [] }), 401, 401],
    ];
    for (const [who, target, cloneExpected, pushExpected] of principals) {
      const { url, extra } = target(repo);
      const dest = path.join(tmpDir(), 'clone');
      const clone = await git([...extra, 'clone', '-q', url, dest]);
      assert.equal(outcomeOf(clone), cloneExpected, `${who}: clone`);

      const before = await refsOf(repoUrl(s.url, repo, 'x-access-token', s.adminKey));
      const objectsBefore = countObjects(repo);
      const wc = await makeWorkTree(1);
      fs.writeFileSync(path.join(wc, 'unique.txt'), `${who} ${crypto.randomUUID()}\n`);
      await gitOk(['add', '.'], { cwd: wc });
      await gitOk(['commit', '-q', '-m', `push by ${who}`], { cwd: wc });
      const branch = `try-${crypto.randomBytes(4).toString('hex')}`;
      const push = await git([...extra, 'push', url, `HEAD:refs/heads/${branch}`], { cwd: wc });
      assert.equal(outcomeOf(push), pushExpected, `${who}: push`);
      const afterRefs = await refsOf(repoUrl(s.url, repo, 'x-access-token', s.adminKey));
      if (pushExpected === 'ok') assert.match(afterRefs, new RegExp(`refs/heads/${branch}`), `${who}: pushed branch visible`);
      else {
        assert.equal(afterRefs, before, `${who}: a refused push leaves refs unchanged`);
        assert.equal(countObjects(repo), objectsBefore, `${who}: a refused push writes no object`);
      }
    }
  });

  test('a denied identity sees exactly what a missing repository looks like', async () => {
    const repo = await createRepo(s.adminKey, { name: 'hidden/repo' });
    const nogrant = await identityWith(null);
    const onHidden = await git(['ls-remote', repoUrl(s.url, 'hidden/repo', 'x-access-token', nogrant.token)]);
    const onMissing = await git(['ls-remote', repoUrl(s.url, 'hidden/nothing', 'x-access-token', nogrant.token)]);
    assert.notEqual(onHidden.code, 0);
    assert.equal(onHidden.stderr.replaceAll('hidden/repo', 'X'), onMissing.stderr.replaceAll('hidden/nothing', 'X'));
    const raw = await fetch(`${s.url}/${repo}/info/refs?service=git-upload-pack`, { headers: { authorization: `Bearer ${nogrant.token}` } });
    const rawMissing = await fetch(`${s.url}/00000000-0000-4000-8000-000000000000/info/refs?service=git-upload-pack`, { headers: { authorization: `Bearer ${nogrant.token}` } });
    assert.equal(raw.status, 404);
    assert.equal(rawMissing.status, 404);
    assert.equal(await raw.text(), await rawMissing.text());
    // and anonymous callers are asked for credentials in both cases
    for (const target of [repo, '00000000-0000-4000-8000-000000000000']) {
      const r = await fetch(`${s.url}/${target}/info/refs?service=git-upload-pack`);
      assert.equal(r.status, 401);
      assert.equal(r.headers.get('www-authenticate')?.startsWith('Basic realm="Palisade"'), true);
    }
  });

  test('public repository: anonymous clone, anonymous push refused with 401', async () => {
    await createRepo(s.adminKey, { name: 'open/source', public: true });
    const seed = await makeWorkTree(1);
    await gitOk(['push', repoUrl(s.url, 'open/source', 'x-access-token', s.adminKey), 'main'], { cwd: seed });
    const dest = path.join(tmpDir(), 'c');
    await gitOk(['clone', '-q', repoUrl(s.url, 'open/source.git'), dest]);
    assert.ok(fs.existsSync(path.join(dest, 'file0.txt')));
    fs.writeFileSync(path.join(dest, 'x'), 'x');
    await gitOk(['add', '.'], { cwd: dest });
    await gitOk(['commit', '-qm', 'x'], { cwd: dest });
    assert.equal(outcomeOf(await git(['push', 'origin', 'main'], { cwd: dest })), 401);
  });

  test('revoking a token ends its git access at once', async () => {
    const repo = await createRepo(s.adminKey, {});
    const id = await identityWith(repo, 'read');
    const url = repoUrl(s.url, repo, 'x-access-token', id.token);
    assert.equal((await git(['ls-remote', url])).code, 0);
    await api(s, 'DELETE', `/identity/v1/identities/${id.id}/tokens/${id.tokenId}`, { key: s.adminKey });
    assert.equal(outcomeOf(await git(['ls-remote', url])), 401);
  });

  test('protocol v0 and v2 both serve clone and fetch', async () => {
    const repo = await createRepo(s.adminKey, {});
    const url = repoUrl(s.url, repo, 'x-access-token', s.adminKey);
    const seed = await makeWorkTree(3);
    await gitOk(['push', url, 'main'], { cwd: seed });
    for (const v of ['0', '2']) {
      const head = (await gitOk(['rev-parse', 'HEAD'], { cwd: seed })).trim();
      const dest = path.join(tmpDir(), `v${v}`);
      const r = await git(['-c', `protocol.version=${v}`, 'clone', url, dest], { env: { GIT_TRACE_PACKET: '1' } });
      assert.equal(r.code, 0, r.stderr);
      const spokeV2 = /git< version 2/.test(r.stderr);
      assert.equal(spokeV2, v === '2', `protocol v${v} negotiated`);
      assert.equal((await gitOk(['rev-parse', 'HEAD'], { cwd: dest })).trim(), head);
      // a fetch after a new push
      const more = path.join(seed, `more-v${v}.txt`);
      fs.writeFileSync(more, v);
      await gitOk(['add', '.'], { cwd: seed });
      await gitOk(['commit', '-qm', `more v${v}`], { cwd: seed });
      await gitOk(['push', url, 'main'], { cwd: seed });
      await gitOk(['-c', `protocol.version=${v}`, 'fetch', 'origin'], { cwd: dest });
      assert.equal((await gitOk(['rev-parse', 'origin/main'], { cwd: dest })).trim(), (await gitOk(['rev-parse', 'HEAD'], { cwd: seed })).trim());
    }
  });

  test('shallow clone, tags, force push and branch delete', async () => {
    const repo = await createRepo(s.adminKey, {});
    const url = repoUrl(s.url, repo, 'x-access-token', s.adminKey);
    const wc = await makeWorkTree(5);
    await gitOk(['tag', 'v1.0'], { cwd: wc });
    await gitOk(['tag', '-a', 'v1.1', '-m', 'annotated'], { cwd: wc });
    await gitOk(['push', url, 'main', 'v1.0', 'v1.1'], { cwd: wc });
    await gitOk(['push', url, 'main:feature'], { cwd: wc });

    const shallow = path.join(tmpDir(), 'shallow');
    await gitOk(['clone', '--depth', '1', url, shallow]);
    assert.equal((await gitOk(['rev-list', '--count', 'HEAD'], { cwd: shallow })).trim(), '1');
    assert.ok(fs.existsSync(path.join(shallow, '.git', 'shallow')));
    await gitOk(['fetch', '--deepen', '2'], { cwd: shallow });
    assert.equal((await gitOk(['rev-list', '--count', 'HEAD'], { cwd: shallow })).trim(), '3');

    const refs = await refsOf(url);
    assert.match(refs, /refs\/tags\/v1\.0$/m);
    assert.match(refs, /refs\/tags\/v1\.1\^\{\}$/m);

    // force push: rewrite main to one commit back
    await gitOk(['reset', '-q', '--hard', 'HEAD~2'], { cwd: wc });
    const rejected = await git(['push', url, 'main'], { cwd: wc });
    assert.notEqual(rejected.code, 0, 'a non-fast-forward push without --force is rejected');
    await gitOk(['push', '--force', url, 'main'], { cwd: wc });
    const newHead = (await gitOk(['rev-parse', 'HEAD'], { cwd: wc })).trim();
    assert.match(await refsOf(url), new RegExp(`^${newHead}\\trefs/heads/main$`, 'm'));

    await gitOk(['push', url, ':feature'], { cwd: wc });
    assert.doesNotMatch(await refsOf(url), /refs\/heads\/feature/);

    // the REST listing sees branches and tags
    const list = await api(s, 'GET', '/git/v1/repo?limit=1000', { key: s.adminKey });
    const entry = list.body.repositories.find((r: { id: string }) => r.id === repo);
    assert.deepEqual(Object.keys(entry.branches), ['main']);
    assert.equal(entry.branches.main.target, newHead);
    assert.equal(entry.branches.main.default, true);
    assert.deepEqual(Object.keys(entry.tags).sort(), ['v1.0', 'v1.1']);
  });

  test('a multi-megabyte binary survives the round trip byte for byte', async () => {
    const repo = await createRepo(s.adminKey, {});
    const url = repoUrl(s.url, repo, 'x-access-token', s.adminKey);
    const wc = await makeWorkTree(0);
    const blob = crypto.randomBytes(6 * 1024 * 1024);
    fs.writeFileSync(path.join(wc, 'blob.bin'), blob);
    await gitOk(['add', '.'], { cwd: wc });
    await gitOk(['commit', '-qm', 'binary'], { cwd: wc });
    await gitOk(['push', url, 'main'], { cwd: wc });
    const dest = path.join(tmpDir(), 'bin');
    await gitOk(['clone', '-q', url, dest]);
    const back = fs.readFileSync(path.join(dest, 'blob.bin'));
    assert.equal(crypto.createHash('sha256').update(back).digest('hex'), crypto.createHash('sha256').update(blob).digest('hex'));
  });

  test('a gzip-encoded upload-pack request is decoded (as git sends large negotiations)', async () => {
    const repo = await createRepo(s.adminKey, {});
    const url = repoUrl(s.url, repo, 'x-access-token', s.adminKey);
    const wc = await makeWorkTree(1);
    await gitOk(['push', url, 'main'], { cwd: wc });
    const oid = (await gitOk(['rev-parse', 'HEAD'], { cwd: wc })).trim();
    const pkt = (line: string) => (line.length + 4).toString(16).padStart(4, '0') + line;
    const body = zlib.gzipSync(Buffer.from(pkt(`want ${oid} ofs-delta\n`) + '0000' + pkt('done\n')));
    const res = await fetch(`${s.url}/${repo}/git-upload-pack`, {
      method: 'POST',
      headers: { authorization: `Bearer ${s.adminKey}`, 'content-type': 'application/x-git-upload-pack-request', 'content-encoding': 'gzip' },
      body,
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/x-git-upload-pack-result');
    const out = Buffer.from(await res.arrayBuffer());
    assert.ok(out.includes(Buffer.from('PACK')), 'a pack comes back');
    // a wrong content type is refused before git runs
    const bad = await fetch(`${s.url}/${repo}/git-upload-pack`, { method: 'POST', headers: { authorization: `Bearer ${s.adminKey}`, 'content-type': 'text/plain' }, body: 'x' });
    assert.equal(bad.status, 415);
    // the dumb protocol is not served
    const dumb = await fetch(`${s.url}/${repo}/info/refs`, { headers: { authorization: `Bearer ${s.adminKey}` } });
    assert.equal(dumb.status, 403);
  });

  test('path traversal in the repository part never reaches the filesystem', async () => {
    // Sent raw: fetch would normalise the dot segments away before they reached the server.
    const u = new URL(s.url);
    for (const p of ['/../../etc/passwd/info/refs', '/%2e%2e%2fetc/info/refs', '/..%2F..%2Fetc/info/refs', '/a/../../b/info/refs', '/./repos/info/refs']) {
      const status = await new Promise<number>((resolve, reject) => {
        const req = http.request({ host: u.hostname, port: u.port, path: `${p}?service=git-upload-pack`, headers: { authorization: `Bearer ${s.adminKey}` } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
      assert.equal(status, 404, p);
    }
  });
});
