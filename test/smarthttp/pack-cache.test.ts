// The pack-objects cache (issue 12): identical fetches cost one pack-objects, with real git
// against the real server; what ran is read from the server's own log line per pack-objects
// and from the cache folder, not from a mock.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gitOk, makeWorkTree, repoUrl, tmpDir } from '../helpers/git.ts';
import { api, childProcesses, startServer, type TestServer } from '../helpers/server.ts';

const servers: TestServer[] = [];
after(async () => {
  for (const s of servers) await s.stop();
});

async function start(env: Record<string, string> = {}): Promise<TestServer> {
  const s = await startServer({ PALISADE_LOG_LEVEL: 'info', ...env });
  servers.push(s);
  return s;
}

/** The pack-objects runs the cache logged for `repoId`. */
function produced(s: TestServer, repoId: string): { bytes: number; code: number }[] {
  return s
    .logs()
    .split('\n')
    .filter((l) => l.includes('pack cache: pack-objects done'))
    .map((l) => JSON.parse(l) as { repoId: string; bytes: number; code: number })
    .filter((l) => l.repoId === repoId);
}

const cacheFiles = (s: TestServer) => {
  try {
    return fs.readdirSync(path.join(s.dataDir, 'cache', 'packs')).filter((n) => n.endsWith('.pack'));
  } catch {
    return [];
  }
};

/** A public repository with `n` commits (and `blobKb` KiB of random data) pushed by the admin; returns its id and work tree. */
async function seeded(s: TestServer, name: string, n = 3, blobKb = 0): Promise<{ repoId: string; wt: string; url: string }> {
  const r = await api(s, 'POST', '/git/v1/repo', { key: s.adminKey, body: { name, public: true } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const wt = await makeWorkTree(n);
  if (blobKb) {
    fs.writeFileSync(path.join(wt, 'blob.bin'), crypto.randomBytes(blobKb * 1024));
    await gitOk(['add', '.'], { cwd: wt });
    await gitOk(['commit', '-q', '-m', 'blob'], { cwd: wt });
  }
  await gitOk(['push', '-q', repoUrl(s.url, `${name}.git`, 'x-access-token', s.adminKey), 'main'], { cwd: wt });
  return { repoId: r.body.repoId, wt, url: `${s.url}/${name}.git` };
}

async function cloneOk(url: string): Promise<string> {
  const dir = path.join(tmpDir(), 'c');
  await gitOk(['clone', '-q', '--bare', url, dir]);
  await gitOk(['fsck', '--strict'], { cwd: dir });
  return dir;
}

/** The environment of one upload-pack the server runs, read from /proc while a request holds it open. */
async function uploadPackEnv(s: TestServer, repoName: string): Promise<Record<string, string>> {
  const u = new URL(`${s.url}/${repoName}.git/git-upload-pack`);
  const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers: { 'content-type': 'application/x-git-upload-pack-request' } });
  req.on('error', () => undefined);
  req.write('0032want '); // a body that has not ended: upload-pack waits for the rest
  try {
    for (let i = 0; i < 100; i++) {
      const child = childProcesses(s.proc.pid!).find((c) => c.args.includes('upload-pack'));
      if (child) {
        const env = fs.readFileSync(`/proc/${child.pid}/environ`, 'utf8').split('\0');
        return Object.fromEntries(env.filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('no upload-pack child seen');
  } finally {
    req.destroy();
  }
}

/** The pack cache's socket of a server process (`pack-objects-<pid>-<random>.sock`), if it has one. */
function socketOf(s: { dataDir: string; proc: { pid?: number } }): string | undefined {
  const dir = path.join(s.dataDir, 'run');
  const name = fs.existsSync(dir) ? fs.readdirSync(dir).find((n) => n.startsWith(`pack-objects-${s.proc.pid}-`) && n.endsWith('.sock')) : undefined;
  return name && path.join(dir, name);
}

/** One raw request on the cache's socket, as the hook sends it; the first line of the answer. */
function ask(socket: string, fields: string[], input: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.connect(socket);
    let out = '';
    c.on('data', (d) => (out += d.toString()));
    c.on('error', reject);
    c.on('close', () => resolve(out.split('\n')[0]!));
    const hdr = Buffer.from(fields.join('\0'));
    c.end(Buffer.concat([Buffer.from(`palisade-pack-objects 1 ${hdr.length} ${Buffer.byteLength(input)}\n`), hdr, Buffer.from(input)]));
  });
}

describe('pack-objects cache', () => {
  let s: TestServer;
  before(async () => {
    s = await start();
  });

  test('concurrent clones of the same tips run one pack-objects, and every clone is whole', async () => {
    const { repoId, url } = await seeded(s, 'cache/same', 5, 4096);
    const clones = await Promise.all(Array.from({ length: 8 }, () => cloneOk(url)));
    assert.equal(produced(s, repoId).length, 1, 'one pack-objects for eight identical clones');
    const heads = await Promise.all(clones.map((d) => gitOk(['rev-parse', 'main'], { cwd: d })));
    assert.equal(new Set(heads).size, 1);
    // the same clone again, later: served from the finished pack
    await cloneOk(url);
    assert.equal(produced(s, repoId).length, 1);
  });

  test('a stalled clone does not stall another one of the same pack (each follows the file on its own)', async () => {
    const { repoId, url } = await seeded(s, 'cache/stall', 1, 32 * 1024);
    const slowDir = path.join(tmpDir(), 'slow');
    // the slow client: stopped (its whole process group) once its pack has started to arrive
    const slow = spawn('git', ['clone', '-q', '--bare', url, slowDir], { detached: true, stdio: 'ignore', env: { PATH: process.env.PATH, HOME: tmpDir(), GIT_CONFIG_NOSYSTEM: '1', GIT_TERMINAL_PROMPT: '0' } });
    const slowDone = new Promise<number | null>((r) => slow.once('exit', r));
    const packDir = path.join(slowDir, 'objects', 'pack');
    for (let i = 0; i < 400; i++) {
      const tmp = fs.existsSync(packDir) ? fs.readdirSync(packDir).filter((f) => f.startsWith('tmp_pack')) : [];
      if (tmp.some((f) => fs.statSync(path.join(packDir, f)).size > 0)) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    process.kill(-slow.pid!, 'SIGSTOP');
    try {
      const started = Date.now();
      await cloneOk(url);
      assert.ok(Date.now() - started < 30_000);
    } finally {
      process.kill(-slow.pid!, 'SIGCONT');
    }
    assert.equal(await slowDone, 0);
    await gitOk(['fsck', '--strict'], { cwd: slowDir });
    assert.equal(produced(s, repoId).length, 1, 'the two clones shared one pack-objects');
  });

  test('a push changes the key: the next clone has the new commit; a fetch with haves works', async () => {
    const { repoId, wt, url } = await seeded(s, 'cache/push', 2);
    const before = await cloneOk(url);
    const fetcher = await cloneOk(url);
    assert.equal(produced(s, repoId).length, 1);
    fs.writeFileSync(path.join(wt, 'new.txt'), 'new\n');
    await gitOk(['add', '.'], { cwd: wt });
    await gitOk(['commit', '-q', '-m', 'after'], { cwd: wt });
    await gitOk(['push', '-q', repoUrl(s.url, 'cache/push.git', 'x-access-token', s.adminKey), 'main'], { cwd: wt });
    const head = (await gitOk(['rev-parse', 'HEAD'], { cwd: wt })).trim();
    const after = await cloneOk(url);
    assert.equal((await gitOk(['rev-parse', 'main'], { cwd: after })).trim(), head);
    assert.notEqual((await gitOk(['rev-parse', 'main'], { cwd: before })).trim(), head);
    assert.equal(produced(s, repoId).length, 2, 'the new tips ran pack-objects');
    // an incremental fetch: wants the new tip, has the old one
    await gitOk(['fetch', '-q', url, '+refs/heads/*:refs/heads/*'], { cwd: fetcher });
    await gitOk(['fsck', '--strict'], { cwd: fetcher });
    assert.equal((await gitOk(['rev-parse', 'main'], { cwd: fetcher })).trim(), head);
    assert.equal(produced(s, repoId).length, 3, 'a fetch with haves is another key');
  });

  test('the hook falls back to pack-objects when the socket is gone', async () => {
    const { repoId, url } = await seeded(s, 'cache/fallback', 2);
    const socket = socketOf(s)!;
    assert.ok(socket && fs.existsSync(socket));
    fs.renameSync(socket, `${socket}.away`);
    try {
      await cloneOk(url);
      assert.equal(produced(s, repoId).length, 0, 'the clone ran its own pack-objects');
    } finally {
      fs.renameSync(`${socket}.away`, socket);
    }
    await cloneOk(url);
    assert.equal(produced(s, repoId).length, 1);
  });

  test('a refused hook runs pack-objects itself on the request it already read', async () => {
    const { repoId } = await seeded(s, 'cache/refused-hook', 2);
    const env = await uploadPackEnv(s, 'cache/refused-hook');
    const dir = path.join(s.dataDir, 'repos', repoId.slice(0, 2), `${repoId}.git`);
    const head = (await gitOk(['rev-parse', 'main'], { cwd: dir })).trim();
    const hook = path.join(s.dataDir, 'git-home', 'bin', 'pack-objects-hook');
    const pack = execFileSync(hook, ['git', 'pack-objects', '--revs', '--stdout'], {
      cwd: dir,
      input: `${head}\n\n`,
      env: { PATH: process.env.PATH, PALISADE_PACK_SOCKET: env.PALISADE_PACK_SOCKET, PALISADE_PACK_SECRET: 'f'.repeat(64) },
    });
    assert.equal(pack.subarray(0, 4).toString(), 'PACK');
    const into = tmpDir();
    await gitOk(['init', '-q', '--bare', into]);
    execFileSync('git', ['index-pack', '--stdin', '--fix-thin'], { cwd: into, input: pack, env: { PATH: process.env.PATH, GIT_DIR: into } });
    await gitOk(['update-ref', 'refs/heads/main', head], { cwd: into });
    await gitOk(['fsck', '--strict'], { cwd: into });
    assert.equal(produced(s, repoId).length, 0);
  });

  test('a shallow clone goes through the cache too and is whole', async () => {
    const { repoId, url } = await seeded(s, 'cache/shallow', 4);
    for (let i = 0; i < 2; i++) {
      const dir = path.join(tmpDir(), 'c');
      await gitOk(['clone', '-q', '--bare', '--depth', '1', url, dir]);
      await gitOk(['fsck'], { cwd: dir });
      assert.equal((await gitOk(['rev-list', '--count', 'main'], { cwd: dir })).trim(), '1');
    }
    assert.equal(produced(s, repoId).length, 1);
  });

  test('the socket and the cache folder are closed to others (0700 folders, 0600 socket)', () => {
    const socket = socketOf(s)!;
    assert.equal(fs.statSync(socket).mode & 0o777, 0o600);
    assert.equal(fs.statSync(path.join(s.dataDir, 'run')).mode & 0o777, 0o700);
    assert.equal(fs.statSync(path.join(s.dataDir, 'cache', 'packs')).mode & 0o777, 0o700);
  });

  test('the socket refuses a client without the secret, a folder outside the data folder and arguments upload-pack does not send', async () => {
    const { repoId } = await seeded(s, 'cache/socket', 1);
    const env = await uploadPackEnv(s, 'cache/socket');
    const socket = env.PALISADE_PACK_SOCKET!;
    const secret = env.PALISADE_PACK_SECRET!;
    assert.match(secret, /^[0-9a-f]{64}$/);
    const dir = path.join(s.dataDir, 'repos', repoId.slice(0, 2), `${repoId}.git`);
    const head = (await gitOk(['rev-parse', 'main'], { cwd: dir })).trim();
    const args = ['git', 'pack-objects', '--revs', '--thin', '--stdout', '--delta-base-offset'];
    const input = `${head}\n\n`;
    // the real secret on the real folder is answered with a pack (the control)
    assert.match(await ask(socket, [secret, dir, '', ...args], input), /^P \//);
    assert.equal(await ask(socket, ['0'.repeat(64), dir, '', ...args], input), 'X refused');
    assert.equal(await ask(socket, [secret.slice(0, 63), dir, '', ...args], input), 'X refused');
    // a repository of git's own outside the data folder, and the data folder's paths
    const outside = path.join(tmpDir(), 'other.git');
    await gitOk(['clone', '-q', '--bare', dir, outside]);
    assert.equal(await ask(socket, [secret, outside, '', ...args], input), 'X refused');
    assert.equal(await ask(socket, [secret, s.dataDir, '', ...args], input), 'X refused');
    assert.equal(await ask(socket, [secret, dir, '../../../..', ...args], input), 'X refused');
    assert.equal(await ask(socket, [secret, 'repos', '', ...args], input), 'X refused');
    // a symlink into the data folder from outside resolves to the repository: that is allowed;
    // one from inside to outside is not
    const link = path.join(tmpDir(), 'link.git');
    fs.symlinkSync(outside, link);
    assert.equal(await ask(socket, [secret, link, '', ...args], input), 'X refused');
    // an option upload-pack never sends runs uncached, in the hook, not in the server
    assert.equal(await ask(socket, [secret, dir, '', 'git', 'pack-objects', '--stdout', '--all'], input), 'F arguments');
    assert.equal(await ask(socket, [secret, dir, '', 'git', '--exec-path=/tmp', 'pack-objects', '--stdout'], input), 'F arguments');
    assert.equal(await ask(socket, [secret, dir, '', 'sh', '-c', 'id'], input), 'F arguments');
    // the server does not wait forever on a request that never arrives, nor read a huge header
    assert.equal(await ask(socket, [secret.repeat(2000)], ''), 'X refused');
  });

  test('the secret never reaches a repository-configured hook: a repository cannot set packObjectsHook', async () => {
    const { repoId, url } = await seeded(s, 'cache/repoconfig', 1);
    const dir = path.join(s.dataDir, 'repos', repoId.slice(0, 2), `${repoId}.git`);
    const marker = path.join(tmpDir(), 'ran');
    const evil = path.join(tmpDir(), 'evil.sh');
    fs.writeFileSync(evil, `#!/bin/sh\nenv > '${marker}'\nexec "$@"\n`, { mode: 0o755 });
    await gitOk(['config', 'uploadpack.packObjectsHook', evil], { cwd: dir });
    await cloneOk(url);
    assert.equal(fs.existsSync(marker), false, "the repository's hook did not run");
    assert.equal(produced(s, repoId).length, 1, "Palisade's hook ran");
  });
});

describe('pack-objects cache bounds', () => {
  test('off switch: upload-pack runs pack-objects itself, no socket, nothing cached', async () => {
    const s = await start({ PALISADE_PACK_CACHE: '0' });
    const { repoId, url } = await seeded(s, 'off/repo', 2);
    await cloneOk(url);
    await cloneOk(url);
    assert.equal(produced(s, repoId).length, 0);
    assert.deepEqual(cacheFiles(s), []);
    assert.equal(socketOf(s), undefined, 'no socket');
    assert.equal(fs.readdirSync(path.join(s.dataDir, 'run')).some((n) => n.startsWith('pack-objects')), false);
  });

  test('a finished pack expires after its time to live and is removed from disk', async () => {
    const s = await start({ PALISADE_PACK_CACHE_TTL_SECONDS: '1' });
    const { repoId, url } = await seeded(s, 'ttl/repo', 2);
    await cloneOk(url);
    await cloneOk(url);
    assert.equal(produced(s, repoId).length, 1, 'the second clone within the ttl was a hit');
    assert.ok(cacheFiles(s).length >= 1);
    await new Promise((r) => setTimeout(r, 2500));
    assert.deepEqual(cacheFiles(s), [], 'expired packs were removed');
    await cloneOk(url);
    assert.equal(produced(s, repoId).length, 2);
  });

  test('a pack larger than the cache is streamed to its clone but not kept; the cache stays within its bytes', async () => {
    const s = await start({ PALISADE_PACK_CACHE_MAX_BYTES: String(64 * 1024) });
    const big = await seeded(s, 'size/big', 1, 256);
    await cloneOk(big.url);
    await cloneOk(big.url);
    assert.equal(produced(s, big.repoId).length, 2, 'nothing kept: each clone ran pack-objects');
    assert.deepEqual(cacheFiles(s), []);
    // small packs are kept, the least recently used evicted past the budget
    const smalls = [];
    for (let i = 0; i < 4; i++) smalls.push(await seeded(s, `size/small${i}`, 1, 20));
    for (const r of smalls) await cloneOk(r.url);
    const total = cacheFiles(s).reduce((n, f) => n + fs.statSync(path.join(s.dataDir, 'cache', 'packs', f)).size, 0);
    assert.ok(total <= 64 * 1024, `cache holds ${total} bytes`);
    assert.ok(cacheFiles(s).length >= 1 && cacheFiles(s).length < 4, `${cacheFiles(s).length} packs kept`);
    // the most recent one is still a hit
    await cloneOk(smalls[3]!.url);
    assert.equal(produced(s, smalls[3]!.repoId).length, 1);
  });
});
