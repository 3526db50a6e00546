import { type ChildProcess, spawn } from 'node:child_process';

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
 * second, never while a request waits for it: the fork it costs is then off every request's
 * path. Perl (core only) starts in ~2 ms and holds ~5 MB; git on Debian depends on it (the
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
    while ((child = this.ready.shift())) if (child.exitCode === null && child.signalCode === null && child.stdin?.writable) break;
    if (!child) return undefined;
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
      child.once('error', () => {
        // no Perl here: git is spawned directly from now on
        this.disabled = true;
        this.drop(child);
      });
      child.once('exit', () => this.drop(child));
      child.stdin!.on('error', () => undefined);
      // a waiting launcher does not keep the process alive (a CLI command that ran git exits)
      child.unref();
      for (const s of [child.stdin, child.stdout, child.stderr] as (NodeJS.WritableStream & { unref?: () => void })[]) s.unref?.();
      this.ready.push(child);
    }
  }

  private drop(child: ChildProcess): void {
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
