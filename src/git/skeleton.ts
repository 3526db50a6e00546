import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import crypto from 'node:crypto';
import { repoDir, scratchDir } from './repo-path.ts';

/** The config every repository is created with (the v2 advertisement served from memory is git's answer for it). */
export const SKELETON_CONFIG = `[core]
\trepositoryformatversion = 0
\tfilemode = true
\tbare = true
\tlogallrefupdates = false
[uploadpack]
\tallowFilter = true
\thideRefs = refs/palisade-sync
[receive]
\tdenyNonFastForwards = false
\thideRefs = refs/palisade-sync
`;

/**
 * Creates an empty bare repository by writing the few files `git init --bare`
 * would (HEAD, config, objects/, refs/), without starting a process. It is
 * assembled in a scratch folder and renamed into place, so a crash never
 * leaves a half-made repository at the final path.
 */
export async function createBareRepo(dataDir: string, repoId: string, defaultBranch: string): Promise<string> {
  const final = repoDir(dataDir, repoId);
  const tmp = path.join(scratchDir(dataDir), `${repoId}.${crypto.randomBytes(4).toString('hex')}`);
  // Synchronous on purpose: a dozen tiny file-system calls cost less than as many
  // thread-pool round trips (create repository: 4.7 ms median before, see BENCHMARKS.md).
  fsSync.mkdirSync(path.join(tmp, 'objects', 'pack'), { recursive: true });
  fsSync.mkdirSync(path.join(tmp, 'objects', 'info'));
  fsSync.mkdirSync(path.join(tmp, 'refs', 'heads'), { recursive: true });
  fsSync.mkdirSync(path.join(tmp, 'refs', 'tags'));
  fsSync.mkdirSync(path.join(tmp, 'info'));
  fsSync.writeFileSync(path.join(tmp, 'HEAD'), `ref: refs/heads/${defaultBranch}\n`);
  fsSync.writeFileSync(path.join(tmp, 'config'), SKELETON_CONFIG);
  fsSync.writeFileSync(path.join(tmp, 'description'), 'Palisade repository\n');
  fsSync.mkdirSync(path.dirname(final), { recursive: true });
  fsSync.renameSync(tmp, final);
  return final;
}

/** Points HEAD at another branch. */
export async function setHead(dataDir: string, repoId: string, branch: string): Promise<void> {
  const dir = repoDir(dataDir, repoId);
  const tmp = path.join(dir, `HEAD.${crypto.randomBytes(4).toString('hex')}.tmp`);
  await fs.writeFile(tmp, `ref: refs/heads/${branch}\n`);
  await fs.rename(tmp, path.join(dir, 'HEAD'));
}

/** Removes a repository's folder (a git one unless `dir` says which): renamed away first (instant), then deleted. */
export async function removeRepo(dataDir: string, repoId: string, dir: string = repoDir(dataDir, repoId)): Promise<void> {
  const trash = path.join(scratchDir(dataDir), `deleted-${repoId}.${crypto.randomBytes(4).toString('hex')}`);
  await fs.mkdir(scratchDir(dataDir), { recursive: true });
  try {
    await fs.rename(dir, trash);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  await fs.rm(trash, { recursive: true, force: true });
}
