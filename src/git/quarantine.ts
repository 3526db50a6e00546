import fs from 'node:fs/promises';
import path from 'node:path';

/**
 * receive-pack writes an incoming push into `objects/tmp_objdir-incoming-*`
 * (older git: `objects/incoming-*`) and moves it into place only when the
 * push is accepted. A process killed with SIGKILL cannot clean up, and each
 * leftover can be as large as the largest push allowed.
 */
const isQuarantine = (name: string) => name.startsWith('tmp_objdir-incoming-') || name.startsWith('incoming-');

/** The newest modification time in a quarantine folder (itself, its files, one level of sub-folders: `pack/`). */
async function newestChange(dir: string): Promise<number> {
  let newest = 0;
  const visit = async (p: string, depth: number) => {
    const st = await fs.stat(p).catch(() => undefined);
    if (!st) return;
    newest = Math.max(newest, st.mtimeMs);
    if (st.isDirectory() && depth < 2) for (const n of await fs.readdir(p).catch(() => [] as string[])) await visit(path.join(p, n), depth + 1);
  };
  await visit(dir, 0);
  return newest;
}

/**
 * Removes the quarantine folders of pushes from a repository folder, as long
 * as `busy()` (asked before each removal) says no push of it is running here: a
 * push that starts meanwhile keeps its folder. With `graceMs`, a folder changed
 * within it is left alone: on a data folder several nodes share, it may be
 * another node's push in flight (a live push writes while its body arrives, and
 * a body idle longer than its timeout ends the push). Returns how many it removed.
 */
export async function sweepQuarantine(gitDir: string, busy: () => boolean, graceMs = 0): Promise<number> {
  let names: string[];
  try {
    names = await fs.readdir(path.join(gitDir, 'objects'));
  } catch {
    return 0; // the repository went away
  }
  let removed = 0;
  for (const name of names.filter(isQuarantine)) {
    if (busy()) break;
    if (graceMs > 0 && Date.now() - (await newestChange(path.join(gitDir, 'objects', name))) < graceMs) continue;
    await fs.rm(path.join(gitDir, 'objects', name), { recursive: true, force: true });
    removed++;
  }
  return removed;
}

/** Every repository folder under `DATA/repos/<2 hex>/`, one at a time. */
export async function* repoDirs(dataDir: string): AsyncGenerator<string> {
  const root = path.join(dataDir, 'repos');
  let shards: string[];
  try {
    shards = await fs.readdir(root);
  } catch {
    return;
  }
  for (const shard of shards.filter((s) => /^[0-9a-f]{2}$/.test(s)).sort()) {
    let repos: string[];
    try {
      repos = await fs.readdir(path.join(root, shard));
    } catch {
      continue;
    }
    for (const r of repos) if (r.endsWith('.git')) yield path.join(root, shard, r);
  }
}
