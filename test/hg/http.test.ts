// Mercurial over HTTP with the real `hg` client: the permission matrix (anonymous public read, a
// reader cannot push, a writer and a group's member can, an explicit none overrides, private
// looks missing, a revoked API key stops), changesets, branches, bookmarks and tags both ways, a
// 5 MB binary round trip, get_repo_nodes at tip and at an older revision, and the webhook of an
// hg push.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { tmpDir } from '../helpers/git.ts';
import { api, startServer, type TestServer } from '../helpers/server.ts';

let s: TestServer;
const home = tmpDir('palisade-hg-home-');

/** Runs the real hg: no user configuration, never prompts. */
function hg(args: string[], cwd?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('hg', ['--config', 'ui.interactive=false', '--config', 'ui.username=Tester <t@example.com>', ...args], { cwd, env: { PATH: process.env.PATH, HOME: home, HGRCPATH: '', HGPLAIN: '1' }, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}
async function hgOk(args: string[], cwd?: string): Promise<string> {
  const r = await hg(args, cwd);
  assert.equal(r.code, 0, `hg ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function rpc(method: string, args: object, key = s.adminKey): Promise<any> {
  const r = (await (await fetch(`${s.url}/_admin/api`, { method: 'POST', body: JSON.stringify({ id: 1, api_key: key, method, args }) })).json()) as { result: unknown; error: string | null };
  assert.equal(r.error, null, `${method}: ${r.error}`);
  return r.result;
}

const url = (repo: string, user?: string, password?: string) => {
  const u = new URL(`${s.url}/${repo}`);
  if (user) {
    u.username = encodeURIComponent(user);
    u.password = encodeURIComponent(password ?? '');
  }
  return u.toString();
};

/** A working copy with one changeset. */
async function workingCopy(): Promise<string> {
  const dir = path.join(tmpDir(), 'wc');
  await hgOk(['init', dir]);
  fs.writeFileSync(path.join(dir, 'README'), 'hello\n');
  await hgOk(['commit', '-A', '-m', 'first'], dir);
  return dir;
}

const keys: Record<string, string> = {};

before(async () => {
  s = await startServer({ PALISADE_DEFAULT_REPO_TYPE: '', PALISADE_ALLOW_PRIVATE_URLS: '1' });
  await rpc('create_repo', { repo_name: 'legacy/app', owner_name: 'admin', private: true });
  await rpc('create_repo', { repo_name: 'legacy/open', owner_name: 'admin', private: false });
  for (const u of ['reader', 'writer', 'grouped', 'blocked', 'stranger']) keys[u] = (await rpc('create_user', { username: u, password: `pw-${u}`, email: `${u}@example.com` })).api_key;
  await rpc('grant_user_permission', { repo_name: 'legacy/app', username: 'reader', perm: 'repository.read' });
  await rpc('grant_user_permission', { repo_name: 'legacy/app', username: 'writer', perm: 'repository.write' });
  await rpc('create_users_group', { group_name: 'hgteam' });
  for (const u of ['grouped', 'blocked']) await rpc('add_user_to_users_group', { group_name: 'hgteam', username: u });
  await rpc('grant_users_group_permission', { repo_name: 'legacy/app', group_name: 'hgteam', perm: 'repository.write' });
  await rpc('grant_user_permission', { repo_name: 'legacy/app', username: 'blocked', perm: 'repository.none' });
  const wc = await workingCopy();
  await hgOk(['push', url('legacy/app', 'admin', s.adminKey)], wc);
  await hgOk(['push', url('legacy/open', 'admin', s.adminKey)], wc);
});
after(() => s.stop());

type Outcome = 'ok' | 'auth' | 'denied' | 'missing';
const outcome = (r: { code: number; stderr: string }): Outcome =>
  r.code === 0 ? 'ok' : /authorization (failed|required)/.test(r.stderr) ? 'auth' : /HTTP Error 403|authorization failed|push not authorized|Permission denied/i.test(r.stderr) ? 'denied' : /HTTP Error 404/.test(r.stderr) ? 'missing' : (`unexpected: ${r.stderr}` as Outcome);

describe('Mercurial over HTTP', () => {
  test('permission matrix: clone and push', async () => {
    const tryClone = async (repo: string, user?: string, pw?: string) => outcome(await hg(['clone', '-q', url(repo, user, pw), path.join(tmpDir(), 'c')]));
    const tryPush = async (user: string, pw: string) => {
      const wc = path.join(tmpDir(), 'p');
      await hgOk(['clone', '-q', url('legacy/app', 'admin', s.adminKey), wc]);
      fs.writeFileSync(path.join(wc, `f-${crypto.randomUUID()}`), 'x');
      await hgOk(['commit', '-A', '-m', 'change'], wc);
      return outcome(await hg(['push', url('legacy/app', user, pw)], wc));
    };
    const rows: [string, () => Promise<Outcome>, Outcome][] = [
      ['anonymous reads a public repository', () => tryClone('legacy/open'), 'ok'],
      ['anonymous on a private one: asked for credentials', () => tryClone('legacy/app'), 'auth'],
      ['reader clones (password)', () => tryClone('legacy/app', 'reader', 'pw-reader'), 'ok'],
      ['reader clones (API key)', () => tryClone('legacy/app', 'reader', keys.reader!), 'ok'],
      ['reader cannot push', () => tryPush('reader', 'pw-reader'), 'denied'],
      ['writer pushes', () => tryPush('writer', 'pw-writer'), 'ok'],
      ['a group member pushes', () => tryPush('grouped', 'pw-grouped'), 'ok'],
      ['explicit none overrides the group', () => tryClone('legacy/app', 'blocked', 'pw-blocked'), 'missing'],
      ['a stranger sees a private repository as missing', () => tryClone('legacy/app', 'stranger', 'pw-stranger'), 'missing'],
      ['a wrong password', () => tryClone('legacy/app', 'writer', 'nope'), 'auth'],
    ];
    for (const [name, run, want] of rows) assert.equal(await run(), want, name);
    // a public repository: hg sends the whole bundle anonymously first, and retries with its
    // credentials only once it has read the 401, which it can (the refused body is drained)
    const pub = path.join(tmpDir(), 'pub');
    await hgOk(['clone', '-q', url('legacy/open'), pub]);
    fs.writeFileSync(path.join(pub, 'big.bin'), crypto.randomBytes(2 * 1024 * 1024));
    await hgOk(['commit', '-A', '-m', 'to a public repository'], pub);
    assert.equal(outcome(await hg(['push', url('legacy/open', 'writer', 'pw-writer')], pub)), 'denied', 'writer has no grant on legacy/open');
    assert.equal(outcome(await hg(['push', url('legacy/open', 'admin', s.adminKey)], pub)), 'ok', 'the owner pushes after the anonymous attempt');
    // a revoked API key stops at once
    const old = keys.writer!;
    assert.equal(await tryClone('legacy/app', 'writer', old), 'ok');
    await s.cli('user', 'rotate-key', 'writer');
    assert.equal(await tryClone('legacy/app', 'writer', old), 'auth', 'the rotated-away key is refused');
  });

  test('create_repo with an hg clone_uri, then pull: from this server (read as the caller) and from another hg server (through the pinned relay)', async () => {
    // from this server: another hg repository by its URL
    await rpc('create_repo', { repo_name: 'mirror/self', owner_name: 'admin', clone_uri: `${s.url}/legacy/app` });
    const count = async (repo: string) => {
      const wc = path.join(tmpDir(), 'count');
      await hgOk(['clone', '-q', '-U', url(repo, 'admin', s.adminKey), wc]);
      return Number((await hgOk(['log', '-r', 'tip', '-T', '{rev}'], wc)).trim()) + 1;
    };
    assert.equal(await count('mirror/self'), await count('legacy/app'));
    // from another server: Mercurial's own hg serve on loopback (allowed here by the switch)
    const upstream = path.join(tmpDir(), 'upstream');
    await hgOk(['init', upstream]);
    fs.writeFileSync(path.join(upstream, 'one.txt'), '1');
    await hgOk(['commit', '-A', '-m', 'one'], upstream);
    const port = 20000 + Math.floor(Math.random() * 20000);
    const serve = spawn('hg', ['serve', '-R', upstream, '-a', '127.0.0.1', '-p', String(port)], { env: { PATH: process.env.PATH, HOME: home, HGRCPATH: '' }, stdio: 'ignore' });
    try {
      for (let i = 0; i < 50; i++) if (await fetch(`http://127.0.0.1:${port}/?cmd=capabilities`).then(() => true, () => false)) break; else await new Promise((r) => setTimeout(r, 100));
      await rpc('create_repo', { repo_name: 'mirror/remote', owner_name: 'admin', clone_uri: `http://127.0.0.1:${port}/` });
      assert.equal(await count('mirror/remote'), 1);
      fs.writeFileSync(path.join(upstream, 'two.txt'), '2');
      await hgOk(['commit', '-A', '-m', 'two'], upstream);
      assert.equal(await rpc('pull', { repo_name: 'mirror/remote' }), 'Pulled from mirror/remote');
      assert.equal(await count('mirror/remote'), 2, 'pull brought the new changeset');
    } finally {
      serve.kill();
    }
  });

  test('changesets, branches, bookmarks, tags and a 5 MB binary travel both ways; webhooks see the push', async () => {
    const got: { branch: string; commit: string }[] = [];
    const receiver = http.createServer((req, res) => {
      let b = '';
      req.on('data', (d) => (b += d));
      req.on('end', () => {
        got.push(JSON.parse(b));
        res.end('ok');
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    try {
      const id = (await rpc('get_repo', { repo_name: 'legacy/app' })).id as string;
      const hook = await api(s, 'POST', `/git/v1/repo/${id}/trigger`, { key: s.adminKey, body: { trigger: { event: 'push' }, action: { action: 'webhook', endpoint: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/` } } });
      assert.equal(hook.status, 200, JSON.stringify(hook.body));
      const wc = path.join(tmpDir(), 'rich');
      await hgOk(['clone', '-q', url('legacy/app', 'writer', 'pw-writer'), wc]);
      const blob = crypto.randomBytes(5 * 1024 * 1024);
      fs.writeFileSync(path.join(wc, 'big.bin'), blob);
      await hgOk(['commit', '-A', '-m', 'big binary'], wc);
      await hgOk(['branch', 'stable'], wc);
      fs.writeFileSync(path.join(wc, 'stable.txt'), 'stable');
      await hgOk(['commit', '-A', '-m', 'on stable'], wc);
      await hgOk(['bookmark', 'feature-x'], wc);
      await hgOk(['tag', 'v1.0'], wc);
      await hgOk(['push', '--new-branch', '-B', 'feature-x', url('legacy/app', 'writer', 'pw-writer')], wc);
      const tipId = (await hgOk(['log', '-r', 'tip', '-T', '{node}'], wc)).trim();
      for (let i = 0; i < 100 && got.length < 2; i++) await new Promise((r) => setTimeout(r, 100));
      const events = got.map((g) => `${g.branch}@${g.commit}`).sort();
      assert.ok(events.includes(`stable@${tipId}`), `the new head of branch stable: ${events.join(', ')}`);
      assert.ok(got.some((g) => g.branch === 'feature-x'), `the bookmark feature-x: ${events.join(', ')}`);

      const back = path.join(tmpDir(), 'back');
      await hgOk(['clone', '-q', '-U', url('legacy/app', 'reader', 'pw-reader'), back]);
      assert.match(await hgOk(['branches'], back), /^stable\s/m);
      assert.match(await hgOk(['bookmarks'], back), /feature-x/);
      assert.match(await hgOk(['tags'], back), /^v1\.0\s/m);
      await hgOk(['update', '-q', 'default'], back);
      assert.ok(fs.readFileSync(path.join(back, 'big.bin')).equals(blob), 'the 5 MB binary came back as it went');
      assert.equal((await hg(['verify', '-q'], back)).code, 0, 'hg verify passes on the clone');

      // get_repo_nodes at tip and at the first changeset
      const tip = (await rpc('get_repo_nodes', { repo_name: 'legacy/app', revision: 'tip', root_path: '/', ret_type: 'files' })) as { name: string }[];
      assert.ok(tip.some((n) => n.name === 'stable.txt') && tip.some((n) => n.name === '.hgtags'));
      const first = (await rpc('get_repo_nodes', { repo_name: 'legacy/app', revision: '0', root_path: '/', ret_type: 'all' })) as { name: string }[];
      assert.deepEqual(first.map((n) => n.name), ['README']);
      const byBookmark = (await rpc('get_repo_nodes', { repo_name: 'legacy/app', revision: 'feature-x', root_path: '', ret_type: 'files' })) as { name: string }[];
      assert.ok(byBookmark.some((n) => n.name === 'stable.txt'));
    } finally {
      receiver.close();
    }
  });
});
