// The resource attacks of the hardening issue (item 9), measured against a running server with its
// default limits: a flood of costly searches (children, /healthz latency), slow anonymous bodies
// (git children over time) and an anonymous 2 GiB push to a private repository (bytes the server
// took before it hung up). Usage: node --import tsx bench/limits.ts [path/to/bin/palisade.js]
// (default: this checkout; pass an older checkout's launcher to compare).
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fmt, pct, ROOT } from './lib.ts';

const BIN = path.resolve(process.argv[2] ?? path.join(ROOT, 'bin', 'palisade.js'));
const KEY = `pal_bench_${crypto.randomBytes(12).toString('hex')}`;

async function start(env: Record<string, string>): Promise<{ url: string; proc: ChildProcess; data: string }> {
  const data = fs.mkdtempSync(path.join(os.tmpdir(), 'palisade-limits-'));
  const proc = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--data', data], { env: { ...process.env, PALISADE_ADMIN_API_KEY: KEY, PALISADE_LOG_LEVEL: 'fatal', ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    proc.once('exit', (c) => reject(new Error(`palisade exited ${c}`)));
  });
  return { url, proc, data };
}
async function stop(s: { proc: ChildProcess; data: string }): Promise<void> {
  const exited = new Promise((r) => s.proc.once('exit', r));
  s.proc.kill('SIGKILL');
  await exited;
  for (const c of children(s.proc.pid!)) process.kill(c.pid, 'SIGKILL');
  fs.rmSync(s.data, { recursive: true, force: true });
}
function children(pid: number): { pid: number; args: string }[] {
  try {
    return execFileSync('ps', ['--ppid', String(pid), '-o', 'pid=,args='], { encoding: 'utf8' })
      .split('\n')
      .map((l) => /^\s*(\d+)\s+(.*)$/.exec(l))
      .filter((m): m is RegExpExecArray => !!m)
      .map((m) => ({ pid: Number(m[1]), args: m[2]! }));
  } catch {
    return [];
  }
}
async function api(url: string, method: string, p: string, body?: unknown): Promise<any> {
  const res = await fetch(url + p, { method, headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }, body: body ? JSON.stringify(body) : undefined });
  if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${await res.text()}`);
  return res.json();
}
const tally = (xs: (number | string)[]) => Object.entries(xs.reduce<Record<string, number>>((m, x) => ({ ...m, [x]: (m[x] ?? 0) + 1 }), {})).map(([k, v]) => `${v}x ${k}`).join(', ');

async function searchFlood(): Promise<void> {
  const s = await start({});
  try {
    const { repoId } = await api(s.url, 'POST', '/git/v1/repo', { public: true });
    await api(s.url, 'POST', `/git/v1/repo/${repoId}/commits`, { message: 'a', files: [{ path: 'a.txt', content: `${'a'.repeat(30)}\n`.repeat(200) }] });
    const q = `/git/v1/repo/${repoId}/search?isRegex=true&caseSensitive=true&query=${encodeURIComponent('(.*)(.*)(.*)\\3\\2\\1x')}`;
    const idle: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t = performance.now();
      await fetch(`${s.url}/healthz`).then((r) => r.text());
      idle.push(performance.now() - t);
    }
    let flooding = true;
    let most = 0;
    const sampler = setInterval(() => (most = Math.max(most, children(s.proc.pid!).filter((c) => /\bgrep\b/.test(c.args)).length)), 100);
    const health: number[] = [];
    const probe = (async () => {
      while (flooding) {
        const t = performance.now();
        await fetch(`${s.url}/healthz`).then((r) => r.text());
        health.push(performance.now() - t);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const t0 = performance.now();
    const statuses = await Promise.all(Array.from({ length: 100 }, () => fetch(s.url + q).then(async (r) => (await r.text(), r.status))));
    const took = performance.now() - t0;
    flooding = false;
    await probe;
    clearInterval(sampler);
    console.log(`search flood (100 concurrent anonymous costly searches): answers ${tally(statuses)} in ${fmt(took)} ms; most grep children at once ${most}`);
    console.log(`  /healthz idle p95 ${fmt(pct(idle, 95))} ms; during the flood p50 ${fmt(pct(health, 50))} ms, p95 ${fmt(pct(health, 95))} ms, max ${fmt(Math.max(...health))} ms (${health.length} probes)`);
  } finally {
    await stop(s);
  }
}

async function slowBodies(): Promise<void> {
  const s = await start({ PALISADE_BODY_IDLE_TIMEOUT_SECONDS: '5' });
  try {
    const { repoId } = await api(s.url, 'POST', '/git/v1/repo', { public: true });
    await api(s.url, 'POST', `/git/v1/repo/${repoId}/commits`, { message: 'a', files: [{ path: 'a.txt', content: 'a\n' }] });
    const u = new URL(`${s.url}/${repoId}/git-upload-pack`);
    const statuses: (number | string)[] = [];
    const reqs = Array.from({ length: 60 }, () => {
      const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent: false, headers: { 'content-type': 'application/x-git-upload-pack-request', 'transfer-encoding': 'chunked' } }, (res) => {
        statuses.push(res.statusCode ?? 0);
        res.resume();
      });
      req.on('error', () => statuses.push('reset'));
      req.write('0032want ');
      return req;
    });
    const samples: string[] = [];
    const t0 = Date.now();
    for (const at of [1, 3, 6, 9]) {
      await new Promise((r) => setTimeout(r, t0 + at * 1000 - Date.now()));
      samples.push(`${at} s: ${children(s.proc.pid!).filter((c) => c.args.includes('upload-pack')).length}`);
    }
    for (const r of reqs) r.destroy();
    console.log(`slow bodies (60 anonymous upload-pack requests, 9 bytes then silence): upload-pack children ${samples.join(', ')}; answers ${tally(statuses)}`);
  } finally {
    await stop(s);
  }
}

async function refusedPush(): Promise<void> {
  const s = await start({});
  try {
    const { repoId } = await api(s.url, 'POST', '/git/v1/repo', {});
    const port = Number(new URL(s.url).port);
    const r = await new Promise<{ accepted: number; ms: number; status: string }>((resolve) => {
      const t0 = performance.now();
      const sock = net.connect(port, '127.0.0.1');
      let response = '';
      const head = `POST /${repoId}/git-receive-pack HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-git-receive-pack-request\r\nContent-Length: ${2 ** 31}\r\n\r\n`;
      const done = () => resolve({ accepted: sock.bytesWritten - head.length, ms: performance.now() - t0, status: /^HTTP\/1\.1 (\d+)/.exec(response)?.[1] ?? 'none read' });
      sock.on('data', (d) => (response += d));
      sock.on('close', done);
      sock.on('error', () => undefined);
      const block = Buffer.alloc(1 << 20);
      const pump = () => {
        while (sock.bytesWritten - head.length < 2 ** 31) if (!sock.write(block)) return void sock.once('drain', pump);
        sock.end();
      };
      sock.write(head);
      pump();
    });
    console.log(`anonymous 2 GiB push to a private repository: status ${r.status}, the server took ${(r.accepted / 2 ** 20).toFixed(1)} MiB before the connection closed (${fmt(r.ms)} ms)`);
  } finally {
    await stop(s);
  }
}

console.log(`palisade: ${BIN}`);
await searchFlood();
await slowBodies();
await refusedPush();
