import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Launchers } from './launcher.ts';
import type { Readable } from 'node:stream';

/**
 * The one way Palisade starts git. Flags are literals written here or by the
 * caller; no user value may start with `-` (checked); the environment is
 * pinned so that no system or user config, prompt or locale leaks in.
 */
export interface GitEnv {
  /** a folder git may use as HOME; never a user's home */
  home: string;
}

export function gitEnv(g: GitEnv, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: g.home,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_TERMINAL_PROMPT: '0',
    GIT_ASKPASS: '',
    LC_ALL: 'C',
    ...extra,
  };
}

/**
 * The git program on PATH, found once per PATH: a spawn by name makes the child try every PATH
 * folder before git's (measured: eight failed execs per git child on a developer's machine).
 */
let found: { path: string | undefined; git: string; at: number } | undefined;
const launchers = new Launchers();

/** Lets the waiting git launchers go (at shutdown). */
export function closeLaunchers(): void {
  launchers.close();
}

function gitProgram(): string {
  const PATH = process.env.PATH ?? '/usr/bin:/bin';
  // found again when PATH changes, and once a minute (a git installed or removed since)
  if (found?.path !== PATH || Date.now() - found.at > 60_000) {
    let git = 'git';
    for (const dir of PATH.split(':')) {
      if (!dir.startsWith('/')) break; // a relative entry depends on the cwd: the search is left to the spawn
      const candidate = path.join(dir, 'git');
      try {
        if (fs.statSync(candidate).isFile()) {
          fs.accessSync(candidate, fs.constants.X_OK);
          git = candidate;
          break;
        }
      } catch {
        /* not here */
      }
    }
    found = { path: PATH, git, at: Date.now() };
  }
  return found.git;
}

export interface SpawnOptions {
  cwd?: string;
  env?: Record<string, string>;
  /** kill the child after this many milliseconds */
  timeoutMs: number;
  signal?: AbortSignal;
}

function checkArgs(args: readonly string[], userArgs: readonly string[]): void {
  for (const a of userArgs) {
    if (a.startsWith('-')) throw new Error('git argument from input must not start with "-"');
    if (!args.includes(a)) throw new Error('user argument not in argument list');
  }
}

/**
 * Spawns `git <args>`. `userArgs` lists which of `args` came from input; they
 * are checked not to look like options. The child is killed (SIGKILL) on
 * timeout or abort.
 */
export function spawnGit(g: GitEnv, args: readonly string[], opts: SpawnOptions, userArgs: readonly string[] = []): ChildProcess {
  checkArgs(args, userArgs);
  // Its own process group: git runs helpers (git-remote-http, pack-objects, index-pack) that
  // hold its pipes open; killing only git would leave them running, and the pipes open.
  const env = gitEnv(g, opts.env);
  for (const v of [...args, ...Object.keys(env), ...Object.values(env), opts.cwd ?? '']) if (v?.includes('\0')) throw new Error('git argument or environment with a NUL byte');
  const program = gitProgram();
  // a launcher already started (launcher.ts): no fork of this process on the request's path
  const absolute = program.startsWith('/');
  const child = (absolute ? launchers.take([program, ...args], env, opts.cwd) : undefined) ?? spawn(program, args, { cwd: opts.cwd, env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  if (absolute) launchers.after(child);
  const kill = () => killGit(child);
  const timer = setTimeout(kill, opts.timeoutMs);
  timer.unref();
  const onAbort = () => kill();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  child.once('close', () => {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onAbort);
  });
  return child;
}

/**
 * Kills a child started in its own process group (git, hg) and every helper it started, at
 * once.
 */
export function killGroup(child: ChildProcess): void {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    child.kill('SIGKILL');
  }
}

/** Kills a git child and every helper it started (its process group), at once. */
export const killGit = killGroup;

/**
 * Starts git for a reply that streams its stdout (a raw file, a patch, an archive), holding
 * `slot` (a process slot taken for it) until git ends; released at once if git cannot start.
 */
export function streamGit(g: GitEnv, slot: { release(): void }, args: readonly string[], opts: SpawnOptions, userArgs: readonly string[] = []): Readable {
  let child: ChildProcess;
  try {
    child = spawnGit(g, args, opts, userArgs);
  } catch (e) {
    slot.release();
    throw e;
  }
  child.once('close', () => slot.release());
  child.once('error', () => slot.release());
  child.stderr!.resume();
  child.stdin!.end();
  return child.stdout!;
}

export interface RunResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/**
 * Feeds `input` to a started child and collects what it writes until it ends: stdout bounded
 * by `max` bytes (beyond, the child is killed), stderr by 16 KiB. git's and hg's runners.
 */
export function collect(child: ChildProcess, input: Buffer | string | undefined, max: number): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const out: Buffer[] = [];
    let size = 0;
    let err = '';
    child.stdout!.on('data', (d: Buffer) => {
      size += d.length;
      if (size > max) killGroup(child);
      else out.push(d);
    });
    child.stderr!.on('data', (d: Buffer) => {
      if (err.length < 16384) err += d.toString('utf8');
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr: err }));
    child.stdin!.on('error', () => undefined);
    child.stdin!.end(input ?? '');
  });
}

/** Runs git to completion, collecting output (bounded by `maxOutput` bytes). */
export function runGit(g: GitEnv, args: readonly string[], opts: SpawnOptions & { input?: Buffer | string; maxOutput?: number }, userArgs: readonly string[] = []): Promise<RunResult> {
  return collect(spawnGit(g, args, opts, userArgs), opts.input, opts.maxOutput ?? 64 * 1024 * 1024);
}

/** The oldest git Palisade runs with: 2.37 brought http.curloptResolve, which pins outbound fetches. */
export const MIN_GIT_VERSION: readonly [number, number] = [2, 37];

/**
 * The installed git's version, checked against MIN_GIT_VERSION; throws with a clear message
 * when git is missing or older (an older git would ignore the address pin without a word).
 */
export async function requireGitVersion(g: GitEnv): Promise<string> {
  const r = await runGit(g, ['--version'], { timeoutMs: 10_000 }).catch(() => undefined);
  const m = r && /git version (\d+)\.(\d+)/.exec(r.stdout.toString());
  if (!m) throw new Error('git was not found on PATH; Palisade needs git 2.37 or newer');
  const [major, minor] = [Number(m[1]), Number(m[2])];
  if (major < MIN_GIT_VERSION[0] || (major === MIN_GIT_VERSION[0] && minor < MIN_GIT_VERSION[1])) {
    throw new Error(`git ${major}.${minor} is too old: Palisade needs git ${MIN_GIT_VERSION.join('.')} or newer (http.curloptResolve pins outbound fetches to checked addresses)`);
  }
  return `${major}.${minor}`;
}
