import fs from 'node:fs';
import path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import type { CatFilePool } from './cat-file.ts';
import { type HeadRead, prefixed, readHead } from './push-commands.ts';
import type { GitEnv } from './runner.ts';
import { SKELETON_CONFIG } from './skeleton.ts';
import { pktLine } from './smart-http.ts';

/**
 * Protocol v2 `ls-refs` answered in process, with the bytes `git upload-pack` 2.37–2.39 sends
 * (ls-refs.c, refs/files-backend.c, refs/packed-backend.c): HEAD first (unborn only when the
 * client asked for `unborn` and `symrefs`), then every ref under `refs/` sorted by name, loose
 * refs overriding `packed-refs`, symbolic refs to missing refs left out, `symref-target:` the
 * end of the chain, `peeled:` from the `^` lines of a fully-peeled `packed-refs` or from the
 * tag objects (through the long-lived cat-file readers), `uploadpack.hideRefs` and
 * `transfer.hideRefs` applied. Whatever this code is not sure to answer as git would (a config
 * key it does not know, a ref file it cannot parse, `packed-refs` changing while it reads,
 * a request it does not parse strictly) makes it return undefined: the caller runs git.
 */

/** The arguments of one ls-refs request. */
export interface LsRefsArgs {
  peel: boolean;
  symrefs: boolean;
  unborn: boolean;
  prefixes: string[];
}

/** Beyond these, the refs are left to git (a process under the slot bounds), not read in process. */
export const MAX_PACKED_REFS_BYTES = 1 << 20;
export const MAX_LOOSE_REFS = 2000;

/** The most bytes of an ls-refs request read in process; a longer one goes to git whole. */
export const MAX_LS_REFS_REQUEST = 64 * 1024;

const PRINTABLE = /^[\x20-\x7e]*$/;
const HEX40 = /^[0-9a-f]{40}$/;

/** One pkt-line of a request: a data line (its one trailing newline removed), flush or delim. */
type Pkt = { kind: 'data'; line: string } | { kind: 'flush' } | { kind: 'delim' };

function splitPkts(buf: Buffer): Pkt[] | undefined {
  const out: Pkt[] = [];
  let i = 0;
  while (i < buf.length) {
    if (i + 4 > buf.length) return undefined;
    const h = buf.toString('latin1', i, i + 4);
    if (!/^[0-9a-f]{4}$/.test(h)) return undefined;
    const len = parseInt(h, 16);
    if (len === 0) out.push({ kind: 'flush' });
    else if (len === 1) out.push({ kind: 'delim' });
    else if (len < 5 || i + len > buf.length) return undefined;
    else {
      let line = buf.toString('latin1', i + 4, i + len);
      if (line.endsWith('\n')) line = line.slice(0, -1);
      if (!PRINTABLE.test(line)) return undefined;
      out.push({ kind: 'data', line });
    }
    i += len < 4 ? 4 : len;
  }
  return out;
}

/**
 * The arguments of a whole stateless-RPC request body if it is exactly one `command=ls-refs`
 * with the capabilities git 2.39 accepts from a client here (`agent`, `object-format=sha1`,
 * `server-option`) and the arguments `peel`, `symrefs`, `unborn`, `ref-prefix <p>`, ended by a
 * flush and nothing after; undefined for anything else (git then answers it).
 */
export function parseLsRefsRequest(body: Buffer): LsRefsArgs | undefined {
  if (body.length > MAX_LS_REFS_REQUEST) return undefined;
  const pkts = splitPkts(body);
  if (!pkts) return undefined;
  let i = 0;
  let command = false;
  for (; i < pkts.length; i++) {
    const p = pkts[i]!;
    if (p.kind !== 'data') break;
    if (p.line === 'command=ls-refs' && !command) command = true;
    else if (p.line.startsWith('agent=') || p.line.startsWith('server-option=') || p.line === 'object-format=sha1') continue;
    else return undefined;
  }
  if (!command || i >= pkts.length) return undefined;
  // the capability section ends with a delim (arguments follow) or the request's flush
  const args: LsRefsArgs = { peel: false, symrefs: false, unborn: false, prefixes: [] };
  if (pkts[i]!.kind === 'delim') {
    for (i++; i < pkts.length; i++) {
      const p = pkts[i]!;
      if (p.kind !== 'data') break;
      if (p.line === 'peel') args.peel = true;
      else if (p.line === 'symrefs') args.symrefs = true;
      else if (p.line === 'unborn') args.unborn = true;
      else if (p.line.startsWith('ref-prefix ')) args.prefixes.push(p.line.slice('ref-prefix '.length));
      else return undefined;
    }
  }
  if (i !== pkts.length - 1 || pkts[i]!.kind !== 'flush') return undefined;
  return args;
}

/** git's check_refname_format (without REFNAME_ALLOW_ONELEVEL's extra cases: only `refs/…` reach it). */
export function isGitRefName(name: string): boolean {
  if (!name.startsWith('refs/') || name.length > 4096 || name.includes('\uFFFD')) return false;
  if (/[\x00-\x20\x7f~^:?*[\\]/.test(name) || name.includes('..') || name.includes('@{') || name.includes('//')) return false;
  if (name.endsWith('/') || name.endsWith('.')) return false;
  return !name.split('/').some((c) => c === '' || c.startsWith('.') || c.endsWith('.lock') || c === '@');
}

/** What of a repository's config matters to upload-pack, when every key in it is one this code knows. */
export interface UploadConfig {
  /** `uploadpack.allowFilter` as written (advertised as `fetch=… filter`), or undefined */
  allowFilter: string | undefined;
  /** `uploadpack.hideRefs` and `transfer.hideRefs`, in file order */
  hideRefs: string[];
}

/** Keys that do not change what upload-pack advertises or lists (lower case, `section.key`). */
const IGNORED_KEYS = new Set(['core.filemode', 'core.bare', 'core.logallrefupdates', 'http.receivepack']);
const IGNORED_SECTIONS = new Set(['receive', 'gc']);

/**
 * Parses a repository's `config` strictly (sections without subsections, `key = value` with
 * plain values) and returns what upload-pack reads from it; undefined when the file holds a
 * line or a key this code does not know (an include, `extensions`, `lsrefs.unborn`,
 * `uploadpack.allowRefInWant`, a format version other than 0, …): then git must answer.
 */
export function readUploadConfig(dir: string): UploadConfig | undefined {
  let text: string;
  try {
    text = fs.readFileSync(path.join(dir, 'config'), 'utf8');
  } catch {
    return undefined;
  }
  return parseUploadConfig(text);
}

export function parseUploadConfig(text: string): UploadConfig | undefined {
  const entries = parseConfigEntries(text);
  if (!entries) return undefined;
  const out: UploadConfig = { allowFilter: undefined, hideRefs: [] };
  for (const [key, value] of entries) {
    if (IGNORED_SECTIONS.has(key.slice(0, key.indexOf('.'))) || IGNORED_KEYS.has(key)) continue;
    if (key === 'core.repositoryformatversion' && value === '0') continue;
    if (key === 'uploadpack.allowfilter') out.allowFilter = value;
    else if (key === 'uploadpack.hiderefs' || key === 'transfer.hiderefs') out.hideRefs.push(value.replace(/\/+$/, ''));
    else return undefined;
  }
  return out;
}

/**
 * A config file's entries as `[section.key (lower case), value]` in file order, when every line
 * is a plain `[section]` header, a `key = value` with an unquoted value, a comment or blank;
 * undefined for anything else (subsections, quotes, escapes, continuation lines).
 */
export function parseConfigEntries(text: string): [string, string][] | undefined {
  const out: [string, string][] = [];
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const s = /^\[([A-Za-z0-9-]+)\]$/.exec(line);
    if (s) {
      section = s[1]!.toLowerCase();
      continue;
    }
    const kv = /^([A-Za-z][A-Za-z0-9-]*)\s*=\s*([^"\\;#\s]*(?:[ \t]+[^"\\;#\s]+)*)$/.exec(line);
    if (!kv || !section) return undefined;
    out.push([`${section}.${kv[1]!.toLowerCase()}`, kv[2]!]);
  }
  return out;
}

/** git's ref_is_hidden: the last matching pattern decides; `!` negates, `^` is the full name (no namespaces here). */
export function isHidden(patterns: readonly string[], ref: string): boolean {
  for (let i = patterns.length - 1; i >= 0; i--) {
    let p = patterns[i]!;
    const neg = p.startsWith('!');
    if (neg) p = p.slice(1);
    if (p.startsWith('^')) p = p.slice(1);
    if (ref.startsWith(p) && (ref.length === p.length || ref[p.length] === '/')) return !neg;
  }
  return false;
}

/** A ref as read from disk: an oid, or a symbolic ref's target. */
export type RawRef = { oid: string; symref?: undefined } | { oid?: undefined; symref: string };

export class Doubt extends Error {}
export const doubt = (why: string): never => {
  throw new Doubt(why);
};

/** A loose ref file's content as git writes it: `<oid>\n` or `ref: <name>\n`. */
function parseLoose(content: string): RawRef {
  const m = /^([0-9a-f]{40})\n$/.exec(content);
  if (m) return { oid: m[1]! };
  const s = /^ref: (refs\/[^\n]+)\n$/.exec(content);
  if (s && isGitRefName(s[1]!)) return { symref: s[1]! };
  return doubt('unparseable loose ref');
}

export interface Snapshot {
  loose: Map<string, RawRef>;
  packed: Map<string, { oid: string; peeled: string | undefined }>;
  head: RawRef;
}

function statKey(st: fs.Stats | undefined): string {
  return st ? `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}` : 'none';
}

function statOrUndefined(p: string): fs.Stats | undefined {
  try {
    return fs.statSync(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/**
 * Reads HEAD, the loose refs and `packed-refs` of a bare repository. Loose refs are read
 * before `packed-refs` (so a `pack-refs` running meanwhile cannot hide a ref: it writes the
 * new file before it deletes the loose ones), and `packed-refs` must not change during the
 * read. Synchronous on purpose: a ref folder is a handful of tiny files.
 */
export function snapshot(dir: string): Snapshot {
  if (statOrUndefined(path.join(dir, 'reftable'))) doubt('reftable');
  const packedPath = path.join(dir, 'packed-refs');
  const packedStat = statOrUndefined(packedPath);
  // A large ref set is read by git, in a process that holds a slot: the work done here runs on
  // the event loop without one, so it is kept to what a few milliseconds read.
  if (packedStat && packedStat.size > MAX_PACKED_REFS_BYTES) doubt('packed-refs too large to read in process');
  const before = statKey(packedStat);
  let looseCount = 0;
  const loose = new Map<string, RawRef>();
  const walk = (rel: string): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(path.join(dir, rel), { withFileTypes: true });
    } catch (e) {
      // a folder removed meanwhile (a deleted ref's empty parent) holds no ref
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    for (const e of entries) {
      // as files-backend's loose_fill_ref_dir: dot files and lock files are not refs
      if (e.name.startsWith('.') || e.name.endsWith('.lock')) continue;
      const r = `${rel}/${e.name}`;
      if (e.isDirectory()) walk(r);
      else if (e.isFile()) {
        if (++looseCount > MAX_LOOSE_REFS) doubt('too many loose refs to read in process');
        if (!isGitRefName(r)) doubt('odd loose ref name');
        // the long-lived readers (cat-file) honour replace refs, upload-pack does not: a repository
        // with any is left to git, so a peel read here is always the object's own (notTags relies on it)
        if (r.startsWith('refs/replace/')) doubt('replace refs');
        let content: string;
        try {
          content = fs.readFileSync(path.join(dir, r), 'utf8');
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // deleted since readdir
          throw err;
        }
        loose.set(r, parseLoose(content));
      } else doubt('not a file'); // a symlink (git's legacy symrefs) or anything stranger
    }
  };
  walk('refs');
  let headContent: string;
  try {
    headContent = fs.readFileSync(path.join(dir, 'HEAD'), 'utf8');
  } catch {
    return doubt('no HEAD');
  }
  const head = parseLoose(headContent);
  const packed = new Map<string, { oid: string; peeled: string | undefined }>();
  let fd: number | undefined;
  try {
    fd = fs.openSync(packedPath, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  if (fd !== undefined) {
    let text: string;
    try {
      if (statKey(fs.fstatSync(fd)) !== before) doubt('packed-refs changed');
      text = fs.readFileSync(fd, 'utf8');
    } finally {
      fs.closeSync(fd);
    }
    const lines = text.split('\n');
    if (lines.pop() !== '') doubt('packed-refs without a final newline');
    let last: { oid: string; peeled: string | undefined } | undefined;
    for (const [i, line] of lines.entries()) {
      if (i === 0 && line.startsWith('# pack-refs with:')) {
        // without `fully-peeled`, git peels some packed refs from their objects: not worth copying
        if (!` ${line.slice('# pack-refs with:'.length)} `.includes(' fully-peeled ')) doubt('packed-refs not fully peeled');
        continue;
      }
      if (i === 0) doubt('packed-refs without a header');
      if (line.startsWith('^')) {
        const oid = line.slice(1);
        if (!last || last.peeled !== undefined || !HEX40.test(oid)) doubt('stray peeled line');
        last!.peeled = oid;
        continue;
      }
      const sp = line.indexOf(' ');
      const oid = line.slice(0, sp);
      const name = line.slice(sp + 1);
      if (sp !== 40 || !HEX40.test(oid) || !isGitRefName(name) || packed.has(name)) doubt('odd packed-refs line');
      if (name.startsWith('refs/replace/')) doubt('replace refs');
      last = { oid, peeled: undefined };
      packed.set(name, last);
    }
    if (lines.length && !lines[0]!.startsWith('# pack-refs with:')) doubt('packed-refs without a header');
  } else if (before !== 'none') doubt('packed-refs removed');
  return { loose, packed, head };
}

/**
 * Ref names sorted as git sorts them (by bytes), each name's bytes made once: a sort that made
 * two Buffers per comparison cost millions of allocations on a large ref set.
 */
export function sortRefNames(names: Iterable<string>): string[] {
  return [...names]
    .map((n) => ({ n, b: Buffer.from(n) }))
    .sort((x, y) => Buffer.compare(x.b, y.b))
    .map((x) => x.n);
}

/** One ref as git lists it: its value at the end of its chain, and what packed-refs knew of it. */
export interface ListedRef {
  name: string;
  oid: string;
  /** a loose symbolic ref: the last name of its chain (symref-target) */
  symrefTarget: string | undefined;
  /** the ref came from packed-refs: its `^` line, if any */
  packed: { peeled: string | undefined } | undefined;
}

/**
 * The refs under `refs/` of a snapshot that pass `wanted`, in git's order (by bytes), each at
 * its value: loose over packed, a symbolic ref at its chain's end, a dangling one left out (as
 * git's iterator does). The one listing behind ls-refs and both v0 advertisements.
 */
export function listRefs(s: Snapshot, wanted: (name: string) => boolean): ListedRef[] {
  const out: ListedRef[] = [];
  for (const name of sortRefNames([...new Set([...s.loose.keys(), ...s.packed.keys()])].filter(wanted))) {
    const loose = s.loose.get(name);
    if (loose) {
      const r = resolve(s, loose);
      if (r.oid !== undefined) out.push({ name, oid: r.oid, symrefTarget: loose.symref !== undefined ? r.target : undefined, packed: undefined });
    } else {
      const p = s.packed.get(name)!;
      out.push({ name, oid: p.oid, symrefTarget: undefined, packed: { peeled: p.peeled } });
    }
  }
  return out;
}

/**
 * A one-time computation (the capability texts, on first use: not at start, since the CLI's
 * admin commands build the services too) that a failure leaves to be tried again by a later
 * caller (a timeout under load); callers fall back to git meanwhile.
 */
export function retryingOnce(compute: () => Promise<void>): () => Promise<void> {
  let loading: Promise<void> | undefined;
  return () =>
    (loading ??= compute().catch(() => {
      loading = undefined;
    }));
}

/**
 * Runs `fn` on a new empty repository under git's home, made as every repository is made
 * (skeleton config, HEAD on main), `prepare` adding what the probe needs; removed after. The
 * one-time computations of the capability texts ask the installed git on it.
 */
export async function withProbeRepo<T>(g: GitEnv, name: string, fn: (dir: string) => Promise<T>, prepare: (dir: string) => void = () => undefined): Promise<T> {
  const dir = fs.mkdtempSync(path.join(g.home, `${name}-`));
  try {
    fs.mkdirSync(path.join(dir, 'objects', 'pack'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'refs', 'heads'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'HEAD'), 'ref: refs/heads/main\n');
    fs.writeFileSync(path.join(dir, 'config'), SKELETON_CONFIG);
    prepare(dir);
    return await fn(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** git's SYMREF_MAXDEPTH */
const SYMREF_MAXDEPTH = 5;

/** Follows a ref to its end: the last name of the chain and its oid (undefined: the chain ends at a missing ref). */
export function resolve(s: Snapshot, start: RawRef): { target: string | undefined; oid: string | undefined } {
  let cur = start;
  let target: string | undefined;
  for (let depth = 0; ; depth++) {
    if (cur.oid !== undefined) return { target, oid: cur.oid };
    if (depth >= SYMREF_MAXDEPTH) return doubt('symref chain too deep');
    target = cur.symref;
    const next: RawRef | undefined = s.loose.get(target) ?? (s.packed.has(target) ? { oid: s.packed.get(target)!.oid } : undefined);
    if (!next) return { target, oid: undefined };
    cur = next;
  }
}

/**
 * Object ids known to name something other than a tag. An object's id is its content's hash, so
 * an id read once as a commit (or tree, or blob) is never a tag, in any repository, on any node:
 * the answer for it (no `peeled:`) is the same whether or not a repository holds it, and the
 * refs listed on every fetch need no cat-file round trip for it. A missing object is not
 * remembered (it may arrive later as a tag); tags are read each time. Bounded: cleared when full.
 */
const notTags = new Set<string>();
const MAX_NOT_TAGS = 100_000;

/** The object a tag finally points at (git's peel_object); undefined when `oid` is not a tag or a tag in the chain is missing. */
export async function peelObject(pool: CatFilePool, dir: string, oid: string): Promise<string | undefined> {
  if (notTags.has(oid)) return undefined;
  let obj = await pool.read(dir, oid);
  if (obj && obj.type !== 'tag') {
    if (notTags.size >= MAX_NOT_TAGS) notTags.clear();
    notTags.add(oid);
  }
  for (let depth = 0; obj && obj.type === 'tag'; depth++) {
    if (depth > 16) doubt('tag chain too long');
    const m = /^object ([0-9a-f]{40})\ntype ([a-z]+)\n/.exec(obj.content.toString('latin1'));
    if (!m) return doubt('unparseable tag');
    if (m[2] !== 'tag') return m[1];
    const next = await pool.read(dir, m[1]!);
    // a tag naming a tag that is something else: parse_object would fail on the type
    if (next && next.type !== 'tag') return doubt('tag type mismatch');
    obj = next;
  }
  return undefined;
}

const startsWithAny = (prefixes: readonly string[], name: string) => prefixes.length === 0 || prefixes.some((p) => name.startsWith(p));

/** The largest pkt-line payload git writes (LARGE_PACKET_DATA_MAX). */
const MAX_PKT_DATA = 65516;

/**
 * The ls-refs answer for `args` from the repository at `dir` (whose config `cfg` was read by
 * readUploadConfig), pkt-lines and the closing flush; undefined when git must answer.
 */
export async function lsRefs(dir: string, cfg: UploadConfig, pool: CatFilePool, args: LsRefsArgs): Promise<Buffer | undefined> {
  try {
    return await answer(dir, cfg, pool, args);
  } catch {
    // a doubt, a file-system error, a cat-file reader gone: git answers instead
    return undefined;
  }
}

async function answer(dir: string, cfg: UploadConfig, pool: CatFilePool, args: LsRefsArgs): Promise<Buffer> {
  const s = snapshot(dir);
  // git keeps at most 65536 prefixes and ignores them all beyond; a request that large is not read here
  if (args.prefixes.length >= 65536) doubt('too many prefixes');
  const wanted = (name: string) => !isHidden(cfg.hideRefs, name) && startsWithAny(args.prefixes, name);
  const lines: Promise<string | undefined>[] = [];

  // HEAD: sent without checking that its object exists (send_possibly_unborn_head)
  const head = resolve(s, s.head);
  if (wanted('HEAD') && (head.oid !== undefined || (args.unborn && args.symrefs && s.head.symref !== undefined))) {
    let line = head.oid !== undefined ? `${head.oid} HEAD` : 'unborn HEAD';
    if (args.symrefs && s.head.symref !== undefined) line += ` symref-target:${head.target}`;
    const oid = head.oid;
    lines.push(args.peel && oid !== undefined ? peelObject(pool, dir, oid).then((p) => (p ? `${line} peeled:${p}` : line)) : Promise.resolve(line));
  }

  for (const { name, oid, symrefTarget, packed } of listRefs(s, wanted)) {
    let line = `${oid} ${name}`;
    if (args.symrefs && symrefTarget !== undefined) line += ` symref-target:${symrefTarget}`;
    // A ref whose object is missing is listed all the same: git 2.36+ iterates refs with
    // GIT_REF_PARANOIA on (broken refs included, dangling symrefs left out), as the tests show.
    if (!args.peel) lines.push(Promise.resolve(line));
    else if (packed) lines.push(Promise.resolve(packed.peeled ? `${line} peeled:${packed.peeled}` : line));
    else lines.push(peelObject(pool, dir, oid).then((p) => (p ? `${line} peeled:${p}` : line)));
  }
  const out: Buffer[] = [];
  for (const l of await Promise.all(lines)) {
    if (l === undefined) continue;
    if (Buffer.byteLength(l) + 1 > MAX_PKT_DATA) doubt('ref line too long');
    out.push(pktLine(`${l}\n`));
  }
  out.push(Buffer.from('0000'));
  return Buffer.concat(out);
}

/**
 * A v2 request body read far enough to know whether it is an ls-refs this code may answer:
 * `complete`: the whole body was read (at most MAX_LS_REFS_REQUEST bytes) and its first line is
 * `command=ls-refs`; `other`: another command, or a body too long (the rest is still in the
 * input); `aborted`: the input failed, went quiet or the call was aborted.
 */
export type LsRefsHead = HeadRead<'complete' | 'other'>;

const LS_REFS_LINE = Buffer.from('0014command=ls-refs\n');

/**
 * Reads the start of a v2 upload-pack request: as soon as its first pkt-line is not
 * `command=ls-refs` (a fetch, whose negotiation git must read), or the body passes
 * MAX_LS_REFS_REQUEST, it stops and says `other`; otherwise it reads to the body's end. The
 * input is left paused.
 */
export function readLsRefsHead(input: Readable, o: { idleMs: number; signal: AbortSignal }): Promise<LsRefsHead> {
  return readHead<'complete' | 'other'>(
    input,
    o,
    (d, chunks, size) => {
      if (size > MAX_LS_REFS_REQUEST) return 'other';
      // the first line decides: compare what has arrived of it, until all of it has
      if (size - d.length >= LS_REFS_LINE.length) return undefined;
      const head = chunks.length === 1 ? d : Buffer.concat(chunks);
      const n = Math.min(head.length, LS_REFS_LINE.length);
      return head.subarray(0, n).equals(LS_REFS_LINE.subarray(0, n)) ? undefined : 'other';
    },
    (size) => (size >= LS_REFS_LINE.length ? 'complete' : 'other'),
  );
}

/** The request as git should read it: what `readLsRefsHead` took, then the rest of `input` (if it had not ended). */
export function requestStream(head: LsRefsHead, input: Readable): Readable {
  if (!head.ended) return prefixed(head.buffered, input);
  const out = new PassThrough();
  out.end(head.buffered);
  return out;
}
