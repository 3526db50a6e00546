// Protocol v2's advertisement and ls-refs are answered without a git process (issue 12): the
// bytes must be git's own for the same repository, the real git client must still clone,
// fetch and list refs with v2 and with v0, and the advertisement must not need a process slot.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { repoDir } from '../../src/git/repo-path.ts';
import { pktLine } from '../../src/git/smart-http.ts';
import { gitOk, makeWorkTree, repoUrl, tmpDir } from '../helpers/git.ts';
import { api, startServer, type TestServer } from '../helpers/server.ts';

let s: TestServer;
let repoId: string;
let url: string;
let wc: string;

const basic = () => `Basic ${Buffer.from(`x-access-token:${s.adminKey}`).toString('base64')}`;

/** git upload-pack itself on the repository's folder, in the environment Palisade pins. */
function gitOnDisk(args: string[], body?: Buffer, cmd = 'upload-pack'): Buffer {
  const r = spawnSync('git', [cmd, '--stateless-rpc', ...args, repoDir(s.dataDir, repoId)], {
    input: body ?? '',
    env: { PATH: process.env.PATH, HOME: tmpDir('palisade-home-'), GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', LC_ALL: 'C', ...(cmd === 'upload-pack' ? { GIT_PROTOCOL: 'version=2' } : {}) },
  });
  assert.equal(r.status, 0, String(r.stderr));
  return r.stdout;
}

function request(method: string, path: string, headers: Record<string, string>, body?: Buffer): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${s.url}${path}`, { method, agent: false, headers: { Authorization: basic(), ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

before(async () => {
  s = await startServer({ PALISADE_MAX_GIT_PROCESSES: '1', PALISADE_MAX_GIT_PROCESSES_PER_CLIENT: '1', PALISADE_GIT_QUEUE_SECONDS: '0' });
  const r = await api(s, 'POST', '/git/v1/repo', { key: s.adminKey, body: { name: 'v2/refs' } });
  assert.equal(r.status, 200);
  repoId = r.body.repoId;
  url = repoUrl(s.url, 'v2/refs.git', 'x-access-token', s.adminKey);
  wc = await makeWorkTree(3);
  await gitOk(['tag', '-a', '-m', 'release', 'v1'], { cwd: wc });
  await gitOk(['tag', 'light', 'HEAD~1'], { cwd: wc });
  await gitOk(['branch', 'feature', 'HEAD~2'], { cwd: wc });
  await gitOk(['push', '-q', url, 'main', 'feature', '--tags'], { cwd: wc });
});
after(() => s.stop());

describe('protocol v2 without a git process', () => {
  test('info/refs (v2) is the advertisement git sends for the repository', async () => {
    const r = await request('GET', '/v2/refs.git/info/refs?service=git-upload-pack', { 'Git-Protocol': 'version=2' });
    assert.equal(r.status, 200);
    assert.equal(r.body.toString('latin1'), gitOnDisk(['--advertise-refs']).toString('latin1'));
    assert.match(r.body.toString('latin1'), /agent=git\/\d+\.\d+/);
  });

  test("info/refs for a v0 client is upload-pack's own advertisement", async () => {
    const r = await request('GET', '/v2/refs.git/info/refs?service=git-upload-pack', {});
    assert.equal(r.status, 200);
    const env = { PATH: process.env.PATH, HOME: tmpDir('palisade-home-'), GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', LC_ALL: 'C' };
    const theirs = spawnSync('git', ['upload-pack', '--stateless-rpc', '--advertise-refs', repoDir(s.dataDir, repoId)], { env }).stdout;
    assert.equal(r.body.toString('latin1'), '001e# service=git-upload-pack\n0000' + theirs.toString('latin1'));
    assert.match(r.body.toString('latin1'), /symref=HEAD:refs\/heads\/main/);
    assert.match(r.body.toString('latin1'), /refs\/tags\/v1\^\{\}/);
  });

  test("info/refs for a push is receive-pack's own advertisement", async () => {
    const r = await request('GET', '/v2/refs.git/info/refs?service=git-receive-pack', {});
    assert.equal(r.status, 200);
    const preamble = '001f# service=git-receive-pack\n0000';
    assert.equal(r.body.toString('latin1'), preamble + gitOnDisk(['--advertise-refs'], undefined, 'receive-pack').toString('latin1'));
    assert.match(r.body.toString('latin1'), /refs\/heads\/feature\0report-status/);
  });

  test('ls-refs over HTTP is byte for byte what git upload-pack answers, packed and loose', async () => {
    const bodies = [
      ['peel', 'symrefs', 'unborn', 'ref-prefix HEAD', 'ref-prefix refs/heads/', 'ref-prefix refs/tags/'],
      ['symrefs'],
      ['peel', 'ref-prefix refs/tags/'],
      [],
    ].map((args) => Buffer.concat([pktLine('command=ls-refs\n'), pktLine('agent=git/2.39.5\n'), pktLine('object-format=sha1\n'), Buffer.from('0001'), ...args.map((a) => pktLine(`${a}\n`)), Buffer.from('0000')]));
    for (const pack of [false, true]) {
      if (pack) gitOk(['pack-refs', '--all'], { cwd: repoDir(s.dataDir, repoId) });
      for (const body of bodies) {
        const r = await request('POST', '/v2/refs.git/git-upload-pack', { 'Git-Protocol': 'version=2', 'Content-Type': 'application/x-git-upload-pack-request' }, body);
        assert.equal(r.status, 200);
        assert.equal(r.body.toString('latin1'), gitOnDisk([], body).toString('latin1'));
      }
    }
  });

  test('the real git lists, clones and fetches with v2 and with v0', async () => {
    for (const v of ['2', '0']) {
      const expected = (await gitOk(['ls-remote', repoDir(s.dataDir, repoId)])).trim();
      assert.equal((await gitOk(['-c', `protocol.version=${v}`, 'ls-remote', url])).trim(), expected, `ls-remote v${v}`);
      assert.equal((await gitOk(['-c', `protocol.version=${v}`, 'ls-remote', '--symref', url, 'HEAD'])).trim().split('\n')[0], 'ref: refs/heads/main\tHEAD');
      const dest = tmpDir();
      await gitOk(['-c', `protocol.version=${v}`, 'clone', '-q', url, dest]);
      assert.equal((await gitOk(['rev-parse', 'HEAD'], { cwd: dest })).trim(), (await gitOk(['rev-parse', 'main'], { cwd: wc })).trim());
      assert.equal((await gitOk(['tag', '-l'], { cwd: dest })).trim(), 'light\nv1');
      // a new commit arrives with a fetch; then a no-op fetch
      await gitOk(['commit', '-q', '--allow-empty', '-m', `more ${v}`], { cwd: wc });
      await gitOk(['push', '-q', url, 'main'], { cwd: wc });
      await gitOk(['-c', `protocol.version=${v}`, 'fetch', '-q', 'origin'], { cwd: dest });
      assert.equal((await gitOk(['rev-parse', 'origin/main'], { cwd: dest })).trim(), (await gitOk(['rev-parse', 'main'], { cwd: wc })).trim());
      await gitOk(['-c', `protocol.version=${v}`, 'fetch', 'origin'], { cwd: dest });
    }
  });

  test('advertisements (v2, v0, push) and ls-refs need no process slot; v1 and fetches still do', async () => {
    // The one slot is held by an upload-pack whose request stops after its first bytes.
    const held = http.request(`${s.url}/v2/refs.git/git-upload-pack`, { method: 'POST', headers: { Authorization: basic(), 'Content-Type': 'application/x-git-upload-pack-request', 'Content-Length': '1000' } });
    held.on('error', () => undefined);
    held.write('0032want ');
    await new Promise((r) => setTimeout(r, 300));
    try {
      const v2 = await request('GET', '/v2/refs.git/info/refs?service=git-upload-pack', { 'Git-Protocol': 'version=2' });
      assert.equal(v2.status, 200);
      assert.match(v2.body.toString('latin1'), /^000eversion 2\n/);
      const v0 = await request('GET', '/v2/refs.git/info/refs?service=git-upload-pack', {});
      assert.equal(v0.status, 200);
      // a protocol the in-process answers do not speak (v1) needs git, and so a slot
      const v1 = await request('GET', '/v2/refs.git/info/refs?service=git-upload-pack', { 'Git-Protocol': 'version=1' });
      assert.equal(v1.status, 503);
      const push = await request('GET', '/v2/refs.git/info/refs?service=git-receive-pack', {});
      assert.equal(push.status, 200);
      // ls-refs is answered from disk without a slot; a fetch, which needs git, is refused
      const h = { 'Git-Protocol': 'version=2', 'Content-Type': 'application/x-git-upload-pack-request' };
      const lsBody = Buffer.concat([pktLine('command=ls-refs\n'), Buffer.from('0001'), pktLine('symrefs\n'), Buffer.from('0000')]);
      const lsRefs = await request('POST', '/v2/refs.git/git-upload-pack', h, lsBody);
      assert.equal(lsRefs.status, 200);
      assert.equal(lsRefs.body.toString('latin1'), gitOnDisk([], lsBody).toString('latin1'));
      const fetch = await request('POST', '/v2/refs.git/git-upload-pack', h, Buffer.concat([pktLine('command=fetch\n'), Buffer.from('0001'), pktLine('done\n'), Buffer.from('0000')]));
      assert.equal(fetch.status, 503);
      assert.match(fetch.body.toString(), /Too many git processes/);
    } finally {
      held.destroy();
    }
    // a reader that may not read the repository gets the same refusal as before, not the advertisement
    const anon = await new Promise<number>((resolve, reject) => {
      http.get(`${s.url}/v2/refs.git/info/refs?service=git-upload-pack`, { headers: { 'Git-Protocol': 'version=2' } }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      }).on('error', reject);
    });
    assert.equal(anon, 401);
  });
});
