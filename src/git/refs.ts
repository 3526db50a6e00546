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
  try {
    const packed = fs.readFileSync(path.join(dir, 'packed-refs'), 'utf8');
    for (const line of packed.split('\n')) {
      if (!line || line[0] === '#' || line[0] === '^') continue;
      const sp = line.indexOf(' ');
      const name = line.slice(sp + 1);
      if (name.startsWith(prefix)) out.set(name, line.slice(0, sp));
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
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
  if (!isReadableRef(ref)) return undefined;
  try {
    const v = fs.readFileSync(path.join(dir, ref), 'utf8').trim();
    return /^[0-9a-f]{40,64}$/.test(v) ? v : undefined;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'EISDIR' && code !== 'ENOTDIR') throw e;
  }
  let packed: string;
  try {
    packed = fs.readFileSync(path.join(dir, 'packed-refs'), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  for (const line of packed.split('\n')) {
    if (line.endsWith(` ${ref}`) && line.length === line.indexOf(' ') + 1 + ref.length) return line.slice(0, line.indexOf(' '));
  }
  return undefined;
}
