import { type ChildProcess, spawn, execFile, execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const ROOT = path.resolve(import.meta.dirname, '../..');
const BIN = path.join(ROOT, 'bin', 'palisade.js');
const execFileP = promisify(execFile);

export interface TestServer {
  url: string;
  port: number;
  /** the SSH port, when the server was started with PALISADE_SSH_PORT */
  sshPort: number | undefined;
  dataDir: string;
  adminKey: string;
  /** the PostgreSQL database of this server, when the suite runs on PostgreSQL */
  databaseUrl: string | undefined;
  proc: ChildProcess;
  /** Everything the server printed so far (stdout and stderr): for asserting what is never logged. */
  logs(): string;
  /** Runs the real `palisade` CLI against this server's data folder. */
  cli(...args: string[]): Promise<string>;
  /** Creates a user through the CLI and returns its API key. */
  createUser(username: string, admin?: boolean): Promise<string>;
  stop(): Promise<void>;
}

/**
 * With PALISADE_TEST_DATABASE_URL (a PostgreSQL URL allowed to create databases), every
 * test server gets a fresh database of its own; without it, the embedded SQLite.
 */
const PG_ADMIN_URL = process.env.PALISADE_TEST_DATABASE_URL;

export async function freshDatabase(): Promise<{ url: string; drop: () => Promise<void> } | undefined> {
  if (!PG_ADMIN_URL) return undefined;
  const name = `palisade_test_${crypto.randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  // postgres://user@/db?host=/socket is not a WHATWG URL (empty host): swap the path by hand
  const url = PG_ADMIN_URL.replace(/(^[a-z]+:\/\/[^/]*)\/[^?]*/, `$1/${name}`);
  return {
    url,
    async drop() {
      const c = new pg.Client({ connectionString: PG_ADMIN_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

export interface StartOptions {
  /**
   * Start on the data folder, database and admin key of an earlier server (a restart).
   * The earlier server keeps owning them: its `stop()` removes them, this one's only stops.
   */
  reuse?: TestServer;
  /**
   * Start on this data folder, database and admin key, owned by the caller (several nodes of one
   * deployment): `stop()` only stops this server.
   */
  at?: { dataDir: string; adminKey: string; databaseUrl?: string };
}

/**
 * Starts the real server (`palisade serve --port 0`) on a temp data folder
 * (and a fresh PostgreSQL database when the suite runs against one) and waits
 * for its `listening on` line.
 */
export async function startServer(env: Record<string, string> = {}, opts: StartOptions = {}): Promise<TestServer> {
  const given = opts.reuse ?? opts.at;
  const dataDir = given?.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'palisade-test-'));
  const adminKey = given?.adminKey ?? `pal_test_${crypto.randomBytes(24).toString('base64url')}`;
  const database = given ? (given.databaseUrl ? { url: given.databaseUrl, drop: async () => undefined } : undefined) : await freshDatabase();
  const owned = !given;
  // Every test client comes from 127.0.0.1: the brute-force limit is raised unless a test sets it.
  // The suites push git to repositories made by create_repo without repo_type: git by default
  // here (the server's own default is the seed's hg; test/hg covers it).
  const procEnv = { ...process.env, PALISADE_ADMIN_API_KEY: adminKey, PALISADE_LOG_LEVEL: 'warn', PALISADE_AUTH_FAILURE_LIMIT: '100000', PALISADE_DEFAULT_REPO_TYPE: 'git', ...(database ? { DATABASE_URL: database.url } : {}), ...env };
  const proc = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--host', '127.0.0.1', '--data', dataDir], { env: procEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in 20 s:\n${out}\n${stderr}`)), 20_000);
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${out}\n${stderr}`));
    });
  });
  const cli = async (...args: string[]) => {
    const { stdout } = await execFileP(process.execPath, [BIN, ...args, '--data', dataDir], { env: procEnv });
    return stdout;
  };
  return {
    url,
    port: Number(new URL(url).port),
    sshPort: /ssh listening on \S+:(\d+)/.exec(out) ? Number(/ssh listening on \S+:(\d+)/.exec(out)![1]) : undefined,
    dataDir,
    adminKey,
    databaseUrl: database?.url,
    proc,
    cli,
    logs: () => out + stderr,
    async createUser(username: string, admin = false) {
      const out = await cli('user', 'create', username, ...(admin ? ['--admin'] : []));
      const key = out.trim().split('\n').pop()!;
      if (!key.startsWith('pal_')) throw new Error(`unexpected CLI output: ${out}`);
      return key;
    },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        await exited;
      }
      if (!owned) return;
      fs.rmSync(dataDir, { recursive: true, force: true });
      await database?.drop();
    },
  };
}

/** The direct child processes of `pid` (git, grep, …), with their command lines. */
export function childProcesses(pid: number): { pid: number; args: string }[] {
  try {
    return execFileSync('ps', ['--ppid', String(pid), '-o', 'pid=,args='], { encoding: 'utf8' })
      .split('\n')
      .map((l) => /^\s*(\d+)\s+(.*)$/.exec(l))
      .filter((m): m is RegExpExecArray => !!m)
      .map((m) => ({ pid: Number(m[1]), args: m[2]! }));
  } catch {
    return []; // ps exits 1 when there are none
  }
}

export interface ApiResult<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

/** A raw HTTP call with an optional Bearer key and JSON body. */
export async function api<T = any>(
  server: { url: string },
  method: string,
  urlPath: string,
  opts: { key?: string; body?: unknown; rawBody?: string; headers?: Record<string, string> } = {},
): Promise<ApiResult<T>> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.key) headers.authorization = `Bearer ${opts.key}`;
  let body: string | undefined;
  if (opts.rawBody !== undefined) body = opts.rawBody;
  else if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers['content-type'] ??= 'application/json';
  }
  const res = await fetch(server.url + urlPath, { method, headers, body });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* plain text */
  }
  return { status: res.status, body: parsed as T, headers: res.headers };
}

/** A port free right now: bound to 0, then closed (for programs that cannot listen on port 0: sshd, nginx). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}
