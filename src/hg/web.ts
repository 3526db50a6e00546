import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { type HgEnv, hgEnv } from './runner.ts';

/** The worker script, beside this module in the sources (the build does not copy it). */
const WORKER = fileURLToPath(new URL('../../src/hg/hgweb-worker.py', import.meta.url));

/** The Python that runs `hg` (its shebang): Mercurial's modules are importable there, maybe nowhere else. */
function hgPython(): string {
  const hg = execFileSync('sh', ['-c', 'command -v hg'], { encoding: 'utf8' }).trim();
  const first = fs.readFileSync(hg, 'utf8').split('\n', 1)[0] ?? '';
  const m = /^#!\s*(\S+)(?:\s+(\S+))?/.exec(first);
  if (!m) throw new Error('cannot tell which Python runs hg');
  // `#!/usr/bin/env python3` names the interpreter second
  return m[1]!.endsWith('/env') && m[2] ? m[2] : m[1]!;
}

/** What the wire protocol moved a push through: branch heads and bookmarks. */
export interface HgState {
  heads: Record<string, string[]>;
  bookmarks: Record<string, string>;
}

export interface HgForward {
  /** the repository's folder */
  repo: string;
  /** Palisade decided the caller may push: hgweb's own checks are set to match */
  push: boolean;
  /** who, for hgweb's REMOTE_USER (never a secret) */
  user: string;
  method: string;
  /** path and query as the client sent them after the repository part (`/?cmd=…`) */
  url: string;
  headers: http.OutgoingHttpHeaders;
  body: Readable | undefined;
  signal: AbortSignal;
  timeoutMs: number;
}

/**
 * Mercurial's own server code, kept warm: one long-lived Python process running hgweb on a
 * Unix socket in a folder only this server's user can open (restarted if it dies). Palisade
 * decides, then forwards the wire-protocol request to it and streams both ways.
 */
export class HgWebWorker {
  private child: ChildProcess | undefined;
  private ready: Promise<void> | undefined;
  private readonly socket: string;
  private closed = false;

  constructor(
    private readonly h: HgEnv,
    runDir: string,
  ) {
    fs.mkdirSync(runDir, { recursive: true, mode: 0o700 });
    fs.chmodSync(runDir, 0o700);
    // one socket per process: nodes sharing the data folder each run their own worker
    this.socket = path.join(runDir, `hgweb-${process.pid}-${crypto.randomBytes(4).toString('hex')}.sock`);
  }

  private start(): Promise<void> {
    if (this.ready) return this.ready;
    this.ready = new Promise<void>((resolve, reject) => {
      const child = spawn(hgPython(), ['-u', WORKER, this.socket], { env: hgEnv(this.h), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      this.child = child;
      let out = '';
      let err = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('ready\n')) resolve();
      });
      child.stderr!.on('data', (d: Buffer) => {
        if (err.length < 8192) err += d.toString();
      });
      child.once('exit', (code) => {
        this.child = undefined;
        this.ready = undefined;
        reject(new Error(`the Mercurial worker exited (${code}): ${err.slice(0, 500)}`));
      });
      child.once('error', reject);
    });
    return this.ready;
  }

  /**
   * Forwards one request; `onHead` gets the answer's status and headers and returns where its
   * body goes. Resolves once the body is through.
   */
  async forward(f: HgForward, onHead: (status: number, headers: http.OutgoingHttpHeaders) => Writable): Promise<{ status: number }> {
    await this.start();
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          socketPath: this.socket,
          method: f.method,
          path: f.url,
          headers: { ...f.headers, 'x-palisade-repo': f.repo, 'x-palisade-push': f.push ? '1' : '0', 'x-palisade-user': f.user },
          signal: f.signal,
          timeout: f.timeoutMs,
        },
        (up) => {
          const headers: http.OutgoingHttpHeaders = {};
          for (const [k, v] of Object.entries(up.headers)) if (v !== undefined && k !== 'connection' && k !== 'transfer-encoding' && k !== 'server' && k !== 'date') headers[k] = v;
          up.pipe(onHead(up.statusCode ?? 502, headers));
          up.once('end', () => resolve({ status: up.statusCode ?? 502 }));
          up.once('error', reject);
        },
      );
      req.once('timeout', () => req.destroy(new Error('the Mercurial request took too long')));
      req.once('error', reject);
      if (f.body) {
        f.body.once('error', (e) => req.destroy(e));
        f.body.pipe(req);
      } else req.end();
    });
  }

  /** The branch heads and bookmarks of a repository, from the worker (no process start). */
  async state(repo: string): Promise<HgState> {
    await this.start();
    return new Promise((resolve, reject) => {
      const req = http.request({ socketPath: this.socket, method: 'GET', path: '/__palisade/state', headers: { 'x-palisade-repo': repo }, timeout: 60_000 }, (up) => {
        let body = '';
        up.setEncoding('utf8');
        up.on('data', (d: string) => (body += d));
        up.on('end', () => {
          try {
            if (up.statusCode !== 200) throw new Error(`state answered ${up.statusCode}`);
            resolve(JSON.parse(body) as HgState);
          } catch (e) {
            reject(e);
          }
        });
      });
      req.once('timeout', () => req.destroy(new Error('state took too long')));
      req.once('error', reject);
      req.end();
    });
  }

  close(): void {
    this.closed = true;
    const c = this.child;
    if (c?.pid) {
      try {
        process.kill(-c.pid, 'SIGTERM');
      } catch {
        /* gone */
      }
    }
    fs.rmSync(this.socket, { force: true });
  }

  get isClosed(): boolean {
    return this.closed;
  }
}
