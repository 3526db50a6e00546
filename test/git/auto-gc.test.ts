// receive-pack runs with receive.autogc=false (its gc held the pusher's response); Palisade asks
// for `git gc --auto` once the push is answered (src/services/auto-gc.ts). The repository must
// still be consolidated: with a low gc.autoPackLimit, three pushes that each leave a pack end up as
// one pack, over smart HTTP and without anyone else asking, and only after the third push was
// answered (with receive-pack's own gc it would already be one when the push returns).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { repoDir } from '../../src/git/repo-path.ts';
import { gitOk, makeWorkTree, repoUrl } from '../helpers/git.ts';
import { api, startServer, type TestServer } from '../helpers/server.ts';

let s: TestServer;
before(async () => {
  s = await startServer();
});
after(() => s.stop());

const packs = (dir: string) => fs.readdirSync(path.join(dir, 'objects', 'pack')).filter((f) => f.endsWith('.pack')).length;

test('pushes are gc-ed after they are answered: packs beyond gc.autoPackLimit are consolidated', async () => {
  const repoId = (await api(s, 'POST', '/git/v1/repo', { key: s.adminKey, body: {} })).body.repoId as string;
  const dir = repoDir(s.dataDir, repoId);
  // every push keeps its pack; gc --auto repacks once there are more than two
  await gitOk(['config', 'receive.unpackLimit', '1'], { cwd: dir });
  await gitOk(['config', 'gc.autoPackLimit', '2'], { cwd: dir });
  // in the foreground: a gc receive-pack ran itself would be over before the push is answered
  await gitOk(['config', 'gc.autoDetach', 'false'], { cwd: dir });
  await gitOk(['config', 'maintenance.autoDetach', 'false'], { cwd: dir });
  const wc = await makeWorkTree(1);
  const url = repoUrl(s.url, repoId, 'x-access-token', s.adminKey);
  let most = 0;
  for (let i = 0; i < 3; i++) {
    fs.writeFileSync(path.join(wc, `f${i}.txt`), `push ${i}\n`);
    await gitOk(['add', '.'], { cwd: wc });
    await gitOk(['commit', '-qm', `push ${i}`], { cwd: wc });
    await gitOk(['push', '-q', url, 'HEAD:refs/heads/main'], { cwd: wc });
    most = Math.max(most, packs(dir));
  }
  // receive-pack's own gc would have repacked before the third push was answered (three packs
  // are over the limit); Palisade's runs 2 s after the answer, so the pusher saw three
  assert.equal(most, 3, 'the push was answered before any gc');
  const end = Date.now() + 20_000;
  while (packs(dir) > 1 && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
  assert.equal(packs(dir), 1, `one pack after gc (at most ${most} seen between pushes)`);
  // nothing lost: the last push's commit is the branch's
  const head = (await gitOk(['rev-parse', 'HEAD'], { cwd: wc })).trim();
  assert.equal((await gitOk(['--git-dir', dir, 'rev-parse', 'refs/heads/main'])).trim(), head);
  assert.equal((await gitOk(['--git-dir', dir, 'fsck', '--connectivity-only'])).trim(), '');
});

test('AutoGc: a burst is one run, a request during a run is one more after it, at most two at once, a claim held elsewhere is asked again once', async () => {
  const { AutoGc } = await import('../../src/services/auto-gc.ts');
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const runs: string[] = [];
  let running = 0;
  let most = 0;
  let release: (() => void)[] = [];
  const gc = (dir: string) => {
    runs.push(dir);
    most = Math.max(most, ++running);
    return new Promise<void>((r) => release.push(() => (running--, r())));
  };
  const auto = new AutoGc(gc, undefined, 2, 20);
  for (let i = 0; i < 5; i++) auto.request('a', '/a');
  await sleep(60);
  assert.deepEqual(runs, ['/a'], 'five requests in one burst: one run');
  auto.request('a', '/a'); // asked again while it runs
  auto.request('b', '/b');
  auto.request('c', '/c');
  await sleep(60);
  assert.deepEqual(runs, ['/a', '/b'], 'two at once: c waits, a waits for its own run to end');
  for (const r of release.splice(0)) r();
  await sleep(20);
  assert.deepEqual(runs.slice(2).sort(), ['/a', '/c'], 'then a once more, and c');
  assert.equal(most, 2);
  for (const r of release.splice(0)) r();
  // another node holds the repository's claim: asked once more, 15 delays later, and no more
  let claims = 0;
  const held = new AutoGc(async () => undefined, { runOnce: async () => (claims++, false) } as never, 2, 10);
  held.request('d', '/d');
  await sleep(60);
  assert.equal(claims, 1);
  await sleep(250);
  assert.equal(claims, 2, 'asked again after 150 ms');
  await sleep(300);
  assert.equal(claims, 2, 'and only once');
});
