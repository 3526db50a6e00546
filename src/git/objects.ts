import crypto from 'node:crypto';

export type ObjectType = 'blob' | 'tree' | 'commit' | 'tag';

/** The object id git would give `content` of `type` (SHA-1 repositories). */
export function objectId(type: ObjectType, content: Buffer): string {
  return crypto.createHash('sha1').update(`${type} ${content.length}\0`).update(content).digest('hex');
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
