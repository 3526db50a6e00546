import type { ChildProcess } from 'node:child_process';
import { ZERO_OID } from './objects.ts';
import { type GitEnv, spawnGit } from './runner.ts';

const REF_RE = /^refs\/(heads|tags)\/[^\s~^:?*[\\]+$/;
const LOST_RACE = /cannot lock ref|is at .* but expected|already exists|unable to resolve reference|reference is missing/i;

/**
 * A long-lived `git update-ref --stdin` for one repository. Each call is one
 * transaction (start / update <ref> <new> <old> / prepare / commit): git takes
 * the ref's lock and checks the old value, so every change is a
 * compare-and-swap, without a process start per commit. A failed prepare
 * ends the process (git's behaviour); the next call starts a new one.
 */
class Updater {
  private readonly child: ChildProcess;
  private out = '';
  private err = '';
  private waiting: ((line: string | null) => void) | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  dead = false;
  lastUsed = Date.now();

  constructor(g: GitEnv, dir: string) {
    this.child = spawnGit(g, ['--git-dir', dir, 'update-ref', '--stdin'], { timeoutMs: 24 * 3600 * 1000 });
    this.child.stdout!.setEncoding('utf8');
    this.child.stdout!.on('data', (d: string) => {
      this.out += d;
      this.pump();
    });
    this.child.stderr!.on('data', (d: Buffer) => {
      if (this.err.length < 4096) this.err += d.toString('utf8');
    });
    this.child.stdin!.on('error', () => undefined);
    const end = () => {
      this.dead = true;
      this.pump();
    };
    this.child.on('close', end);
    this.child.on('error', end);
  }

  private pump(): void {
    if (!this.waiting) return;
    const nl = this.out.indexOf('\n');
    if (nl >= 0) {
      const line = this.out.slice(0, nl);
      this.out = this.out.slice(nl + 1);
      const w = this.waiting;
      this.waiting = undefined;
      w(line);
    } else if (this.dead) {
      const w = this.waiting;
      this.waiting = undefined;
      w(null);
    }
  }

  private nextLine(): Promise<string | null> {
    return new Promise((resolve) => {
      this.waiting = resolve;
      this.pump();
    });
  }

  /** Runs one transaction; false when the ref was not at `oldOid`. */
  cas(ref: string, newOid: string, oldOid: string): Promise<boolean> {
    const run = async (): Promise<boolean> => {
      this.lastUsed = Date.now();
      if (this.dead) throw new Error('update-ref process is gone');
      const cmd = newOid === ZERO_OID ? `delete ${ref} ${oldOid}` : `update ${ref} ${newOid} ${oldOid}`;
      this.child.stdin!.write(`start\n${cmd}\nprepare\ncommit\n`);
      for (const want of ['start: ok', 'prepare: ok', 'commit: ok']) {
        const line = await this.nextLine();
        if (line === want) continue;
        this.dead = true;
        // git reports the lost race on stderr as it exits; wait for the exit so the text is complete
        await new Promise<void>((r) => (this.child.exitCode !== null || this.child.signalCode !== null ? r() : this.child.once('close', () => r())));
        if (LOST_RACE.test(this.err)) return false;
        throw new Error(`git update-ref failed: ${(line ?? this.err).trim().slice(0, 500)}`);
      }
      return true;
    };
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => undefined);
    return p;
  }

  close(): void {
    this.dead = true;
    this.child.stdin!.end();
  }
}

const updaters = new Map<string, Updater>();
const sweeper = setInterval(() => {
  const now = Date.now();
  for (const [dir, u] of updaters)
    if (u.dead || now - u.lastUsed > 60_000) {
      u.close();
      updaters.delete(dir);
    }
}, 10_000);
sweeper.unref();

/**
 * Moves `ref` from `oldOid` (ZERO_OID: must not exist) to `newOid`
 * (ZERO_OID: delete) as a compare-and-swap through `git update-ref`.
 * Returns false when the ref had moved (or been created) meanwhile.
 */
export async function casRef(g: GitEnv, dir: string, ref: string, newOid: string, oldOid: string): Promise<boolean> {
  if (!REF_RE.test(ref) || ref.includes('..')) throw new Error('refusing to update an odd ref name');
  for (let attempt = 0; ; attempt++) {
    let u = updaters.get(dir);
    if (!u || u.dead) {
      u = new Updater(g, dir);
      updaters.set(dir, u);
    }
    try {
      return await u.cas(ref, newOid, oldOid);
    } catch (e) {
      // A process that died between calls (idle sweep, killed): one retry with a fresh one.
      if (attempt === 0 && /process is gone/.test((e as Error).message)) continue;
      throw e;
    }
  }
}

/** Ends every updater (shutdown). */
export function closeRefUpdaters(): void {
  for (const u of updaters.values()) u.close();
  updaters.clear();
}
