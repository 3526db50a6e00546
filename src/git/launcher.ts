import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';

/**
 * Started git processes, without a fork of the server on the request's path. Node starts a
 * child by forking the whole server: with 90 MB of heap that fork and the child's exec block
 * the event loop for 3-5 ms per git process (measured on a push: the largest part of the time
 * Palisade added to git's own). Instead a few small Perl processes wait, already started, each
 * with its stdin, stdout and stderr piped to the server: taking one, the server writes the
 * program, its arguments, environment and folder, and the launcher `exec`s git in place, in
 * the process group it was started in. git then reads and writes the very pipes the server
 * holds, so the ChildProcess (pid, streams, exit status, kill of the group) is the launcher's.
 * A launcher is made when a git child has ended (after its answer was written) or after a
 * second: its fork of the server still blocks the event loop as often as before (once per git
 * child), but no longer between a request and the git it waits for; requests running at that
 * moment still feel it. Perl (core only) starts in ~2 ms and holds ~5 MB; git on Debian depends on it (the
 * pack cache's hook uses it too). Without Perl, or with no launcher ready, git is spawned
 * directly as before.
 *
 * The request is one frame on stdin: a 4-byte big-endian length, then NUL-separated fields:
 * the argument count, the arguments (the program first), the environment count, `KEY=value`
 * entries, the folder (empty: stay). The launcher reads exactly that many bytes (never more:
 * what follows is git's input), sets the environment, enters the folder and execs; a launcher
 * whose stdin closes before a request exits quietly.
 */
const SCRIPT = `
use strict;
sub rd { my ($n) = @_; my $b = ''; while (length($b) < $n) { my $r = sysread(STDIN, $b, $n - length($b), length($b)); exit 0 if !$r; } return $b; }
my $len = unpack('N', rd(4));
my @f = split(/\\0/, rd($len), -1);
my $argc = shift(@f);
my @argv = splice(@f, 0, $argc);
my $envc = shift(@f);
%ENV = ();
for my $kv (splice(@f, 0, $envc)) { my $i = index($kv, '='); $ENV{substr($kv, 0, $i)} = substr($kv, $i + 1); }
my $cwd = shift(@f);
if (length($cwd) && !chdir($cwd)) { print STDERR "palisade launcher: cannot enter the folder\\n"; exit 127; }
exec { $argv[0] } @argv;
print STDERR "palisade launcher: cannot run $argv[0]: $!\\n";
exit 127;
`;

/**
 * A waiting launcher that can still take a request: not known to have ended, its stdin open,
 * and not a zombie whose end Node has not processed yet (it was killed while waiting).
 */
function alive(child: ChildProcess): boolean {
  if (child.exitCode !== null || child.signalCode !== null || !child.stdin?.writable || child.pid === undefined) return false;
  try {
    const stat = fs.readFileSync(`/proc/${child.pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch (e) {
    // no /proc (not Linux): what Node knows is all there is; on Linux a missing entry is a process gone
    return (e as NodeJS.ErrnoException).code !== 'ENOENT' || !fs.existsSync('/proc/self');
  }
}

/** How many launchers wait at most. */
const READY = 2;

export class Launchers {
  private readonly ready: ChildProcess[] = [];
  private disabled = false;
  private closed = false;

  /**
   * A launcher running `argv` (argv[0] an absolute program path) with exactly `env` in `cwd`,
   * or undefined when none is ready (the caller spawns directly). Tops the pool up afterwards.
   */
  take(argv: readonly string[], env: NodeJS.ProcessEnv, cwd: string | undefined): ChildProcess | undefined {
    let child: ChildProcess | undefined;
    while ((child = this.ready.shift())) if (alive(child)) break;
    if (!child) return undefined;
    this.untakenExits = 0;
    // from here on its errors and exit are the caller's, as a spawned child's would be
    child.removeListener('error', this.onError.get(child)!);
    child.removeListener('exit', this.onExit.get(child)!);
    this.onError.delete(child);
    this.onExit.delete(child);
    const envs = Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined).map(([k, v]) => `${k}=${v}`);
    const payload = Buffer.from([String(argv.length), ...argv, String(envs.length), ...envs, cwd ?? ''].join('\0'));
    const frame = Buffer.alloc(4 + payload.length);
    frame.writeUInt32BE(payload.length, 0);
    payload.copy(frame, 4);
    child.stdin!.write(frame);
    // a taken launcher is an ordinary child from now on: it keeps the process alive while it runs
    child.ref();
    for (const s of [child.stdin, child.stdout, child.stderr] as (NodeJS.WritableStream & { ref?: () => void })[]) s.ref?.();
    return child;
  }

  /**
   * Makes launchers up to READY later: once `child` (a git process just started, from a
   * launcher or not) has ended, or after a second if it runs longer (a long-lived reader).
   */
  after(child: ChildProcess): void {
    if (this.disabled || this.closed || this.ready.length >= READY) return;
    child.once('close', () => setImmediate(() => this.refill()));
    if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.refill();
      }, 1000);
      this.timer.unref();
    }
  }

  private timer: NodeJS.Timeout | undefined;

  private refill(): void {
    while (!this.closed && !this.disabled && this.ready.length < READY) {
      let child: ChildProcess;
      try {
        child = spawn('perl', ['-e', SCRIPT], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' }, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
      } catch {
        this.disabled = true;
        return;
      }
      const onError = (e: NodeJS.ErrnoException) => {
        // no Perl here: git is spawned directly from now on (a passing failure only drops this one)
        if (e.code === 'ENOENT' || e.code === 'EACCES') this.disabled = true;
        this.drop(child);
      };
      const onExit = () => {
        this.drop(child);
        // a Perl that starts but ends by itself (a broken install) would be made again after every git child
        if (++this.untakenExits >= 3) this.disabled = true;
      };
      child.once('error', onError);
      child.once('exit', onExit);
      this.onError.set(child, onError);
      this.onExit.set(child, onExit);
      child.stdin!.on('error', () => undefined);
      // a waiting launcher does not keep the process alive (a CLI command that ran git exits)
      child.unref();
      for (const s of [child.stdin, child.stdout, child.stderr] as (NodeJS.WritableStream & { unref?: () => void })[]) s.unref?.();
      this.ready.push(child);
    }
  }

  private readonly onError = new Map<ChildProcess, (e: NodeJS.ErrnoException) => void>();
  private readonly onExit = new Map<ChildProcess, () => void>();
  /** launchers that ended without being taken, in a row */
  private untakenExits = 0;

  private drop(child: ChildProcess): void {
    this.onError.delete(child);
    this.onExit.delete(child);
    const i = this.ready.indexOf(child);
    if (i >= 0) this.ready.splice(i, 1);
  }

  /** Lets the waiting launchers exit (their stdin closes) and starts no more. */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    for (const c of this.ready.splice(0)) c.stdin?.end();
  }
}
