// Benchmark: the SSH gateway against the VM's own sshd, in one interleaved run.
// - `ssh … true` (and time to the first byte of `ssh … echo x`) through Palisade vs straight to
//   the VM's sshd, with the same client key;
// - a 200 MiB `head -c 200M /dev/zero` from the VM to the client, both ways;
// - 50 concurrent gateway sessions: failures, and the server's memory.
// The VM is a real sshd on loopback with a Linux user created for it, as in
// test/ssh/gateway.test.ts: this needs root and /usr/sbin/sshd (it exits with a message
// otherwise) and cleans up after itself. Usage: node --import tsx bench/gateway.ts [--runs N]
// (after `npm run build`). Writes bench/.work/gateway.md.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { canRunSshd, startVmHost, type VmHost } from '../test/ssh/vm-host.ts';
import { api, fmt, median, pct, ROOT, WORK } from './lib.ts';

const RUNS = Number(process.argv[process.argv.indexOf('--runs') + 1]) || 30;
const BIG_RUNS = 5;
const BIG = 200 * 1024 * 1024;
const CONCURRENT = 50;

if (!canRunSshd()) {
  console.error('bench/gateway.ts: needs root and /usr/sbin/sshd (apt-get install openssh-server); skipped');
  process.exit(0);
}

const dir = path.join(WORK, 'gateway');
fs.rmSync(dir, { recursive: true, force: true });
fs.mkdirSync(dir, { recursive: true });

async function startServer(dataDir: string, adminKey: string): Promise<{ url: string; sshPort: number; proc: ChildProcess }> {
  const proc = spawn(process.execPath, [path.join(ROOT, 'bin', 'palisade.js'), 'serve', '--port', '0', '--data', dataDir], {
    env: { ...process.env, PALISADE_ADMIN_API_KEY: adminKey, PALISADE_LOG_LEVEL: 'warn', PALISADE_SSH_PORT: '0', PALISADE_ALLOW_PRIVATE_URLS: '1' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    proc.stdout!.on('data', (d: Buffer) => {
      out += d;
      if (/listening on http/.test(out) && /ssh listening on/.test(out)) resolve();
    });
    proc.once('exit', (c) => reject(new Error(`palisade exited ${c}: ${out}`)));
  });
  return { url: /listening on (http:\/\/\S+)/.exec(out)![1]!, sshPort: Number(/ssh listening on \S+:(\d+)/.exec(out)![1]), proc };
}

/** user and system CPU seconds of a process so far */
const cpuTimes = (pid: number): { user: number; sys: number } => {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return { user: Number(f[11]) / 100, sys: Number(f[12]) / 100 }; // utime, stime in clock ticks (USER_HZ 100)
};
const load = os.loadavg().map((x) => x.toFixed(2)).join(' ');

const rssMb = (pid: number): number => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

interface Target {
  name: string;
  port: number;
  login: string;
}

/**
 * Runs ssh; resolves with the time to its first stdout byte, its end, and the bytes it printed.
 * `discard`: stdout goes straight to /dev/null (no byte count): on a small machine, a reader
 * process would take CPU from the ones measured.
 */
function ssh(t: Target, key: string, command: string, discard = false): Promise<{ firstByteMs: number; totalMs: number; bytes: number; code: number | null; stderr: string }> {
  const args = ['-F', '/dev/null', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-i', key, '-p', String(t.port), `${t.login}@127.0.0.1`, command];
  return new Promise((resolve) => {
    const start = performance.now();
    let first = 0;
    let bytes = 0;
    let stderr = '';
    const devNull = discard ? fs.openSync('/dev/null', 'w') : undefined;
    const child = spawn('ssh', args, { env: { PATH: process.env.PATH, HOME: dir }, stdio: ['ignore', devNull ?? 'pipe', 'pipe'] });
    if (devNull !== undefined) fs.closeSync(devNull);
    child.stdout?.on('data', (d: Buffer) => {
      if (!bytes) first = performance.now() - start;
      bytes += d.length;
    });
    child.stderr!.on('data', (d: Buffer) => (stderr += d));
    child.on('close', (code) => resolve({ firstByteMs: first, totalMs: performance.now() - start, bytes, code, stderr }));
  });
}

const adminKey = `pal_bench_${crypto.randomBytes(16).toString('base64url')}`;
const server = await startServer(path.join(dir, 'data'), adminKey);
let vm: VmHost | undefined;
const out: string[] = [];
const say = (line = '') => {
  console.log(line);
  out.push(line);
};
try {
  const keyFile = path.join(dir, 'client_ed25519');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'bench', '-f', keyFile]);
  const pub = fs.readFileSync(`${keyFile}.pub`, 'utf8').trim();
  const gatewayKey = await api(server.url, adminKey, 'GET', '/vm/v1/gateway-key');
  // the same client key logs in straight to the VM's user and, registered to an identity, through Palisade
  vm = await startVmHost({ gatewayKey, users: ['bench'], userKeys: [pub], extra: ['MaxStartups 200', 'MaxSessions 100'] });
  const user = vm.users.bench!;
  const vmRow = await api(server.url, adminKey, 'POST', '/vm/v1/vms', { host: '127.0.0.1', port: vm.port, defaultUser: user, hostKey: vm.hostKeyLine });
  const identity = (await api(server.url, adminKey, 'POST', '/identity/v1/identities')).id;
  await api(server.url, adminKey, 'POST', `/identity/v1/identities/${identity}/permissions/vm/${vmRow.id}`, { allowedUsers: [user] });
  await api(server.url, adminKey, 'POST', `/identity/v1/identities/${identity}/ssh-keys`, { publicKey: pub });
  const direct: Target = { name: 'direct', port: vm.port, login: user };
  const gateway: Target = { name: 'gateway', port: server.sshPort, login: `${vmRow.id}+${user}` };
  for (const t of [direct, gateway]) {
    const r = await ssh(t, keyFile, 'id -un');
    if (r.code !== 0) throw new Error(`${t.name}: ${r.stderr}`);
  }

  say(`# SSH gateway benchmark (${new Date().toISOString().slice(0, 10)}, ${RUNS} runs interleaved)`);
  say();
  const lat: Record<string, { total: number[]; first: number[] }> = { direct: { total: [], first: [] }, gateway: { total: [], first: [] } };
  for (let i = 0; i < 3; i++) for (const t of [direct, gateway]) await ssh(t, keyFile, 'true'); // warm-up
  for (let i = 0; i < RUNS; i++) {
    for (const t of i % 2 ? [gateway, direct] : [direct, gateway]) {
      const a = await ssh(t, keyFile, 'true');
      if (a.code !== 0) throw new Error(`${t.name} true: ${a.stderr}`);
      lat[t.name]!.total.push(a.totalMs);
      const b = await ssh(t, keyFile, 'echo x');
      if (b.code !== 0) throw new Error(`${t.name} echo: ${b.stderr}`);
      lat[t.name]!.first.push(b.firstByteMs);
    }
  }
  say('| operation | direct median ms (p90) | gateway median ms (p90) | gateway / direct | target |');
  say('| --- | --- | --- | --- | --- |');
  const row = (label: string, d: number[], g: number[], target: string) =>
    say(`| ${label} | ${fmt(median(d))} (${fmt(pct(d, 90))}) | ${fmt(median(g))} (${fmt(pct(g, 90))}) | ${(median(g) / median(d)).toFixed(2)}× | ${target} |`);
  row('`ssh … true`, start to exit', lat.direct!.total, lat.gateway!.total, '≤ 1.5×');
  row('`ssh … echo x`, start to first byte', lat.direct!.first, lat.gateway!.first, '≤ 1.5×');

  const thr: Record<string, number[]> = { direct: [], gateway: [] };
  const cat = `head -c ${BIG} /dev/zero`;
  // once counted (every byte arrives), then timed into /dev/null
  for (const t of [direct, gateway]) {
    const r = await ssh(t, keyFile, cat);
    if (r.code !== 0 || r.bytes !== BIG) throw new Error(`${t.name} cat: ${r.bytes} bytes, ${r.stderr}`);
  }
  const cpu: { user: number; sys: number }[] = [];
  for (let i = 0; i < BIG_RUNS; i++) {
    for (const t of i % 2 ? [gateway, direct] : [direct, gateway]) {
      const before = cpuTimes(server.proc.pid!);
      const r = await ssh(t, keyFile, cat, true);
      if (r.code !== 0) throw new Error(`${t.name} cat: ${r.stderr}`);
      thr[t.name]!.push(BIG / 1024 / 1024 / (r.totalMs / 1000));
      const now = cpuTimes(server.proc.pid!);
      if (t === gateway) cpu.push({ user: now.user - before.user, sys: now.sys - before.sys });
    }
  }
  const md = median(thr.direct!);
  const mg = median(thr.gateway!);
  say(`| 200 MiB from the VM (\`head -c 200M /dev/zero\`), MiB/s, median of ${BIG_RUNS} | ${md.toFixed(0)} | ${mg.toFixed(0)} | ${((mg / md) * 100).toFixed(0)} % | ≥ 80 % |`);
  say();
  say(`Throughput samples, MiB/s: direct ${thr.direct!.map((x) => x.toFixed(0)).join(', ')}; gateway ${thr.gateway!.map((x) => x.toFixed(0)).join(', ')}.`);
  const total = median(cpu.map((c) => c.user + c.sys));
  say(
    `Palisade's own CPU per 200 MiB through the gateway (decrypt from the VM, encrypt to the client, both sockets): median ${total.toFixed(2)} s ` +
      `(user ${median(cpu.map((c) => c.user)).toFixed(2)} s, system ${median(cpu.map((c) => c.sys)).toFixed(2)} s), i.e. one core carries ${(200 / total).toFixed(0)} MiB/s. Load average at the start: ${load}.`,
  );
  say();

  // 50 concurrent gateway sessions, each holding its session open for 2 s
  const before = rssMb(server.proc.pid!);
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, rssMb(server.proc.pid!))), 50);
  const t0 = performance.now();
  const results = await Promise.all(Array.from({ length: CONCURRENT }, () => ssh(gateway, keyFile, 'sleep 2; echo ok')));
  const wall = performance.now() - t0;
  clearInterval(sampler);
  await new Promise((r) => setTimeout(r, 2000));
  const after = rssMb(server.proc.pid!);
  const failed = results.filter((r) => r.code !== 0 || r.bytes !== 3);
  say(`${CONCURRENT} concurrent gateway sessions (\`sleep 2; echo ok\`): ${failed.length} failed, ${(wall / 1000).toFixed(1)} s wall; server RSS ${before.toFixed(0)} MB → peak ${peak.toFixed(0)} MB (growth ${(peak - before).toFixed(0)} MB), ${after.toFixed(0)} MB 2 s later.`);
  if (failed.length) say(`failures: ${failed.map((f) => f.stderr.trim()).join(' / ')}`);
  fs.writeFileSync(path.join(WORK, 'gateway.md'), `${out.join('\n')}\n`);
} finally {
  await vm?.stop();
  const exited = new Promise((r) => server.proc.once('exit', r));
  server.proc.kill('SIGTERM');
  await exited;
}
