import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { isUuid } from '../domain/validate.ts';
import { repoDir } from './repo-path.ts';
import { type GitEnv, killGit, runGit, spawnGit } from './runner.ts';

/**
 * The `uploadpack.packObjectsHook` client, in Perl: git runs it as `<hook> git pack-objects
 * <args…>` with the request (wants, haves, shallows) on stdin, in the repository's folder.
 * Perl because it starts in about 1.5 ms here without modules (sockets through the built-in
 * `socket`/`connect` with Linux's AF_UNIX = SOCK_STREAM = 1; `use Socket` alone costs 5 ms more),
 * where python3 takes ~20 ms and node ~40 ms; `sh` cannot open a Unix socket. perl-base is
 * Essential on Debian.
 *
 * It sends the secret from its environment, its folder, the arguments and stdin to the
 * server's socket and is answered `P <file>` (then `S <bytes>` as the file grows and
 * `E <bytes> <code>` at the end): it copies the file to stdout as it grows. Until it has
 * written its first byte, any failure (no socket, no answer in 10 s, any other answer, a file
 * it cannot open, a producer that failed) runs `git pack-objects` itself on the same input,
 * as upload-pack would have: the pack cache can only make a clone faster, never fail it.
 */
const HOOK = `#!/usr/bin/perl
# Written by Palisade at start; edits are overwritten. See src/git/pack-cache.ts.
$SIG{PIPE} = 'IGNORE';
my ($sock, $secret) = ($ENV{PALISADE_PACK_SOCKET}, $ENV{PALISADE_PACK_SECRET});
delete $ENV{PALISADE_PACK_SOCKET};
delete $ENV{PALISADE_PACK_SECRET};
exec { $ARGV[0] } @ARGV or exit 128 unless defined $sock && defined $secret && @ARGV > 1 && $ARGV[0] eq 'git';
my $s;
exec { $ARGV[0] } @ARGV or exit 128 unless socket($s, 1, 1, 0) && connect($s, pack('S Z*', 1, $sock));
binmode STDIN; binmode STDOUT; binmode $s;
my $in = '';
while (1) { my $n = sysread(STDIN, $in, 1 << 20, length $in); exit 128 unless defined $n; last unless $n; }
my $wrote = 0;
sub direct {
  exit 1 if $wrote;
  close $s;
  open(my $p, '|-', @ARGV) or exit 128;
  binmode $p;
  print $p $in;
  close $p;
  exit($? & 127 ? 128 : $? >> 8);
}
my $hdr = join("\\0", $secret, readlink('/proc/self/cwd') // '', $ENV{GIT_DIR} // '', @ARGV);
my $msg = 'palisade-pack-objects 1 ' . length($hdr) . ' ' . length($in) . "\\n" . $hdr . $in;
for (my $o = 0; $o < length $msg;) { my $w = syswrite($s, $msg, length($msg) - $o, $o); direct() unless $w; $o += $w; }
undef $msg;
my $rin = ''; vec($rin, fileno($s), 1) = 1;
direct() unless select(my $r = $rin, undef, undef, 10) > 0;
my $l = <$s>;
direct() unless defined $l && $l =~ /^P (.+)\\n\\z/s;
open(my $f, '<', $1) or direct();
binmode $f;
my ($pos, $buf) = (0, '');
sub upto {
  my $to = shift;
  while ($pos < $to) {
    my $want = $to - $pos; $want = 1 << 20 if $want > 1 << 20;
    my $n = sysread($f, $buf, $want);
    direct() unless $n;
    $pos += $n;
    for (my $o = 0; $o < $n;) { my $w = syswrite(STDOUT, $buf, $n - $o, $o); exit 1 unless $w; $o += $w; $wrote = 1; }
  }
}
while (defined($l = <$s>)) {
  if ($l =~ /^S (\\d+)\\n/) { upto($1); }
  elsif ($l =~ /^E (\\d+) (\\d+)\\n/) { direct() if $2 != 0; upto($1); exit 0; }
  else { last; }
}
direct();
`;

/** What upload-pack's pack-objects may be asked; anything else is run by the hook itself, uncached. */
const ALLOWED_OPTION = /^--(revs|thin|stdout|progress|delta-base-offset|include-tag|shallow|keep-true-parents|use-bitmap-index|no-use-bitmap-index|delta-islands|filter=[\x20-\x7e]{1,200}|missing=allow-any|exclude-promisor-objects|uri-protocol=[A-Za-z0-9+.-]{1,32})$/;

/** The most a header (secret, folders, arguments) may take. */
const MAX_HEADER_BYTES = 64 * 1024;
/** Wants, haves and shallows of one request; larger goes uncached (the hook runs pack-objects). */
const MAX_INPUT_BYTES = 64 << 20;
/** How long a hook may take to send its request. */
const REQUEST_TIMEOUT_MS = 30_000;

export interface PackCacheOptions {
  git: GitEnv;
  dataDir: string;
  /** folder of the socket (0700) */
  runDir: string;
  /** folder of the cached packs (0700): this node's own, nothing else is written there */
  cacheDir: string;
  /** total bytes of packs kept (finished) plus being written; a pack larger than this is streamed, not kept */
  maxBytes: number;
  /** how long a finished pack is served, in milliseconds */
  ttlMs: number;
  /** longest run of one pack-objects */
  timeoutMs: number;
  log?: (level: 'info' | 'warn' | 'debug', obj: Record<string, unknown>, msg: string) => void;
}

/** Counters for logs, tests and the benchmark. */
export interface PackCacheStats {
  /** pack-objects runs the cache started */
  produced: number;
  /** requests that joined a pack being written */
  joined: number;
  /** requests served from a finished pack */
  hits: number;
  /** requests answered "run it yourself" (arguments, input size) */
  uncached: number;
  /** connections refused (secret, folder, malformed) */
  refused: number;
  /** packs on disk now and their bytes */
  entries: number;
  bytes: number;
}

interface Entry {
  key: string;
  file: string;
  size: number;
  done: boolean;
  code: number | null;
  /** unlink once no reader holds it */
  dead: boolean;
  readers: Set<net.Socket>;
  producer: ChildProcess | undefined;
  finishedAt: number;
  usedAt: number;
}

/**
 * The pack cache for identical fetches: upload-pack runs Palisade's hook instead of
 * `pack-objects`, the hook hands its request to this server over a Unix socket, and the server
 * keys it by sha256(git version, repository id, arguments, stdin (the wanted and had object
 * ids)). One `pack-objects` runs per key: its output is written to a file that every request
 * with the same key follows from its first byte (a slow reader stalls nobody), and the
 * finished file serves the same request again for `ttlMs`, within `maxBytes`. A push changes
 * the wants, so the key: no stale pack is served. Progress messages of pack-objects are not
 * passed on (the client still shows its own "Receiving objects").
 *
 * Bounds: a pack-objects runs only while at least one request follows it (each holds its
 * upload-pack's process slot), so there are never more of them than upload-packs; every
 * request is read within bounds (header 64 KiB, input 64 MiB) and time.
 */
export class PackCache {
  private readonly secret = crypto.randomBytes(32).toString('hex');
  private readonly socketPath: string;
  private readonly hookPath: string;
  private readonly entries = new Map<string, Entry>();
  /** entries no longer in the index whose file waits for its readers */
  private readonly dying = new Set<Entry>();
  private server: net.Server | undefined;
  private realDataDir = '';
  private gitVersion = '';
  private timer: NodeJS.Timeout | undefined;
  private counters = { produced: 0, joined: 0, hits: 0, uncached: 0, refused: 0 };

  /** Sets where the cache logs (the app's logger, once it exists). */
  setLog(log: PackCacheOptions['log']): void {
    this.o.log = log;
  }

  constructor(private readonly o: PackCacheOptions) {
    // one socket per process: nodes sharing the data folder (and perhaps a pid) each have their own
    this.socketPath = path.join(o.runDir, `pack-objects-${process.pid}-${crypto.randomBytes(4).toString('hex')}.sock`);
    // not in hooks/: that folder is receive-pack's core.hooksPath, and this is no git hook
    this.hookPath = path.join(o.git.home, 'bin', 'pack-objects-hook');
  }

  /** Writes the hook, opens the socket and the cache folder, and starts the periodic cleanup. */
  async listen(): Promise<void> {
    fs.mkdirSync(path.dirname(this.hookPath), { recursive: true, mode: 0o700 });
    const tmp = `${this.hookPath}.${crypto.randomBytes(8).toString('hex')}.tmp`;
    fs.writeFileSync(tmp, HOOK, { mode: 0o700 });
    fs.renameSync(tmp, this.hookPath);
    for (const d of [this.o.runDir, this.o.cacheDir]) {
      fs.mkdirSync(d, { recursive: true, mode: 0o700 });
      fs.chmodSync(d, 0o700);
    }
    this.realDataDir = fs.realpathSync(this.o.dataDir);
    const v = await runGit(this.o.git, ['--version'], { timeoutMs: 10_000 });
    this.gitVersion = v.stdout.toString().trim();
    fs.rmSync(this.socketPath, { force: true });
    const server = net.createServer((c) => this.accept(c));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.socketPath, () => resolve());
    });
    fs.chmodSync(this.socketPath, 0o600);
    this.server = server;
    this.cleanup();
    this.sweepOrphans();
    this.timer = setInterval(() => this.cleanup(), this.cleanupIntervalMs);
    this.timer.unref();
  }

  /**
   * The `-c` settings and environment of a Palisade-run upload-pack (undefined before `listen`
   * or after `close`): the hook comes only from this protected command-line config, never
   * from a repository's, and the secret only reaches children Palisade starts.
   */
  uploadPackRun(): { config: string[]; env: Record<string, string> } | undefined {
    if (!this.server) return undefined;
    // git runs the hook through the shell: the path is quoted for it
    return {
      config: [`uploadpack.packObjectsHook='${this.hookPath.replace(/'/g, `'\\''`)}'`],
      env: { PALISADE_PACK_SOCKET: this.socketPath, PALISADE_PACK_SECRET: this.secret },
    };
  }

  stats(): PackCacheStats {
    let bytes = 0;
    for (const e of this.entries.values()) bytes += e.size;
    for (const e of this.dying) bytes += e.size;
    return { ...this.counters, entries: this.entries.size + this.dying.size, bytes };
  }

  /** How often this process drops its expired packs (and how often the orphan sweep should run). */
  get cleanupIntervalMs(): number {
    return Math.max(1000, Math.min(this.o.ttlMs / 2, 60_000));
  }

  /**
   * Removes this process's expired packs, then its least recently used ones until the cache is
   * within its bytes. A pack being read is removed when its last reader is done. Its own
   * packs only: every process (node) runs this for itself, on its own timer.
   */
  cleanup(now = Date.now()): void {
    for (const e of this.entries.values()) if (e.done && now - e.finishedAt >= this.o.ttlMs) this.drop(e);
    let total = 0;
    for (const e of this.entries.values()) total += e.size;
    if (total > this.o.maxBytes) {
      const done = [...this.entries.values()].filter((e) => e.done).sort((a, b) => a.usedAt - b.usedAt);
      for (const e of done) {
        if (total <= this.o.maxBytes) break;
        total -= e.size;
        this.drop(e);
      }
    }
  }

  /**
   * Removes files in the cache folder that this process does not know and that are older than
   * the time to live plus the git timeout: left by a process that crashed (or by another node,
   * which has dropped them itself by then; no fetch can still be reading them). Shared
   * background work: on several nodes one claims it per interval.
   */
  sweepOrphans(now = Date.now()): void {
    let names: string[];
    try {
      names = fs.readdirSync(this.o.cacheDir);
    } catch {
      return;
    }
    const known = new Set([...this.entries.values(), ...this.dying].map((e) => path.basename(e.file)));
    for (const n of names) {
      if (known.has(n) || !/^[0-9a-f]{64}\.[0-9a-f]{16}\.pack$/.test(n)) continue;
      const f = path.join(this.o.cacheDir, n);
      try {
        // past its time to live and the longest a git child may read it: nobody follows it now
        // (removing a file still being read would fail that clone on NFS)
        if (now - fs.statSync(f).mtimeMs >= this.o.ttlMs + this.o.timeoutMs) fs.rmSync(f, { force: true });
      } catch {
        /* gone meanwhile */
      }
    }
  }

  /** Stops listening, kills the running pack-objects and removes this process's packs and socket. */
  close(): void {
    clearInterval(this.timer);
    this.server?.close();
    this.server = undefined;
    for (const e of [...this.entries.values(), ...this.dying]) {
      if (e.producer) killGit(e.producer);
      for (const r of e.readers) r.destroy();
      fs.rmSync(e.file, { force: true });
    }
    this.entries.clear();
    this.dying.clear();
    fs.rmSync(this.socketPath, { force: true });
  }

  private drop(e: Entry): void {
    if (this.entries.get(e.key) === e) this.entries.delete(e.key);
    e.dead = true;
    if (e.readers.size === 0) {
      this.dying.delete(e);
      fs.rmSync(e.file, { force: true });
    } else this.dying.add(e);
  }

  /** Reads one request (bounded in bytes and time), then answers it. */
  private accept(c: net.Socket): void {
    c.on('error', () => undefined);
    c.setTimeout(REQUEST_TIMEOUT_MS, () => c.destroy());
    // the head line is gathered in `buf`; the rest in chunks, joined once (no quadratic copying)
    let buf: Buffer = Buffer.alloc(0);
    const chunks: Buffer[] = [];
    let have = 0;
    let need = -1;
    let hdrLen = 0;
    const refuse = (why: string) => this.refuseAnswer(c, why);
    const onData = (d: Buffer) => {
      if (need >= 0) {
        chunks.push(d);
        have += d.length;
      } else buf = buf.length ? Buffer.concat([buf, d]) : d;
      if (need < 0) {
        const nl = buf.indexOf(10);
        if (nl < 0) {
          if (buf.length > 64) {
            c.off('data', onData);
            refuse('malformed');
          }
          return;
        }
        const m = /^palisade-pack-objects 1 (\d{1,9}) (\d{1,12})$/.exec(buf.subarray(0, nl).toString('latin1'));
        if (!m) {
          c.off('data', onData);
          return refuse('malformed');
        }
        hdrLen = Number(m[1]);
        const inLen = Number(m[2]);
        if (hdrLen > MAX_HEADER_BYTES) {
          c.off('data', onData);
          return refuse('header too large');
        }
        if (inLen > MAX_INPUT_BYTES) {
          // authenticate first: only a caller holding the secret learns anything
          c.off('data', onData);
          this.counters.uncached++;
          return void c.end('F input too large\n');
        }
        const rest = buf.subarray(nl + 1);
        chunks.push(rest);
        have = rest.length;
        need = hdrLen + inLen;
      }
      if (have < need) return;
      c.off('data', onData);
      c.setTimeout(0);
      const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      this.answer(c, all.subarray(0, hdrLen), all.subarray(hdrLen, need));
    };
    c.on('data', onData);
  }

  private answer(c: net.Socket, header: Buffer, input: Buffer): void {
    const fields = header.toString('utf8').split('\0');
    const [secret, cwd, gitDir, ...args] = fields;
    const a = Buffer.from(secret ?? '');
    const b = Buffer.from(this.secret);
    if (a.length !== b.length || !crypto.timingSafeEqual(a, b)) return this.refuseAnswer(c, 'secret');
    const repoId = this.repoOf(cwd ?? '', gitDir ?? '');
    if (!repoId) return this.refuseAnswer(c, 'not a repository of this server');
    const gitArgs = this.packArgs(args);
    if (!gitArgs) {
      this.counters.uncached++;
      return void c.end('F arguments\n');
    }
    const key = crypto.createHash('sha256').update(JSON.stringify([this.gitVersion, repoId, gitArgs])).update('\0').update(input).digest('hex');
    let e = this.entries.get(key);
    if (e && (e.dead || (e.done && (e.code !== 0 || Date.now() - e.finishedAt >= this.o.ttlMs)))) {
      this.drop(e);
      e = undefined;
    }
    if (e) {
      if (e.done) this.counters.hits++;
      else this.counters.joined++;
      this.o.log?.('debug', { repoId, key: key.slice(0, 16), done: e.done }, e.done ? 'pack cache: hit' : 'pack cache: joined');
    } else {
      e = this.produce(key, repoId, gitArgs, input);
      if (!e) {
        this.counters.uncached++;
        return void c.end('F cache unavailable\n');
      }
    }
    this.follow(e, c);
  }

  private refuseAnswer(c: net.Socket, why: string): void {
    this.counters.refused++;
    this.o.log?.('warn', { why }, 'pack cache: request refused');
    c.end('X refused\n');
  }

  /**
   * The repository id of the folder a hook says it runs in, or undefined: the folder (GIT_DIR,
   * or the working folder) is resolved and must be exactly a repository folder of this data
   * folder as `repoDir` derives it from an id; nothing else from the socket is a path.
   */
  private repoOf(cwd: string, gitDir: string): string | undefined {
    if (!path.isAbsolute(cwd)) return undefined;
    let real: string;
    try {
      real = fs.realpathSync(path.resolve(cwd, gitDir || '.'));
    } catch {
      return undefined;
    }
    const rel = path.relative(this.realDataDir, real);
    const m = /^repos\/([0-9a-f]{2})\/([0-9a-f-]{36})\.git$/.exec(rel);
    if (!m || !isUuid(m[2]!) || !m[2]!.startsWith(m[1]!)) return undefined;
    return path.join(this.realDataDir, path.relative(this.o.dataDir, repoDir(this.o.dataDir, m[2]!))) === real ? m[2] : undefined;
  }

  /**
   * The git arguments of a pack-objects upload-pack asked for (`git [--shallow-file ''] pack-objects
   * <options>`), without `--progress` (the cached output carries no progress), or undefined when
   * anything is not what upload-pack sends.
   */
  private packArgs(args: string[]): string[] | undefined {
    if (args[0] !== 'git') return undefined;
    const out: string[] = [];
    let i = 1;
    if (args[i] === '--shallow-file' && args[i + 1] === '') {
      out.push('--shallow-file', '');
      i += 2;
    }
    if (args[i] !== 'pack-objects') return undefined;
    out.push('pack-objects');
    for (i++; i < args.length; i++) {
      const a = args[i]!;
      if (!ALLOWED_OPTION.test(a)) return undefined;
      if (a !== '--progress') out.push(a);
    }
    return out;
  }

  /** Starts pack-objects for `key`, its output written to a new file of the cache folder. */
  private produce(key: string, repoId: string, args: string[], input: Buffer): Entry | undefined {
    const dir = repoDir(this.o.dataDir, repoId);
    const file = path.join(this.o.cacheDir, `${key}.${crypto.randomBytes(8).toString('hex')}.pack`);
    let fd: number;
    try {
      fd = fs.openSync(file, 'wx', 0o600);
    } catch (err) {
      this.o.log?.('warn', { err }, 'pack cache: cannot write to the cache folder');
      return undefined;
    }
    const now = Date.now();
    const e: Entry = { key, file, size: 0, done: false, code: null, dead: false, readers: new Set(), producer: undefined, finishedAt: 0, usedAt: now };
    this.entries.set(key, e);
    this.counters.produced++;
    const started = process.hrtime.bigint();
    const child = spawnGit(this.o.git, args, { cwd: dir, env: { GIT_DIR: dir }, timeoutMs: this.o.timeoutMs });
    e.producer = child;
    let failed = false;
    child.stdin!.on('error', () => undefined);
    child.stdin!.end(input);
    child.stderr!.resume();
    child.stdout!.on('data', (d: Buffer) => {
      if (failed) return;
      try {
        // synchronous: page-cache writes of 64 KiB, and a reader told a size finds its bytes
        for (let o = 0; o < d.length; ) o += fs.writeSync(fd, d, o);
      } catch (err) {
        failed = true;
        killGit(child);
        this.o.log?.('warn', { err }, 'pack cache: write failed');
        return;
      }
      e.size += d.length;
      for (const r of e.readers) if (r.writableLength < 256) r.write(`S ${e.size}\n`);
    });
    const finish = (code: number | null) => {
      if (e.done) return;
      try {
        fs.closeSync(fd);
      } catch {
        /* closed */
      }
      e.done = true;
      e.producer = undefined;
      e.code = failed ? 1 : (code ?? 1);
      e.finishedAt = Date.now();
      this.o.log?.('info', { repoId, key: key.slice(0, 16), bytes: e.size, code: e.code, readers: e.readers.size, ms: Number(process.hrtime.bigint() - started) / 1e6 }, 'pack cache: pack-objects done');
      for (const r of e.readers) r.end(`E ${e.size} ${e.code}\n`);
      if (e.code !== 0 || e.size > this.o.maxBytes) this.drop(e);
      this.cleanup();
    };
    child.on('error', () => finish(1));
    child.on('close', (code) => finish(code));
    return e;
  }

  /** Points a hook at the entry's file and tells it the size as it grows, then the end. */
  private follow(e: Entry, c: net.Socket): void {
    e.readers.add(c);
    e.usedAt = Date.now();
    const leave = () => {
      e.readers.delete(c);
      if (e.readers.size) return;
      // nobody follows a pack being written: stop it, it is not worth a process
      if (!e.done && e.producer) {
        killGit(e.producer);
        this.drop(e);
      }
      if (e.dead) this.drop(e);
    };
    // the hook may have gone while its request was read: a closed socket fires no more 'close'
    if (c.destroyed) return leave();
    c.once('close', leave);
    c.write(`P ${e.file}\n`);
    if (e.done) c.end(`E ${e.size} ${e.code}\n`);
    else if (e.size) c.write(`S ${e.size}\n`);
  }
}
