// Mercurial over SSH with the real hg and OpenSSH clients: `hg -R <repo> serve --stdio` after the
// decision, with the same keys and token passwords as git over SSH. A reader clones and its push
// is turned away by hg itself (nothing written); a writer pushes; a stranger finds nothing; any
// other command, and any other form of hg's, is refused with one line.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { tmpDir } from '../helpers/git.ts';
import { startServer, type TestServer } from '../helpers/server.ts';
import { SshClient } from '../helpers/ssh.ts';

let s: TestServer;
let c: SshClient;
const home = tmpDir('palisade-hg-ssh-home-');

async function rpc(method: string, args: object): Promise<any> {
  const r = (await (await fetch(`${s.url}/_admin/api`, { method: 'POST', body: JSON.stringify({ id: 1, api_key: s.adminKey, method, args }) })).json()) as { result: unknown; error: string | null };
  assert.equal(r.error, null, `${method}: ${r.error}`);
  return r.result;
}

/** hg with `-e` set to this test's OpenSSH client and the given authentication. */
function hg(args: string[], auth: Parameters<SshClient['options']>[0], cwd?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const o = c.options(auth);
  const sshCmd = `ssh ${o.args.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ')}`;
  return new Promise((resolve) => {
    execFile('hg', ['--config', 'ui.interactive=false', '--config', 'ui.username=T <t@example.com>', '--config', `ui.ssh=${sshCmd}`, ...args], { cwd, env: { PATH: process.env.PATH, HOME: home, HGRCPATH: '', HGPLAIN: '1', ...o.env }, maxBuffer: 64 << 20 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout: String(stdout), stderr: String(stderr) }),
    );
  });
}
const url = (login: string, repo: string) => `ssh://${login}@127.0.0.1:${s.sshPort}/${repo}`;

before(async () => {
  s = await startServer({ PALISADE_SSH_PORT: '0', PALISADE_DEFAULT_REPO_TYPE: '' });
  c = new SshClient(s);
  await rpc('create_repo', { repo_name: 'legacy/ssh', owner_name: 'admin', private: true });
  for (const u of ['reader', 'writer', 'stranger']) await rpc('create_user', { username: u, password: `pw-${u}`, email: `${u}@example.com` });
  await rpc('grant_user_permission', { repo_name: 'legacy/ssh', username: 'reader', perm: 'repository.read' });
  await rpc('grant_user_permission', { repo_name: 'legacy/ssh', username: 'writer', perm: 'repository.write' });
});
after(() => s.stop());

describe('Mercurial over SSH', () => {
  test('a writer pushes (key and password), a reader clones but cannot push, a stranger finds nothing', async () => {
    const wc = path.join(tmpDir(), 'wc');
    assert.equal((await hg(['init', wc], { none: true })).code, 0);
    fs.writeFileSync(path.join(wc, 'a.txt'), 'one');
    assert.equal((await hg(['commit', '-A', '-m', 'one'], { none: true }, wc)).code, 0);
    const key = c.keygen('writer-hg');
    // the writer's key, registered by an admin over JSON-RPC
    await rpc('add_user_ssh_key', { username: 'writer', public_key: key.pub });
    const push = await hg(['push', url('git', 'legacy/ssh')], { key: key.file }, wc);
    assert.equal(push.code, 0, push.stderr);

    const clone = path.join(tmpDir(), 'clone');
    const r = await hg(['clone', url('reader', 'legacy/ssh'), clone], { password: 'pw-reader' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fs.readFileSync(path.join(clone, 'a.txt'), 'utf8'), 'one');
    fs.writeFileSync(path.join(clone, 'b.txt'), 'two');
    await hg(['commit', '-A', '-m', 'two'], { none: true }, clone);
    const denied = await hg(['push', url('reader', 'legacy/ssh')], { password: 'pw-reader' }, clone);
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /hook.*(failed|exited)|abort/i);
    const check = path.join(tmpDir(), 'check');
    await hg(['clone', '-U', url('writer', 'legacy/ssh'), check], { password: 'pw-writer' });
    const log = await hg(['log', '-T', '{desc}\n'], { none: true }, check);
    assert.equal(log.stdout.trim(), 'one', "the reader's changeset was not written");

    const stranger = await hg(['clone', url('stranger', 'legacy/ssh'), path.join(tmpDir(), 's')], { password: 'pw-stranger' });
    assert.notEqual(stranger.code, 0);
    assert.match(stranger.stderr, /Repository not found/);
  });

  test('anything but `hg -R <repo> serve --stdio` is refused with one line', async () => {
    for (const cmd of ['hg -R legacy/ssh serve --stdio --debugger', 'hg -R legacy/ssh log', 'hg serve --stdio', "hg -R 'legacy/ssh' serve --stdio; id"]) {
      const r = await c.ssh('writer', { password: 'pw-writer' }, cmd);
      assert.equal(r.code, 1, cmd);
      assert.match(r.stderr, /^ERROR: /, cmd);
    }
  });
});
