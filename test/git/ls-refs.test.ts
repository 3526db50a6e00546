// Protocol v2 ls-refs answered in process must be byte for byte what `git upload-pack` sends:
// every layout below is built with the real git, and each answer is compared with git's own
// for the same request, over many combinations of peel, symrefs, unborn and ref-prefix.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { CatFilePool } from '../../src/git/cat-file.ts';
import { type LsRefsArgs, lsRefs, MAX_LOOSE_REFS, MAX_PACKED_REFS_BYTES, parseLsRefsRequest, readUploadConfig } from '../../src/git/ls-refs.ts';
import { ReceiveAdvertisement, receiveHideRefs } from '../../src/git/receive-advertisement.ts';
import { pktLine } from '../../src/git/smart-http.ts';
import { UploadV0Advertisement } from '../../src/git/upload-v0-advertisement.ts';
import { SKELETON_CONFIG } from '../../src/git/skeleton.ts';

const home = fs.mkdtempSync(path.join(os.tmpdir(), 'palisade-lsrefs-home-'));
const env = {
  PATH: process.env.PATH,
  HOME: home,
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
  LC_ALL: 'C',
  GIT_AUTHOR_NAME: 'A',
  GIT_AUTHOR_EMAIL: 'a@example.com',
  GIT_COMMITTER_NAME: 'C',
  GIT_COMMITTER_EMAIL: 'c@example.com',
};
const pool = new CatFilePool({ home });
const receive = new ReceiveAdvertisement({ home });
const uploadV0 = new UploadV0Advertisement({ home });
/** How many layouts had their v0 upload-pack advertisement written in process (the rest: HEAD unborn or detached). */
let v0InProcess = 0;
after(() => pool.close());

function git(args: string[], cwd?: string, input?: Buffer | string, extraEnv: Record<string, string> = {}): Buffer {
  const r = spawnSync('git', args, { cwd, input, env: { ...env, ...extraEnv }, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}
const gitS = (args: string[], cwd?: string) => git(args, cwd).toString().trim();

function request(args: LsRefsArgs, caps = ['agent=git/2.39.5', 'object-format=sha1']): Buffer {
  const lines = [pktLine('command=ls-refs\n'), ...caps.map((c) => pktLine(`${c}\n`)), Buffer.from('0001')];
  if (args.peel) lines.push(pktLine('peel\n'));
  if (args.symrefs) lines.push(pktLine('symrefs\n'));
  if (args.unborn) lines.push(pktLine('unborn\n'));
  for (const p of args.prefixes) lines.push(pktLine(`ref-prefix ${p}\n`));
  lines.push(Buffer.from('0000'));
  return Buffer.concat(lines);
}

/** What git itself answers to `body` on `dir`. */
const gitAnswer = (dir: string, body: Buffer) => git(['upload-pack', '--stateless-rpc', dir], undefined, body, { GIT_PROTOCOL: 'version=2' });

/** A bare repository and a work tree pushing into it; `skeleton` gives it Palisade's config. */
function makeRepo(skeleton = true): { bare: string; wc: string } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'palisade-lsrefs-'));
  const bare = path.join(root, 'r.git');
  const wc = path.join(root, 'wc');
  git(['init', '-q', '--bare', '-b', 'main', bare]);
  if (skeleton) fs.writeFileSync(path.join(bare, 'config'), SKELETON_CONFIG);
  git(['init', '-q', '-b', 'main', wc]);
  return { bare, wc };
}
function commit(wc: string, msg: string): string {
  fs.writeFileSync(path.join(wc, 'f.txt'), `${msg} ${crypto.randomUUID()}\n`);
  git(['add', 'f.txt'], wc);
  git(['commit', '-q', '-m', msg], wc);
  return gitS(['rev-parse', 'HEAD'], wc);
}

const FLAGS: Omit<LsRefsArgs, 'prefixes'>[] = [];
for (const peel of [false, true]) for (const symrefs of [false, true]) for (const unborn of [false, true]) FLAGS.push({ peel, symrefs, unborn });
const PREFIXES: string[][] = [
  [],
  ['HEAD'],
  ['refs/heads/'],
  ['refs/tags/'],
  ['HEAD', 'refs/heads/', 'refs/tags/'],
  ['refs/heads/ma', 'refs/heads/m', 'refs/heads/main'],
  ['refs/tags/v', 'refs/heads/x'],
  ['refs/nothing/'],
  ['refs/heads/main'],
  [''],
  ['refs/palisade-sync'],
  Array.from({ length: 70 }, (_, i) => `refs/heads/p${i}`),
];

/** Compares every combination on `dir`; returns how many were answered in process (the rest fell back). */
async function compareAll(dir: string): Promise<number> {
  // receive-pack's v0 advertisement (a push's first request) from the same refs
  await receive.ready();
  const adv = receive.get(dir);
  assert.ok(adv, 'the receive-pack advertisement is written in process');
  assert.equal(adv.toString('latin1'), git(['receive-pack', '--advertise-refs', '--stateless-rpc', dir]).toString('latin1'), `receive-pack advertisement of ${dir}`);
  const cfg = readUploadConfig(dir);
  assert.ok(cfg, 'the config is one the in-process path reads');
  // upload-pack's v0 advertisement, where HEAD is a branch that exists
  await uploadV0.ready();
  const v0 = await uploadV0.get(dir, cfg, pool);
  if (v0) {
    v0InProcess++;
    assert.equal(v0.toString('latin1'), git(['upload-pack', '--advertise-refs', '--stateless-rpc', dir]).toString('latin1'), `upload-pack v0 advertisement of ${dir}`);
  }
  let inProcess = 0;
  for (const flags of FLAGS)
    for (const prefixes of PREFIXES) {
      const args = { ...flags, prefixes };
      const body = request(args);
      assert.deepEqual(parseLsRefsRequest(body), args);
      const ours = await lsRefs(dir, cfg, pool, args);
      if (!ours) continue;
      inProcess++;
      const theirs = gitAnswer(dir, body);
      assert.equal(ours.toString('latin1'), theirs.toString('latin1'), `${JSON.stringify(args)} on ${dir}`);
    }
  return inProcess;
}
const COMBINATIONS = FLAGS.length * PREFIXES.length;

/** Branches, lightweight and annotated tags, a tag of a tag, tags of a tree and of a blob, symrefs. */
function populate(wc: string, bare: string): void {
  const c1 = commit(wc, 'one');
  git(['tag', 'light'], wc);
  git(['tag', '-a', '-m', 'annotated', 'v1.0'], wc);
  git(['tag', '-a', '-m', 'tag of a tag', 'v1.0-outer', 'v1.0'], wc);
  git(['tag', '-a', '-m', 'of a tree', 'tree-tag', 'HEAD^{tree}'], wc);
  git(['tag', '-a', '-m', 'of a blob', 'blob-tag', 'HEAD:f.txt'], wc);
  commit(wc, 'two');
  git(['branch', 'feature', c1], wc);
  git(['branch', 'x/y/z'], wc);
  git(['branch', 'a-b'], wc);
  git(['branch', 'a.b'], wc);
  git(['branch', 'ünïcödé'], wc);
  git(['branch', '@foo'], wc);
  git(['branch', 'weird#%!$=+,;'], wc);
  git(['push', '-q', bare, '--all'], wc);
  git(['push', '-q', bare, '--tags'], wc);
  git(['symbolic-ref', 'refs/heads/alias', 'refs/heads/feature'], bare);
  git(['symbolic-ref', 'refs/remotes/origin/HEAD', 'refs/heads/main'], bare);
  git(['symbolic-ref', 'refs/heads/chain', 'refs/heads/alias'], bare);
  git(['symbolic-ref', 'refs/heads/dangling', 'refs/heads/nowhere'], bare);
  git(['update-ref', 'refs/palisade-sync/main', 'refs/heads/main'], bare);
  git(['update-ref', 'refs/palisade-syncx/y', 'refs/heads/main'], bare);
}

describe('ls-refs in process, compared with git upload-pack', () => {
  after(() => assert.ok(v0InProcess >= 6, `v0 advertisements written in process: ${v0InProcess}`));

  test('an empty repository (HEAD unborn)', async () => {
    const { bare } = makeRepo();
    assert.equal(await compareAll(bare), COMBINATIONS);
  });

  test('loose refs only: branches, tags, tags of tags, symrefs, hidden refs, odd names', async () => {
    const { bare, wc } = makeRepo();
    populate(wc, bare);
    assert.ok(!fs.existsSync(path.join(bare, 'packed-refs')));
    assert.equal(await compareAll(bare), COMBINATIONS);
  });

  test('packed refs only, then loose refs over packed ones and a deleted packed ref', async () => {
    const { bare, wc } = makeRepo();
    populate(wc, bare);
    git(['pack-refs', '--all'], bare);
    assert.ok(fs.existsSync(path.join(bare, 'packed-refs')));
    assert.ok(!fs.existsSync(path.join(bare, 'refs', 'tags', 'v1.0')));
    assert.equal(await compareAll(bare), COMBINATIONS);
    // the same refs loose and packed, with other values; a packed tag moved to a lightweight one
    const c3 = commit(wc, 'three');
    git(['push', '-q', '-f', bare, `${c3}:refs/heads/feature`, `${c3}:refs/tags/v1.0-outer`], wc);
    git(['tag', '-a', '-f', '-m', 'moved', 'v1.0', c3], wc);
    git(['push', '-q', '-f', bare, 'refs/tags/v1.0'], wc);
    git(['update-ref', '-d', 'refs/heads/a-b'], bare);
    assert.ok(fs.existsSync(path.join(bare, 'refs', 'heads', 'feature')));
    assert.equal(await compareAll(bare), COMBINATIONS);
  });

  test('HEAD detached, HEAD at a missing branch, HEAD through a chain of symrefs', async () => {
    const { bare, wc } = makeRepo();
    populate(wc, bare);
    const oid = gitS(['rev-parse', 'refs/tags/v1.0'], bare);
    fs.writeFileSync(path.join(bare, 'HEAD'), `${oid}\n`); // detached at an annotated tag: peeled too
    assert.equal(await compareAll(bare), COMBINATIONS);
    fs.writeFileSync(path.join(bare, 'HEAD'), 'ref: refs/heads/unborn-branch\n');
    assert.equal(await compareAll(bare), COMBINATIONS);
    fs.writeFileSync(path.join(bare, 'HEAD'), 'ref: refs/heads/chain\n');
    assert.equal(await compareAll(bare), COMBINATIONS);
    fs.writeFileSync(path.join(bare, 'HEAD'), 'ref: refs/heads/dangling\n');
    assert.equal(await compareAll(bare), COMBINATIONS);
  });

  test('refs whose object is missing (loose, packed, HEAD) are treated as git treats them', async () => {
    const { bare, wc } = makeRepo();
    populate(wc, bare);
    const missing = 'deadbeef'.repeat(5);
    git(['pack-refs', '--all'], bare);
    fs.appendFileSync(path.join(bare, 'packed-refs'), `${missing} refs/zz/packed-broken\n`);
    fs.mkdirSync(path.join(bare, 'refs', 'heads', 'broken'), { recursive: true });
    fs.writeFileSync(path.join(bare, 'refs', 'heads', 'broken', 'loose'), `${missing}\n`);
    git(['symbolic-ref', 'refs/heads/to-broken', 'refs/heads/broken/loose'], bare);
    assert.equal(await compareAll(bare), COMBINATIONS);
    fs.writeFileSync(path.join(bare, 'HEAD'), `${missing}\n`);
    assert.equal(await compareAll(bare), COMBINATIONS);
  });

  test('many refs, half packed, and a repository without Palisade config (no hidden refs)', async () => {
    const { bare, wc } = makeRepo(false);
    const c = commit(wc, 'base');
    const input = Array.from({ length: 600 }, (_, i) => `create refs/heads/b${String(i).padStart(4, '0')} ${c}\n`).join('');
    git(['push', '-q', bare, 'main'], wc);
    git(['update-ref', '--stdin'], bare, input);
    git(['pack-refs', '--all'], bare);
    git(['update-ref', '--stdin'], bare, Array.from({ length: 300 }, (_, i) => `create refs/tags/t${i} ${c}\n`).join(''));
    git(['update-ref', 'refs/palisade-sync/x', c], bare);
    assert.equal(await compareAll(bare), COMBINATIONS);
  });

  test('what it is not sure of goes to git: unknown config, old packed-refs, symlinks, odd requests', async () => {
    const { bare, wc } = makeRepo();
    populate(wc, bare);
    const args = { peel: true, symrefs: true, unborn: true, prefixes: [] };
    assert.ok(await lsRefs(bare, readUploadConfig(bare)!, pool, args));
    // config keys that change the answer or the advertisement
    for (const extra of ['[lsrefs]\n\tunborn = ignore\n', '[extensions]\n\tobjectFormat = sha1\n', '[include]\n\tpath = x\n', '[uploadpack "x"]\n\ty = 1\n', '[core]\n\trepositoryformatversion = 1\n', '[transfer]\n\thideRefs = "refs/heads"\n']) {
      fs.writeFileSync(path.join(bare, 'config'), SKELETON_CONFIG + extra);
      assert.equal(readUploadConfig(bare), undefined, extra);
    }
    fs.writeFileSync(path.join(bare, 'config'), `${SKELETON_CONFIG}[transfer]\n\thideRefs = refs/tags/\n\thideRefs = !refs/tags/v1.0\n`);
    const hidden = readUploadConfig(bare)!;
    assert.deepEqual(hidden.hideRefs, ['refs/palisade-sync', 'refs/tags', '!refs/tags/v1.0']);
    assert.equal(await compareAll(bare), COMBINATIONS);
    // receive-pack: its own config keys decide
    assert.deepEqual(receiveHideRefs(`${SKELETON_CONFIG}[transfer]\n\thideRefs = refs/x\n`), ['refs/palisade-sync', 'refs/x']);
    assert.equal(receiveHideRefs(`${SKELETON_CONFIG}[receive]\n\tadvertiseAtomic = false\n`), undefined);
    assert.equal(receiveHideRefs(`${SKELETON_CONFIG}[transfer]\n\tadvertiseSID = true\n`), undefined);
    fs.writeFileSync(path.join(bare, 'shallow'), `${gitS(['rev-parse', 'main'], bare)}\n`);
    assert.equal(receive.get(bare), undefined);
    fs.rmSync(path.join(bare, 'shallow'));
    // a packed-refs without the fully-peeled trait, a symlinked ref, an unparseable ref file
    git(['pack-refs', '--all'], bare);
    const packed = fs.readFileSync(path.join(bare, 'packed-refs'), 'utf8');
    fs.writeFileSync(path.join(bare, 'packed-refs'), packed.replace(' fully-peeled', ''));
    assert.equal(await lsRefs(bare, hidden, pool, args), undefined);
    fs.writeFileSync(path.join(bare, 'packed-refs'), packed);
    fs.symlinkSync('main', path.join(bare, 'refs', 'heads', 'link'));
    assert.equal(await lsRefs(bare, hidden, pool, args), undefined);
    fs.rmSync(path.join(bare, 'refs', 'heads', 'link'));
    fs.writeFileSync(path.join(bare, 'refs', 'heads', 'garbage'), 'not a ref\n');
    assert.equal(await lsRefs(bare, hidden, pool, args), undefined);
    // requests: another command, an unknown argument or capability, trailing bytes, a bad length
    const ok = request(args);
    assert.ok(parseLsRefsRequest(ok));
    assert.equal(parseLsRefsRequest(Buffer.concat([ok, Buffer.from('0000')])), undefined);
    assert.equal(parseLsRefsRequest(Buffer.from(ok.toString('latin1').replace('0009peel\n', '0009PEEL\n'), 'latin1')), undefined);
    assert.equal(parseLsRefsRequest(request(args, ['session-id=1'])), undefined);
    assert.equal(parseLsRefsRequest(request(args, ['object-format=sha256'])), undefined);
    assert.equal(parseLsRefsRequest(Buffer.concat([pktLine('command=fetch\n'), Buffer.from('0001'), Buffer.from('0000')])), undefined);
    assert.equal(parseLsRefsRequest(Buffer.concat([pktLine('command=ls-refs\n'), pktLine('command=ls-refs\n'), Buffer.from('0000')])), undefined);
    assert.equal(parseLsRefsRequest(Buffer.from('0014command=ls-refs\n00')), undefined);
    assert.equal(parseLsRefsRequest(Buffer.from('0003')), undefined);
    // no arguments at all (a flush straight after the capabilities) is a request git answers
    const bare2 = Buffer.concat([pktLine('command=ls-refs\n'), Buffer.from('0000')]);
    assert.deepEqual(parseLsRefsRequest(bare2), { peel: false, symrefs: false, unborn: false, prefixes: [] });
    fs.rmSync(path.join(bare, 'refs', 'heads', 'garbage'));
    assert.equal((await lsRefs(bare, hidden, pool, parseLsRefsRequest(bare2)!))!.toString('latin1'), gitAnswer(bare, bare2).toString('latin1'));
    assert.ok(await lsRefs(bare, hidden, pool, args));
    // a large ref set is git's (a process under the slot bounds), not the event loop's:
    // more loose refs than MAX_LOOSE_REFS, or a packed-refs over MAX_PACKED_REFS_BYTES
    const main = gitS(['rev-parse', 'main'], bare);
    git(['update-ref', '--stdin'], bare, Array.from({ length: MAX_LOOSE_REFS + 1 }, (_, i) => `create refs/heads/many/l${i} ${main}\n`).join(''));
    assert.equal(await lsRefs(bare, hidden, pool, args), undefined, 'too many loose refs');
    assert.equal(await uploadV0.get(bare, hidden, pool), undefined, 'the v0 advertisement too');
    assert.equal(receive.get(bare), undefined, "and receive-pack's");
    git(['pack-refs', '--all'], bare);
    assert.ok(fs.statSync(path.join(bare, 'packed-refs')).size < MAX_PACKED_REFS_BYTES);
    assert.ok(await lsRefs(bare, hidden, pool, args), 'packed, the same refs are read in process');
    git(['update-ref', '--stdin'], bare, Array.from({ length: 20_000 }, (_, i) => `create refs/heads/more/p${i} ${main}\n`).join(''));
    git(['pack-refs', '--all'], bare);
    assert.ok(fs.statSync(path.join(bare, 'packed-refs')).size > MAX_PACKED_REFS_BYTES);
    assert.equal(await lsRefs(bare, hidden, pool, args), undefined, 'packed-refs too large');
    assert.equal(receive.get(bare), undefined);
  });
});
