import fs from 'node:fs';
import path from 'node:path';

/**
 * Reads a bare repository's refs straight from disk (loose refs override
 * `packed-refs`), for listings where starting `git for-each-ref` per
 * repository would cost more than the answer. Returns full ref name -> oid.
 */
export async function readRefs(dir: string, prefix: string): Promise<Map<string, string>> {
  // Synchronous on purpose: a ref folder is a handful of tiny files, and a thread-pool
  // round trip per file costs more than reading them all.
  const out = new Map<string, string>();
  for (const [name, oid] of readPacked(dir)) if (name.startsWith(prefix)) out.set(name, oid);
  const walk = (rel: string): void => {
    let entries;
    try {
      entries = fs.readdirSync(path.join(dir, rel), { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const r = `${rel}/${e.name}`;
      if (e.isDirectory()) walk(r);
      else if (e.isFile() && !e.name.endsWith('.lock')) {
        let v = '';
        try {
          v = fs.readFileSync(path.join(dir, r), 'utf8').trim();
        } catch {
          continue; // deleted between readdir and read
        }
        if (/^[0-9a-f]{40,64}$/.test(v)) out.set(r, v);
      }
    }
  };
  walk(prefix.slice(0, -1));
  return out;
}

/** A ref name safe to read as a path under the repository folder: `refs/…`, git's forbidden forms excluded. */
function isReadableRef(ref: string): boolean {
  if (!ref.startsWith('refs/') || ref.length > 1024) return false;
  if (/[\x00-\x20\x7f~^:?*[\\]/.test(ref) || ref.includes('..') || ref.includes('@{') || ref.includes('//')) return false;
  if (ref.endsWith('/') || ref.endsWith('.') || ref.endsWith('.lock')) return false;
  return !ref.split('/').some((p) => p.startsWith('.'));
}

/**
 * The value of one ref on disk (its loose file, else its `packed-refs` line), or
 * undefined when it does not exist, is symbolic, or is not a well-formed ref name.
 */
export function readRef(dir: string, ref: string): string | undefined {
  return readRefsNamed(dir, [ref]).get(ref);
}

/**
 * The values of the named refs, as readRef gives each (those missing, symbolic or not
 * well-formed are absent), reading `packed-refs` at most once however many refs are asked:
 * a push's refs after receive-pack, a mirror push's thousands among them.
 */
export function readRefsNamed(dir: string, refs: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  // Every loose file first, then `packed-refs` once for those that had none: `pack-refs`
  // writes the new `packed-refs` before it deletes the loose files, so a ref is always found
  // in one of the two when they are read in this order (a detached gc may run right now).
  const missed: string[] = [];
  for (const ref of refs) {
    const loose = readLoose(dir, ref);
    if (loose === null) continue;
    if (loose !== undefined) out.set(ref, loose);
    else missed.push(ref);
  }
  if (missed.length) {
    const packed = readPacked(dir);
    for (const ref of missed) {
      const v = packed.get(ref);
      if (v !== undefined) out.set(ref, v);
    }
  }
  return out;
}

/** A loose ref's oid; undefined when there is no loose file (look in packed-refs); null when the ref cannot be read at all. */
function readLoose(dir: string, ref: string): string | undefined | null {
  if (!isReadableRef(ref)) return null;
  try {
    const v = fs.readFileSync(path.join(dir, ref), 'utf8').trim();
    // a loose file that is not an oid (a symbolic ref) hides its packed value, as before
    return /^[0-9a-f]{40,64}$/.test(v) ? v : null;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'EISDIR' && code !== 'ENOTDIR') throw e;
  }
  return undefined;
}

/** `packed-refs` as ref -> oid (peeled lines skipped); empty when there is none. */
function readPacked(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  let text: string;
  try {
    text = fs.readFileSync(path.join(dir, 'packed-refs'), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return out;
    throw e;
  }
  for (const line of text.split('\n')) {
    if (!line || line[0] === '#' || line[0] === '^') continue;
    const sp = line.indexOf(' ');
    if (sp > 0) out.set(line.slice(sp + 1), line.slice(0, sp));
  }
  return out;
}
