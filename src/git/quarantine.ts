import fs from 'node:fs/promises';
import path from 'node:path';

/**
 * receive-pack writes an incoming push into `objects/tmp_objdir-incoming-*`
 * (older git: `objects/incoming-*`) and moves it into place only when the
 * push is accepted. A process killed with SIGKILL cannot clean up, and each
 * leftover can be as large as the largest push allowed.
 */
const isQuarantine = (name: string) => name.startsWith('tmp_objdir-incoming-') || name.startsWith('incoming-');

/**
 * Removes the quarantine folders of pushes from a repository folder, as long
 * as `busy()` (asked before each removal) says no push of it is running: a
 * push that starts meanwhile keeps its folder. Returns how many it removed.
 */
export async function sweepQuarantine(gitDir: string, busy: () => boolean): Promise<number> {
  let names: string[];
  try {
    names = await fs.readdir(path.join(gitDir, 'objects'));
  } catch {
    return 0; // the repository went away
  }
  let removed = 0;
  for (const name of names.filter(isQuarantine)) {
    if (busy()) break;
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
