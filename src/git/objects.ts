import crypto from 'node:crypto';
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';
import { promisify } from 'node:util';

const deflate = promisify(zlib.deflate);

export type ObjectType = 'blob' | 'tree' | 'commit' | 'tag';

/** The object id git would give `content` of `type` (SHA-1 repositories). */
export function objectId(type: ObjectType, content: Buffer): string {
  return crypto.createHash('sha1').update(`${type} ${content.length}\0`).update(content).digest('hex');
}

/**
 * Writes a loose object exactly as `git hash-object -w` does (zlib of
 * "type size\0content" at objects/xx/rest), atomically via a temp file and a
 * link that fails if the object is already there. Returns its id.
 */
export async function writeObject(gitDir: string, type: ObjectType, content: Buffer): Promise<string> {
  const oid = objectId(type, content);
  const dir = path.join(gitDir, 'objects', oid.slice(0, 2));
  const file = path.join(dir, oid.slice(2));
  // Small objects (nearly all of them) are written synchronously: five thread-pool
  // round trips cost about a millisecond each, the synchronous calls tens of microseconds.
  if (content.length < 256 * 1024) return writeSmall(oid, type, content, dir, file);
  try {
    await fs.access(file);
    return oid;
  } catch {
    /* not there yet */
  }
  const data = await deflate(Buffer.concat([Buffer.from(`${type} ${content.length}\0`), content]), { level: 1 });
  await fs.mkdir(dir, { recursive: true });
  const tmp = path.join(dir, `tmp_obj_${crypto.randomBytes(6).toString('hex')}`);
  await fs.writeFile(tmp, data, { mode: 0o444 });
  try {
    await fs.link(tmp, file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  } finally {
    await fs.unlink(tmp).catch(() => undefined);
  }
  return oid;
}

let tmpCounter = 0;
const madeDirs = new Set<string>();

function writeSmall(oid: string, type: ObjectType, content: Buffer, dir: string, file: string): string {
  if (fsSync.existsSync(file)) return oid;
  const data = zlib.deflateSync(Buffer.concat([Buffer.from(`${type} ${content.length}\0`), content]), { level: 1 });
  if (!madeDirs.has(dir)) {
    fsSync.mkdirSync(dir, { recursive: true });
    if (madeDirs.size > 100_000) madeDirs.clear();
    madeDirs.add(dir);
  }
  const tmp = path.join(dir, `tmp_obj_${process.pid}_${++tmpCounter}`);
  try {
    fsSync.writeFileSync(tmp, data, { mode: 0o444, flag: 'wx' });
  } catch (e) {
    // the folder was removed (repository deleted and re-created): make it again once
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    madeDirs.delete(dir);
    fsSync.mkdirSync(dir, { recursive: true });
    fsSync.writeFileSync(tmp, data, { mode: 0o444, flag: 'wx' });
  }
  // rename is atomic and replaces an identical object if another writer got there first
  fsSync.renameSync(tmp, file);
  return oid;
}

export interface TreeEntry {
  mode: string;
  name: string;
  oid: string;
}

/** Parses git's binary tree format. */
export function parseTree(buf: Buffer): TreeEntry[] {
  const out: TreeEntry[] = [];
  let i = 0;
  while (i < buf.length) {
    const sp = buf.indexOf(0x20, i);
    const nul = buf.indexOf(0, sp);
    out.push({ mode: buf.toString('latin1', i, sp), name: buf.toString('utf8', sp + 1, nul), oid: buf.toString('hex', nul + 1, nul + 21) });
    i = nul + 21;
  }
  return out;
}

/** Sort key git uses for tree entries: folders compare as if their name ended in "/". */
const sortKey = (e: TreeEntry) => (e.mode === '40000' ? `${e.name}/` : e.name);

/** Serialises tree entries in git's order. */
export function formatTree(entries: TreeEntry[]): Buffer {
  const sorted = [...entries].sort((a, b) => {
    const ka = Buffer.from(sortKey(a));
    const kb = Buffer.from(sortKey(b));
    return Buffer.compare(ka, kb);
  });
  return Buffer.concat(sorted.flatMap((e) => [Buffer.from(`${e.mode} ${e.name}\0`), Buffer.from(e.oid, 'hex')]));
}

export interface Signature {
  name: string;
  email: string;
  /** ISO 8601 */
  date: string;
}

export interface CommitInfo {
  sha: string;
  tree: string;
  parents: string[];
  author: Signature;
  committer: Signature;
  message: string;
}

function parseSignature(v: string): Signature {
  const m = /^(.*) <(.*)> (\d+) ([+-]\d{4})$/.exec(v);
  if (!m) return { name: v, email: '', date: new Date(0).toISOString() };
  return { name: m[1]!, email: m[2]!, date: new Date(Number(m[3]) * 1000).toISOString() };
}

/** Parses a commit object's text. */
export function parseCommit(sha: string, buf: Buffer): CommitInfo {
  const text = buf.toString('utf8');
  const split = text.indexOf('\n\n');
  const head = split < 0 ? text : text.slice(0, split);
  const message = split < 0 ? '' : text.slice(split + 2);
  const c: CommitInfo = { sha, tree: '', parents: [], author: parseSignature(''), committer: parseSignature(''), message };
  for (const line of head.split('\n')) {
    const sp = line.indexOf(' ');
    const key = line.slice(0, sp);
    const val = line.slice(sp + 1);
    if (key === 'tree') c.tree = val;
    else if (key === 'parent') c.parents.push(val);
    else if (key === 'author') c.author = parseSignature(val);
    else if (key === 'committer') c.committer = parseSignature(val);
  }
  return c;
}

export interface TagInfo {
  sha: string;
  name: string;
  target: string;
  targetType: string;
  tagger: Signature | null;
  message: string;
}

/** Parses an annotated tag object's text. */
export function parseTag(sha: string, buf: Buffer): TagInfo {
  const text = buf.toString('utf8');
  const split = text.indexOf('\n\n');
  const head = split < 0 ? text : text.slice(0, split);
  const t: TagInfo = { sha, name: '', target: '', targetType: 'commit', tagger: null, message: split < 0 ? '' : text.slice(split + 2) };
  for (const line of head.split('\n')) {
    const sp = line.indexOf(' ');
    const key = line.slice(0, sp);
    const val = line.slice(sp + 1);
    if (key === 'object') t.target = val;
    else if (key === 'type') t.targetType = val;
    else if (key === 'tag') t.name = val;
    else if (key === 'tagger') t.tagger = parseSignature(val);
  }
  return t;
}

function gitDate(d: Date): string {
  return `${Math.floor(d.getTime() / 1000)} +0000`;
}

/** Serialises a commit object. Names and emails must not hold `<`, `>` or newlines (checked by callers). */
export function formatCommit(c: { tree: string; parents: string[]; author: { name: string; email: string }; committer: { name: string; email: string }; message: string; date: Date }): Buffer {
  const lines = [`tree ${c.tree}`, ...c.parents.map((p) => `parent ${p}`), `author ${c.author.name} <${c.author.email}> ${gitDate(c.date)}`, `committer ${c.committer.name} <${c.committer.email}> ${gitDate(c.date)}`];
  const msg = c.message.endsWith('\n') ? c.message : `${c.message}\n`;
  return Buffer.from(`${lines.join('\n')}\n\n${msg}`);
}

export const EMPTY_TREE = '4b825dc642cb6eb9a060e54bf8d69288fbee4904';
export const ZERO_OID = '0000000000000000000000000000000000000000';
export const isOid = (s: string): boolean => /^[0-9a-f]{40}$/.test(s);
