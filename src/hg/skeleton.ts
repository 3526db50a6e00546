import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { isUuid } from '../domain/validate.ts';
import { type HgEnv, runHg } from './runner.ts';

/** A Mercurial repository's folder, from its id only: `DATA/repos/<2 hex>/<id>.hg` (its store in `.hg/`). */
export function hgRepoDir(dataDir: string, repoId: string): string {
  if (!isUuid(repoId)) throw new Error('repository id is not a UUID');
  return path.join(dataDir, 'repos', repoId.slice(0, 2), `${repoId}.hg`);
}

/** The files `hg init` writes (relative to the repository's root), as the installed hg writes them. */
let template: Map<string, Buffer> | undefined;

/**
 * Reads (once per process) what `hg init` writes with the installed Mercurial: the `requires`
 * files (their features depend on the hg version) and the placeholder changelog. A process start
 * of `hg init` costs ~100 ms; copying its three small files costs well under one.
 */
async function initTemplate(h: HgEnv, scratch: string): Promise<Map<string, Buffer>> {
  if (template) return template;
  const dir = path.join(scratch, `hg-template-${process.pid}-${crypto.randomBytes(4).toString('hex')}`);
  fs.mkdirSync(scratch, { recursive: true });
  try {
    const r = await runHg(h, ['init', dir], { timeoutMs: 60_000 });
    if (r.code !== 0) throw new Error('hg init failed: is Mercurial installed?');
    const files = new Map<string, Buffer>();
    const walk = (rel: string) => {
      for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
        const r2 = path.join(rel, e.name);
        if (e.isDirectory()) walk(r2);
        else files.set(r2, fs.readFileSync(path.join(dir, r2)));
      }
    };
    walk('.hg');
    template = files;
    return files;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Creates an empty Mercurial repository at its folder: the files of the installed hg's own
 * `hg init`, assembled in a scratch folder and renamed into place (a crash never leaves a
 * half-made repository at the final path).
 */
export async function createHgRepo(h: HgEnv, dataDir: string, repoId: string): Promise<string> {
  const scratch = path.join(dataDir, 'repos', '.scratch');
  const files = await initTemplate(h, scratch);
  const final = hgRepoDir(dataDir, repoId);
  const tmp = path.join(scratch, `${repoId}.${crypto.randomBytes(4).toString('hex')}`);
  for (const [rel, content] of files) {
    fs.mkdirSync(path.join(tmp, path.dirname(rel)), { recursive: true });
    fs.writeFileSync(path.join(tmp, rel), content);
  }
  fs.mkdirSync(path.join(tmp, '.hg', 'store'), { recursive: true });
  fs.mkdirSync(path.dirname(final), { recursive: true });
  fs.renameSync(tmp, final);
  return final;
}
