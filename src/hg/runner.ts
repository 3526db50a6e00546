import { type ChildProcess, spawn } from 'node:child_process';
import { collect, killGroup, type RunResult } from '../git/runner.ts';

/**
 * The one way Palisade starts Mercurial's `hg`, like git's runner: literal flags, no user value
 * that looks like an option (checked), a pinned environment (no user or system hgrc, plain
 * output, UTF-8), its own process group killed whole on timeout or abort.
 */
export interface HgEnv {
  /** a folder hg may use as HOME; never a user's home */
  home: string;
}

export function hgEnv(h: HgEnv, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: h.home,
    // no hgrc but the repository's own (which Palisade never writes, and a push cannot create)
    HGRCPATH: '',
    HGPLAIN: '1',
    HGENCODING: 'utf-8',
    HGENCODINGMODE: 'strict',
    LC_ALL: 'C.UTF-8',
    ...extra,
  };
}

export interface HgSpawnOptions {
  cwd?: string;
  env?: Record<string, string>;
  /**
   * Run the arguments exactly as given, without the `--config ui.interactive=false` prefix:
   * `hg -R <repo> serve --stdio` refuses any other form ("potentially unsafe serve --stdio
   * invocation"); its configuration then comes from an HGRCPATH file in `env`.
   */
  exact?: boolean;
  timeoutMs: number;
  signal?: AbortSignal;
}

function checkArgs(args: readonly string[], userArgs: readonly string[]): void {
  for (const a of userArgs) {
    if (a.startsWith('-')) throw new Error('hg argument from input must not start with "-"');
    if (!args.includes(a)) throw new Error('user argument not in argument list');
  }
}

/** Kills an hg child and whatever it started. */
export const killHg = killGroup;

/** Spawns `hg <args>` with `--config ui.interactive=false`; `userArgs` are the values that came from input. */
export function spawnHg(h: HgEnv, args: readonly string[], opts: HgSpawnOptions, userArgs: readonly string[] = []): ChildProcess {
  checkArgs(args, userArgs);
  const child = spawn('hg', opts.exact ? args : ['--config', 'ui.interactive=false', ...args], { cwd: opts.cwd, env: hgEnv(h, opts.env), stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  const kill = () => killHg(child);
  const timer = setTimeout(kill, opts.timeoutMs);
  timer.unref();
  opts.signal?.addEventListener('abort', kill, { once: true });
  child.once('close', () => {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', kill);
  });
  return child;
}

export type HgResult = RunResult;

/** Runs hg to completion, collecting output (bounded by `maxOutput` bytes). */
export function runHg(h: HgEnv, args: readonly string[], opts: HgSpawnOptions & { input?: string; maxOutput?: number }, userArgs: readonly string[] = []): Promise<HgResult> {
  return collect(spawnHg(h, args, opts, userArgs), opts.input, opts.maxOutput ?? 64 * 1024 * 1024);
}
