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
