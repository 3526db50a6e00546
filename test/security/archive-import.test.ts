// Archive import regressions. Tar/zip imports (`POST /git/v1/repo` with import.type tar|zip) used
// to download to a temp folder, run `tar -x` / `unzip` and walk the result: a symlink `sub -> /etc`
// (or `-> the data folder`) imported with `dir: "sub"` imported what it pointed at (/etc/shadow,
// palisade.sqlite, the webhook signing key, other accounts' packs); a 1 MB zip expanded to 1 GB
// on disk and 2.4 GB of server memory; errors echoed server paths and command lines. Archives are
// now parsed as streams in process and become git objects directly; these tests are the attacks.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import * as tar from 'tar';
import { git, gitOk, tmpDir } from '../helpers/git.ts';
import { api, startServer, type TestServer } from '../helpers/server.ts';

const execFileP = promisify(execFile);
const MiB = 1024 * 1024;
/** The main server: default limits except a single entry may be large, so bombs reach the streaming checks. */
let s: TestServer;
/** Tight limits, for the entry-count, entry-size and total checks. */
let tight: TestServer;
let files: http.Server;
let base: string;
const served = new Map<string, Buffer>();
const work = tmpDir('palisade-archive-attack-');

/** Bombs: 300 MiB of zeros (a sparse file, so nothing that large is written), zipped and tar.gz'd. */
const BOMB_BYTES = 300 * MiB;
let bombZip: Buffer;
let bombTgz: Buffer;

async function buildBombs(): Promise<void> {
  const zeros = path.join(work, 'zeros');
  fs.writeFileSync(zeros, '');
  fs.truncateSync(zeros, BOMB_BYTES);
  // the two compressors run side by side, while the servers start
  await Promise.all([execFileP('zip', ['-q', 'bomb.zip', 'zeros'], { cwd: work }), execFileP('tar', ['-czf', 'bomb.tgz', 'zeros'], { cwd: work })]);
  bombZip = fs.readFileSync(path.join(work, 'bomb.zip'));
  bombTgz = fs.readFileSync(path.join(work, 'bomb.tgz'));
  fs.rmSync(zeros);
}

before(async () => {
  const bombs = buildBombs();
  files = http.createServer((req, res) => {
    const body = served.get(req.url ?? '');
    if (!body) res.writeHead(404).end();
    else res.writeHead(200, { 'content-length': body.length }).end(body);
  });
  await new Promise<void>((r) => files.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(files.address() as AddressInfo).port}`;
  [s, tight] = await Promise.all([
    startServer({ PALISADE_ALLOW_PRIVATE_URLS: '1', PALISADE_MAX_IMPORT_ENTRY_BYTES: String(512 * MiB) }),
    startServer({ PALISADE_ALLOW_PRIVATE_URLS: '1', PALISADE_MAX_IMPORT_ENTRIES: '20', PALISADE_MAX_IMPORT_ENTRY_BYTES: String(256 * 1024), PALISADE_MAX_IMPORT_UNPACKED_BYTES: String(MiB) }),
  ]);
  await bombs;
});
after(async () => {
  files.close();
  await Promise.all([s.stop(), tight.stop()]);
  fs.rmSync(work, { recursive: true, force: true });
});

/** Serves `body` from the test's HTTP server and returns its URL. */
function serve(name: string, body: Buffer): string {
  served.set(`/${name}`, body);
  return `${base}/${name}`;
}

/** A fresh folder under the test's work folder, filled by `fill`. */
function folder(fill: (dir: string) => void): string {
  const dir = fs.mkdtempSync(path.join(work, 'src-'));
  fill(dir);
  return dir;
}

/** A tar (or tar.gz) of `names` under `cwd`, built with the tar package; links stay links. */
function makeTar(cwd: string, names: string[], opts: { gzip?: boolean; preservePaths?: boolean } = {}): Buffer {
  const file = path.join(work, `${crypto.randomBytes(6).toString('hex')}.tar`);
  tar.c({ cwd, file, sync: true, gzip: opts.gzip, preservePaths: opts.preservePaths, portable: true }, names);
  return fs.readFileSync(file);
}

/** A zip of `names` under `cwd`, built with the system zip; symlinks stored as links. */
function makeZip(cwd: string, names: string[]): Buffer {
  const file = path.join(work, `${crypto.randomBytes(6).toString('hex')}.zip`);
  execFileSync('zip', ['-qry', file, ...names], { cwd });
  return fs.readFileSync(file);
}

function importArchive(server: TestServer, type: 'tar' | 'zip', url: string, extra: Record<string, unknown> = {}) {
  return api(server, 'POST', '/git/v1/repo', { key: server.adminKey, body: { import: { type, url, commitMessage: 'import', ...extra } } });
}

const gitDirOf = (server: TestServer, repoId: string) => path.join(server.dataDir, 'repos', repoId.slice(0, 2), `${repoId}.git`);

/** Every repository folder of a server. */
function repoDirs(server: TestServer): string[] {
  const root = path.join(server.dataDir, 'repos');
  if (!fs.existsSync(root)) return [];
  return fs
    .readdirSync(root)
    .filter((d) => /^[0-9a-f]{2}$/.test(d))
    .flatMap((d) => fs.readdirSync(path.join(root, d)).map((r) => path.join(root, d, r)));
}

/** The contents of every object in every repository of the server, as text. */
async function allObjects(server: TestServer): Promise<string> {
  let out = '';
  for (const dir of repoDirs(server)) out += (await gitOk(['--git-dir', dir, 'cat-file', '--batch-all-objects', '--batch', '--unordered'])).toString();
  return out;
}

const PASSWD_LINE = fs.readFileSync('/etc/passwd', 'utf8').split('\n')[0]!;

/** Nothing the server keeps to itself (system files, its database, its keys) is in any repository. */
async function assertNothingLeaked(server: TestServer): Promise<void> {
  const all = await allObjects(server);
  assert.ok(!all.includes(PASSWD_LINE), '/etc/passwd leaked into a repository');
  assert.ok(!all.includes('SQLite format 3'), 'the SQLite database leaked into a repository');
  assert.ok(!all.includes('PRIVATE KEY'), 'a private key leaked into a repository');
}

/** An import error names no server path, no command line and no engine's own message. */
function assertCleanError(server: TestServer, body: { message: string }): void {
  const m = body.message;
  for (const bad of [os.tmpdir(), server.dataDir, work, 'palisade-import', 'tar -', 'unzip', 'zipinfo', 'fast-import', 'Error:', 'ENOENT', 'TAR_', 'invalid relative path', 'zlib']) {
    assert.ok(!m.includes(bad), `error message reveals ${JSON.stringify(bad)}: ${m}`);
  }
}

/** Creates an import and expects a 400 with `code`; returns the body. Checks that nothing was left behind. */
async function refused(server: TestServer, type: 'tar' | 'zip', url: string, code: string | RegExp, extra: Record<string, unknown> = {}) {
  const before = repoDirs(server).length;
  const r = await importArchive(server, type, url, extra);
  assert.equal(r.status, 400, JSON.stringify(r.body));
  if (typeof code === 'string') assert.equal(r.body.code, code, r.body.message);
  else assert.match(r.body.message, code);
  assertCleanError(server, r.body);
  assert.equal(repoDirs(server).length, before, 'the half-made repository was removed');
  return r.body as { code: string; message: string };
}

function vmHwmBytes(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

describe('archive import attacks', () => {
  // The original hole: `sub -> /etc` with import.dir "sub" imported /etc. A symlink is not a folder:
  // nothing is under "sub/" in the archive's own names, so there is nothing to import.
  test('symlink to /etc imported as dir', async () => {
    const src = folder((d) => {
      fs.symlinkSync('/etc', path.join(d, 'sub'));
      fs.writeFileSync(path.join(d, 'readme'), 'hi');
    });
    const tarUrl = serve('etc-link.tar', makeTar(src, ['sub', 'readme']));
    await refused(s, 'tar', tarUrl, 'IMPORT_SUBDIR_NOT_FOUND', { dir: 'sub' });
    await refused(s, 'zip', serve('etc-link.zip', makeZip(src, ['sub', 'readme'])), 'IMPORT_SUBDIR_NOT_FOUND', { dir: 'sub' });
    // the same archive without dir: the link is stored as a link; cloning it brings no /etc content
    const ok = await importArchive(s, 'tar', tarUrl);
    assert.equal(ok.status, 200);
    const clone = path.join(tmpDir(), 'c');
    await gitOk(['clone', '-q', gitDirOf(s, ok.body.repoId), clone]);
    assert.equal(fs.readlinkSync(path.join(clone, 'sub')), '/etc');
    assert.equal((await gitOk(['ls-files', '-s', 'sub'], { cwd: clone })).split(' ')[0], '120000');
    await assertNothingLeaked(s);
  });

  // Same hole aimed at the server's own data folder: palisade.sqlite, the webhook signing key,
  // every repository. Also a link plus entries "through" it (the classic tar-slip): refused.
  test('symlink to the data folder imported as dir', async () => {
    const src = folder((d) => {
      fs.symlinkSync(s.dataDir, path.join(d, 'sub'));
    });
    await refused(s, 'tar', serve('data-link.tar', makeTar(src, ['sub'])), 'IMPORT_SUBDIR_NOT_FOUND', { dir: 'sub' });
    await refused(s, 'zip', serve('data-link.zip', makeZip(src, ['sub'])), 'IMPORT_SUBDIR_NOT_FOUND', { dir: 'sub' });
    const through = folder((d) => {
      fs.symlinkSync(s.dataDir, path.join(d, 'sub'));
      fs.mkdirSync(path.join(d, 'other', 'sub'), { recursive: true });
      fs.writeFileSync(path.join(d, 'other', 'sub', 'palisade.sqlite'), 'overwrite?');
    });
    // the second entry is renamed into the link's path: `sub` (link), then `sub/palisade.sqlite`
    const slip = path.join(work, 'slip.tar');
    execFileSync('tar', ['-cf', slip, '-C', through, '--transform', 's,^other/,,', 'sub', 'other/sub/palisade.sqlite']);
    assert.match(execFileSync('tar', ['-tvf', slip]).toString(), / sub\/palisade\.sqlite\n/);
    const body = await refused(s, 'tar', serve('slip.tar', fs.readFileSync(slip)), 'INVALID_FILE_PATH', { dir: 'sub' });
    assert.match(body.message, /both a file and a folder/);
    for (const f of fs.readdirSync(s.dataDir, { withFileTypes: true })) {
      if (f.isFile()) assert.ok(!fs.readFileSync(path.join(s.dataDir, f.name)).includes('overwrite?'), `${f.name} was written through the link`);
    }
    await assertNothingLeaked(s);
  });

  // A symlink is kept as what it is: mode 120000, its blob the target text, never followed.
  test('top-level symlink imported as a symlink', async () => {
    const src = folder((d) => {
      fs.symlinkSync('/etc/passwd', path.join(d, 'passwd'));
      fs.symlinkSync('docs/readme.md', path.join(d, 'readme'));
    });
    for (const [type, body] of [['tar', makeTar(src, ['passwd', 'readme'])], ['zip', makeZip(src, ['passwd', 'readme'])]] as const) {
      const r = await importArchive(s, type, serve(`links.${type}`, body));
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const dir = gitDirOf(s, r.body.repoId);
      const tree = await gitOk(['--git-dir', dir, 'ls-tree', 'HEAD']);
      assert.match(tree, /^120000 blob [0-9a-f]{40}\tpasswd$/m);
      assert.match(tree, /^120000 blob [0-9a-f]{40}\treadme$/m);
      assert.equal(await gitOk(['--git-dir', dir, 'cat-file', 'blob', 'HEAD:passwd']), '/etc/passwd');
      assert.equal(await gitOk(['--git-dir', dir, 'cat-file', 'blob', 'HEAD:readme']), 'docs/readme.md');
      assert.equal((await git(['--git-dir', dir, 'fsck', '--full', '--strict'])).code, 0);
    }
    await assertNothingLeaked(s);
  });

  // `../evil` names (zip-slip / tar-slip): refused by name, and no file appears anywhere outside.
  test('dot-dot names in tar and zip', async () => {
    const marker = `evil-${crypto.randomBytes(6).toString('hex')}`;
    const src = folder((d) => {
      fs.mkdirSync(path.join(d, 'in'));
      fs.writeFileSync(path.join(d, marker), 'pwned');
    });
    const evilTar = makeTar(path.join(src, 'in'), [`../${marker}`], { preservePaths: true });
    const t = await refused(s, 'tar', serve('dotdot.tar', evilTar), 'INVALID_FILE_PATH');
    assert.ok(t.message.includes(marker), 'the message names the entry');
    const evilZip = makeZip(path.join(src, 'in'), [`../${marker}`]);
    assert.ok(evilZip.includes(`../${marker}`), 'the zip holds the ../ name');
    await refused(s, 'zip', serve('dotdot.zip', evilZip), 'INVALID_FILE_PATH');
    fs.rmSync(path.join(src, marker));
    for (const where of [os.tmpdir(), path.dirname(s.dataDir), s.dataDir, path.join(s.dataDir, 'repos'), path.dirname(process.cwd()), process.cwd(), '/']) {
      assert.ok(!fs.existsSync(path.join(where, marker)), `a file was written at ${where}`);
    }
    // absolute names lose their leading "/" and land inside the repository
    const abs = folder((d) => fs.writeFileSync(path.join(d, 'abs.txt'), 'inside'));
    const absTar = makeTar(abs, [path.join(abs, 'abs.txt')], { preservePaths: true });
    const r = await importArchive(s, 'tar', serve('abs.tar', absTar));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(await gitOk(['--git-dir', gitDirOf(s, r.body.repoId), 'cat-file', 'blob', `HEAD:${path.join(abs, 'abs.txt').slice(1)}`]), 'inside');
  });

  // Names git or a checkout would treat specially: a `.git` folder (any case, NTFS/HFS spellings),
  // backslashes, control characters. Each is a 400 naming the entry.
  test('dot-git, backslash and control-character names', async () => {
    for (const name of ['.git/config', 'a/.GIT/hooks/post-checkout', 'git~1/config', '.git./x', 'a\\b', 'bad\u0007name', `x/${'\u200c'}.git/y`]) {
      const src = folder((d) => {
        const p = path.join(d, ...name.split('/'));
        fs.mkdirSync(path.dirname(p), { recursive: true });
        fs.writeFileSync(p, 'x');
      });
      const body = await refused(s, 'tar', serve(`name-${crypto.randomBytes(4).toString('hex')}.tar`, makeTar(src, [name])), 'INVALID_FILE_PATH');
      assert.ok(body.message.includes(JSON.stringify(name).slice(1, -1).slice(0, 20)), `names the entry: ${body.message}`);
    }
  });

  // Devices, fifos and dangling hard links are not files: 400, never opened.
  test('fifo and dangling hard link entries', async () => {
    const src = folder((d) => {
      execFileSync('mkfifo', [path.join(d, 'pipe')]);
      fs.writeFileSync(path.join(d, 'a.txt'), 'A');
      fs.linkSync(path.join(d, 'a.txt'), path.join(d, 'b.txt'));
    });
    await refused(s, 'tar', serve('fifo.tar', execFileSync('tar', ['-cf', '-', '-C', src, 'pipe'])), 'IMPORT_UNSUPPORTED_ENTRY');
    // a hard link to an earlier entry is that entry's blob ...
    const linked = execFileSync('tar', ['-cf', '-', '-C', src, 'a.txt', 'b.txt']);
    assert.match(execFileSync('tar', ['-tvf', '-'], { input: linked }).toString(), /b\.txt link to a\.txt/);
    const ok = await importArchive(s, 'tar', serve('hardlink.tar', linked));
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    const tree = await gitOk(['--git-dir', gitDirOf(s, ok.body.repoId), 'ls-tree', 'HEAD']);
    const oids = [...tree.matchAll(/^100644 blob ([0-9a-f]{40})\t[ab]\.txt$/gm)].map((m) => m[1]);
    assert.equal(oids.length, 2);
    assert.equal(oids[0], oids[1]);
    // ... and one whose target is not in the archive is refused
    const dangling = path.join(work, 'dangling.tar');
    fs.writeFileSync(dangling, linked);
    execFileSync('tar', ['--delete', '-f', dangling, 'a.txt']);
    await refused(s, 'tar', serve('dangling.tar', fs.readFileSync(dangling)), /hard link "b\.txt" refers to no earlier file/);
  });

  // Zip bomb: a ~300 KB zip announcing 300 MiB of zeros. Refused from the zip's directory before
  // anything is inflated; the server's peak memory does not move.
  test('zip bomb', async () => {
    assert.ok(bombZip.length < 1024 * 1024);
    const url = serve('bomb.zip', bombZip);
    const before = vmHwmBytes(s.proc.pid!);
    const body = await refused(s, 'zip', url, 'IMPORT_TOO_LARGE');
    assert.match(body.message, /expands more than 200 times/);
    const grew = vmHwmBytes(s.proc.pid!) - before;
    assert.ok(grew < BOMB_BYTES / 8, `peak RSS grew by ${grew} bytes`);
  });

  // tar.gz bomb: ~300 KB of gzip that inflates to 300 MiB of zeros in one entry (the main server
  // allows entries that large). Stopped while streaming, once 10 MiB are out at a ratio above 200;
  // the server's peak memory does not move.
  test('tar.gz bomb', async () => {
    assert.ok(bombTgz.length < 1024 * 1024);
    const url = serve('bomb.tgz', bombTgz);
    const before = vmHwmBytes(s.proc.pid!);
    const body = await refused(s, 'tar', url, 'IMPORT_TOO_LARGE');
    assert.match(body.message, /expands more than 200 times/);
    const grew = vmHwmBytes(s.proc.pid!) - before;
    assert.ok(grew < BOMB_BYTES / 8, `peak RSS grew by ${grew} bytes`);
  });

  // Many entries, one huge entry, a large total: each limit is a 400 with a clear message.
  test('too many entries, too large entry, too large total', async () => {
    const many = folder((d) => {
      for (let i = 0; i < 25; i++) fs.writeFileSync(path.join(d, `f${i}`), '');
    });
    const names = fs.readdirSync(many);
    let body = await refused(tight, 'tar', serve('many.tar.gz', makeTar(many, names, { gzip: true })), 'IMPORT_TOO_LARGE');
    assert.match(body.message, /more than 20 entries/);
    body = await refused(tight, 'zip', serve('many.zip', makeZip(many, names)), 'IMPORT_TOO_LARGE');
    assert.match(body.message, /more than 20 entries/);
    const big = folder((d) => fs.writeFileSync(path.join(d, 'big.bin'), crypto.randomBytes(300 * 1024)));
    body = await refused(tight, 'tar', serve('big.tar', makeTar(big, ['big.bin'])), 'IMPORT_TOO_LARGE');
    assert.match(body.message, /"big\.bin" is larger than 262144 bytes/);
    const total = folder((d) => {
      for (let i = 0; i < 6; i++) fs.writeFileSync(path.join(d, `part${i}`), crypto.randomBytes(200 * 1024));
    });
    const parts = fs.readdirSync(total);
    body = await refused(tight, 'tar', serve('total.tar', makeTar(total, parts)), 'IMPORT_TOO_LARGE');
    assert.match(body.message, /unpacks to more than 1048576 bytes/);
    body = await refused(tight, 'zip', serve('total.zip', makeZip(total, parts)), 'IMPORT_TOO_LARGE');
    assert.match(body.message, /unpacks to more than 1048576 bytes/);
  });

  // Broken input and failed downloads: fixed sentences, no library text, no URL credentials.
  test('broken archives and failed downloads say nothing of the server', async () => {
    const junk = serve('junk.bin', crypto.randomBytes(4096));
    assert.match((await refused(s, 'tar', junk, 'BAD_REQUEST')).message, /^The archive is not a valid tar file$/);
    assert.match((await refused(s, 'zip', junk, 'BAD_REQUEST')).message, /^The archive is not a valid zip file$/);
    const gz = serve('junk.tgz', Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0]), crypto.randomBytes(4096)]));
    assert.match((await refused(s, 'tar', gz, 'BAD_REQUEST')).message, /not a valid gzip file/);
    const okTar = makeTar(folder((d) => fs.writeFileSync(path.join(d, 'f'), crypto.randomBytes(8192))), ['f'], { gzip: true });
    assert.match((await refused(s, 'tar', serve('cut.tgz', okTar.subarray(0, okTar.length - 2000)), /not a valid (gzip|tar) file/)).message, /^The archive/);
    const secret = `s3cret${crypto.randomBytes(4).toString('hex')}`;
    const missing = await refused(s, 'tar', `http://user:${secret}@127.0.0.1:${new URL(base).port}/missing.tar`, 'SOURCE_NOT_FOUND');
    assert.ok(!missing.message.includes(secret));
    await refused(s, 'tar', `file://${path.join(work, 'no-such.tar')}`, 'SOURCE_NOT_FOUND');
  });

  // What still works: nested folders, an executable, duplicates (the later one wins), dir imports,
  // tar, tar.gz and zip; each result passes `git fsck --full`.
  test('normal archives still import', async () => {
    const src = folder((d) => {
      fs.mkdirSync(path.join(d, 'proj', 'src', 'deep'), { recursive: true });
      fs.writeFileSync(path.join(d, 'proj', 'README.md'), '# proj\n');
      fs.writeFileSync(path.join(d, 'proj', 'src', 'deep', 'x.ts'), 'export const x = 1;\n');
      fs.writeFileSync(path.join(d, 'proj', 'run.sh'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
      fs.writeFileSync(path.join(d, 'proj', 'name with spaces "q".txt'), 'q');
    });
    const want = ['README.md', 'name with spaces "q".txt', 'run.sh', 'src/deep/x.ts'];
    const archives: [string, 'tar' | 'zip', Buffer][] = [
      ['ok.tar', 'tar', makeTar(src, ['proj'])],
      ['ok.tar.gz', 'tar', makeTar(src, ['proj'], { gzip: true })],
      ['ok.zip', 'zip', makeZip(src, ['proj'])],
    ];
    for (const [name, type, body] of archives) {
      for (const dir of [undefined, 'proj', 'proj/']) {
        const r = await importArchive(s, type, serve(name, body), { dir, authorName: 'Imp', authorEmail: 'imp@example.com' });
        assert.equal(r.status, 200, `${name} ${dir}: ${JSON.stringify(r.body)}`);
        const gd = gitDirOf(s, r.body.repoId);
        const prefix = dir ? '' : 'proj/';
        const listed = (await gitOk(['--git-dir', gd, 'ls-tree', '-r', '-z', 'HEAD'])).split('\0').filter(Boolean);
        assert.deepEqual(listed.map((l) => l.split('\t')[1]).sort(), want.map((w) => `${prefix}${w}`).sort());
        assert.ok(listed.some((l) => l.startsWith('100755 ') && l.endsWith(`${prefix}run.sh`)), 'run.sh is executable');
        assert.ok(listed.some((l) => l.startsWith('100644 ') && l.endsWith(`${prefix}README.md`)));
        assert.equal(await gitOk(['--git-dir', gd, 'cat-file', 'blob', `HEAD:${prefix}src/deep/x.ts`]), 'export const x = 1;\n');
        assert.equal(await gitOk(['--git-dir', gd, 'log', '-1', '--format=%an <%ae>|%s|%P']), 'Imp <imp@example.com>|import|\n');
        const fsck = await git(['--git-dir', gd, 'fsck', '--full', '--strict']);
        assert.equal(fsck.code, 0, fsck.stderr);
      }
    }
    // a later duplicate replaces an earlier one
    const dup = path.join(work, 'dup.tar');
    const v1 = folder((d) => fs.writeFileSync(path.join(d, 'f.txt'), 'first'));
    const v2 = folder((d) => fs.writeFileSync(path.join(d, 'f.txt'), 'second'));
    execFileSync('tar', ['-cf', dup, '-C', v1, 'f.txt']);
    execFileSync('tar', ['-rf', dup, '-C', v2, 'f.txt']);
    const r = await importArchive(s, 'tar', serve('dup.tar', fs.readFileSync(dup)));
    assert.equal(r.status, 200);
    assert.equal(await gitOk(['--git-dir', gitDirOf(s, r.body.repoId), 'cat-file', 'blob', 'HEAD:f.txt']), 'second');
  });
});
