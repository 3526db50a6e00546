// Benchmark for the pack-objects cache and the process limits under load (issue 12), on the
// generated repository of bench/run.ts (2,600 commits, ~57 MB packed):
//   1. one full clone (--bare): Palisade with the cache cold (a new key: a commit pushed to a side
//      branch first) and warm (the same key again), Palisade with the cache off (a second server),
//      git http-backend behind nginx + fcgiwrap, file://;
//   2. 16 concurrent clones of the same repository: Palisade (cache on, a new key per round),
//      Palisade with the cache off, http-backend; wall time, and the CPU seconds of the 16
//      clients (/usr/bin/time) and of the server, whose sum over the cores bounds the wall;
//   3. 64 concurrent mixed clients on Palisade with its default limits (clones, fetches of 20
//      new commits, pushes of a commit to a branch of their own), each running its operation
//      `--ops` times: failures, p50/p99 per operation, peak memory of the server (Node's RSS and
//      the RSS and PSS of every process below it, sampled from /proc every 100 ms).
// Everything interleaved per round. Usage: node --import tsx bench/load.ts [--runs N] [--ops N]
// (after `npm run build`; needs nginx + fcgiwrap: bench/setup.sh). Writes bench/.work/load/results.md.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { api, benchRepo, COMMITS, generateSource, report, env, fmt, median, pct, run, startHttpBackend, startPalisade, timed, WORK } from './lib.ts';

const arg = (name: string, def: number) => (process.argv.includes(name) ? Number(process.argv[process.argv.indexOf(name) + 1]) : def);
const RUNS = arg('--runs', 3);
const OPS = arg('--ops', 3);
const DIR = path.join(WORK, 'load');

/** CPU seconds (user + system, with the children each process has waited for) of `pids`, from /proc. */
function cpuSeconds(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const v = f.slice(f.lastIndexOf(')') + 2).split(' ');
      ticks += Number(v[11]) + Number(v[12]) + Number(v[13]) + Number(v[14]);
    } catch {
      /* gone */
    }
  }
  return ticks / 100;
}

/** The processes of the process groups `pgids` (nginx's and fcgiwrap's, with their workers). */
function groupMembers(pgids: number[]): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      if (pgids.includes(Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]))) out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}

/** Every process below `root` (children, their children…), from /proc. */
function descendants(root: number): number[] {
  const kids = new Map<number, number[]>();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      (kids.get(ppid) ?? kids.set(ppid, []).get(ppid)!).push(Number(d));
    } catch {
      /* gone */
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const c of kids.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(root);
  return out;
}

/** RSS and PSS of one process in KiB (0 when it is gone). */
function memKb(pid: number): { rss: number; pss: number } {
  try {
    const t = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    return { rss: Number(/^Rss:\s+(\d+)/m.exec(t)?.[1] ?? 0), pss: Number(/^Pss:\s+(\d+)/m.exec(t)?.[1] ?? 0) };
  } catch {
    return { rss: 0, pss: 0 };
  }
}

/** Samples the server's memory every 100 ms until stopped: peaks of Node's RSS, the children's RSS and PSS sums, and the most children at once. */
function sampleMemory(pid: number): () => { node: number; children: number; total: number; totalPss: number; procs: number } {
  const peak = { node: 0, children: 0, total: 0, totalPss: 0, procs: 0 };
  const tick = () => {
    const node = memKb(pid);
    const kids = descendants(pid);
    let rss = 0;
    let pss = 0;
    for (const k of kids) {
      const m = memKb(k);
      rss += m.rss;
      pss += m.pss;
    }
    peak.node = Math.max(peak.node, node.rss);
    peak.children = Math.max(peak.children, rss);
    peak.total = Math.max(peak.total, node.rss + rss);
    peak.totalPss = Math.max(peak.totalPss, node.pss + pss);
    peak.procs = Math.max(peak.procs, kids.length);
  };
  tick();
  const timer = setInterval(tick, 100);
  return () => {
    clearInterval(timer);
    tick();
    return peak;
  };
}

async function main(): Promise<void> {
  fs.rmSync(DIR, { recursive: true, force: true });
  fs.mkdirSync(DIR, { recursive: true });
  const { lines, say } = report();
  const source = path.join(DIR, 'source.git');
  const size = await generateSource(source);

  // Two servers: the cache on (the default) and off; the same repository pushed into each.
  const adminKey = `pal_bench_${crypto.randomBytes(16).toString('hex')}`;
  const servers: { name: string; url: string; data: string; pid: number; kill: () => void }[] = [];
  for (const [name, extra] of [
    ['on', {}],
    ['off', { PALISADE_PACK_CACHE: '0' }],
  ] as const) {
    const data = path.join(DIR, `palisade-${name}`);
    const pal = await startPalisade(data, adminKey, extra);
    const { url } = await benchRepo(pal.url, data, adminKey, source);
    servers.push({ name, url, data, pid: pal.proc.pid!, kill: () => pal.proc.kill('SIGTERM') });
  }
  const [on, off] = servers as [(typeof servers)[0], (typeof servers)[0]];
  const httpRoot = path.join(DIR, 'http-root');
  fs.mkdirSync(httpRoot);
  await run('git', ['clone', '-q', '--bare', '--no-local', source, path.join(httpRoot, 'bench.git')]);
  await run('git', ['config', 'http.receivepack', 'true'], { cwd: path.join(httpRoot, 'bench.git') });
  await run('git', ['repack', '-adq'], { cwd: path.join(httpRoot, 'bench.git') });
  const port = 20000 + Math.floor(Math.random() * 20000);
  const backend = await startHttpBackend(httpRoot, port);
  const backendUrl = `http://127.0.0.1:${port}/bench.git`;
  const fileUrl = `file://${source}`;

  // A new key for the cache: a commit on a side branch changes what a full clone wants.
  let cold = 0;
  const newKey = async () => {
    const tree = (await run('git', ['rev-parse', 'main^{tree}'], { cwd: source })).trim();
    const oid = (await run('git', ['commit-tree', tree, '-p', 'main', '-m', `cold ${cold}`], { cwd: source })).trim();
    await run('git', ['push', '-q', on.url, `${oid}:refs/heads/cold/${cold++}`], { cwd: source });
  };
  const clone = (url: string, dest: string) => timed('git', ['clone', '-q', '--bare', url, dest]);
  const rm = (d: string) => fs.rmSync(d, { recursive: true, force: true });

  try {
    // 1. one full clone
    const one: Record<string, number[]> = {};
    for (let r = 0; r < RUNS * 2; r++) {
      await newKey();
      for (const [name, url] of [
        ['cold', on.url],
        ['warm', on.url],
        ['off', off.url],
        ['http-backend', backendUrl],
        ['file://', fileUrl],
      ] as const) {
        const dest = path.join(DIR, `one-${r}`);
        (one[name] ??= []).push(await clone(url, dest));
        rm(dest);
      }
    }
    // 2. 16 concurrent clones of the same repository
    const conc: Record<string, number[]> = {};
    const concFailed: Record<string, number> = {};
    // CPU seconds per round: the 16 clients (each timed by /usr/bin/time, clone and its helpers)
    // and the server (Palisade: Node and the git children it waited for; http-backend: every
    // process of nginx's and fcgiwrap's groups), to show what the 2 cores must do in the wall
    const clientCpu: Record<string, number[]> = {};
    const serverCpu: Record<string, number[]> = {};
    const serverPids = (name: string) => (name === 'http-backend' ? groupMembers(backend.map((p) => p.pid!)) : [name === 'on' ? on.pid : off.pid]);
    const hasTime = fs.existsSync('/usr/bin/time');
    for (let r = 0; r < RUNS; r++) {
      await newKey();
      for (const [name, url] of [
        ['on', on.url],
        ['off', off.url],
        ['http-backend', backendUrl],
      ] as const) {
        const cpu0 = cpuSeconds(serverPids(name));
        let clientsCpu = 0;
        const one16 = async (i: number) => {
          const dest = path.join(DIR, `conc-${i}`);
          if (!hasTime) return clone(url, dest);
          const err = await new Promise<string>((resolve, reject) => {
            const c = spawn('/usr/bin/time', ['-f', 'cpu %U %S', 'git', 'clone', '-q', '--bare', url, dest], { env, stdio: ['ignore', 'ignore', 'pipe'] });
            let e = '';
            c.stderr!.on('data', (d: Buffer) => (e += d));
            c.on('close', (code) => (code === 0 ? resolve(e) : reject(new Error(`clone ${code}: ${e}`))));
          });
          const m = /cpu ([\d.]+) ([\d.]+)/.exec(err);
          if (m) clientsCpu += Number(m[1]) + Number(m[2]);
          return 0;
        };
        const start = performance.now();
        const res = await Promise.allSettled(Array.from({ length: 16 }, (_, i) => one16(i)));
        (conc[name] ??= []).push(performance.now() - start);
        await new Promise((r) => setTimeout(r, 200)); // the server reaps its last children
        (serverCpu[name] ??= []).push(cpuSeconds(serverPids(name)) - cpu0);
        (clientCpu[name] ??= []).push(clientsCpu);
        concFailed[name] = (concFailed[name] ?? 0) + res.filter((x) => x.status === 'rejected').length;
        for (const x of res) if (x.status === 'rejected') console.error(String(x.reason).slice(0, 300));
        for (let i = 0; i < 16; i++) rm(path.join(DIR, `conc-${i}`));
        console.error(`16 concurrent, ${name}: ${fmt(conc[name]!.at(-1)!)} ms`);
      }
    }

    // 3. 64 concurrent mixed clients on the cache-on server: 8 clone, 48 fetch, 8 push.
    // Fetchers start from a clone 20 commits behind (objects shared through alternates) and fetch main.
    const base = path.join(DIR, 'fetch-base.git');
    await run('git', ['clone', '-q', '--bare', '--no-local', source, base]);
    await run('git', ['update-ref', 'refs/heads/main', 'main~20'], { cwd: base });
    await run('git', ['repack', '-adq'], { cwd: base });
    await run('git', ['prune'], { cwd: base });
    await run('git', ['remote', 'set-url', 'origin', on.url], { cwd: base });
    const pushWc = path.join(DIR, 'push-wc');
    await run('git', ['clone', '-q', '--bare', '--shared', source, pushWc]);
    const times: Record<string, number[]> = { clone: [], fetch: [], push: [] };
    const failures: string[] = [];
    const client = async (kind: 'clone' | 'fetch' | 'push', i: number) => {
      for (let k = 0; k < OPS; k++) {
        const dest = path.join(DIR, `mixed-${kind}-${i}-${k}`);
        try {
          if (kind === 'clone') times.clone!.push(await clone(on.url, dest));
          else if (kind === 'fetch') {
            await run('git', ['clone', '-q', '--bare', '--shared', base, dest]);
            await run('git', ['remote', 'set-url', 'origin', on.url], { cwd: dest });
            times.fetch!.push(await timed('git', ['fetch', '-q', 'origin', '+refs/heads/main:refs/heads/main'], { cwd: dest }));
          } else {
            const tree = (await run('git', ['rev-parse', 'main^{tree}'], { cwd: pushWc })).trim();
            const oid = (await run('git', ['commit-tree', tree, '-p', 'main', '-m', `push ${i} ${k} ${crypto.randomUUID()}`], { cwd: pushWc })).trim();
            times.push!.push(await timed('git', ['push', '-q', on.url, `${oid}:refs/heads/load/${i}-${k}`], { cwd: pushWc }));
          }
        } catch (e) {
          failures.push(`${kind}: ${String(e).slice(0, 300)}`);
        } finally {
          rm(dest);
        }
      }
    };
    const stop = sampleMemory(on.pid);
    const start = performance.now();
    await Promise.all([
      ...Array.from({ length: 8 }, (_, i) => client('clone', i)),
      ...Array.from({ length: 48 }, (_, i) => client('fetch', i)),
      ...Array.from({ length: 8 }, (_, i) => client('push', i)),
    ]);
    const wall = performance.now() - start;
    const mem = stop();

    const row = (label: string, xs: number[]) => `${fmt(median(xs))}`;
    say(`Repository: ${COMMITS} commits, ${(size / 1e6).toFixed(1)} MB packed. ${RUNS * 2} single clones and ${RUNS} rounds of 16 concurrent clones, interleaved; medians in ms.`);
    say('');
    say('| full clone (--bare) | Palisade, cache cold | Palisade, cache warm | Palisade, cache off | git http-backend | file:// | cold / http-backend | cold / file:// | warm / http-backend | warm / file:// |');
    say('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    const m = (k: string) => median(one[k]!);
    say(`| median ms | ${row('', one.cold!)} | ${row('', one.warm!)} | ${row('', one.off!)} | ${row('', one['http-backend']!)} | ${row('', one['file://']!)} | ${(m('cold') / m('http-backend')).toFixed(2)}× | ${(m('cold') / m('file://')).toFixed(2)}× | ${(m('warm') / m('http-backend')).toFixed(2)}× | ${(m('warm') / m('file://')).toFixed(2)}× |`);
    say('');
    say('| 16 concurrent clones, wall ms (median of rounds) | Palisade, cache on | Palisade, cache off | git http-backend | on / http-backend |');
    say('| --- | --- | --- | --- | --- |');
    say(`| wall | ${fmt(median(conc.on!))} | ${fmt(median(conc.off!))} | ${fmt(median(conc['http-backend']!))} | ${(median(conc.on!) / median(conc['http-backend']!)).toFixed(2)}× |`);
    say(`| failed | ${concFailed.on} | ${concFailed.off} | ${concFailed['http-backend']} | |`);
    if (hasTime) {
      const cpuCell = (k: string) => `${median(clientCpu[k]!).toFixed(1)} + ${median(serverCpu[k]!).toFixed(1)}`;
      say(`| CPU s, the 16 clients + the server | ${cpuCell('on')} | ${cpuCell('off')} | ${cpuCell('http-backend')} | |`);
      const cores = os.cpus().length;
      const floor = (median(clientCpu.on!) + median(serverCpu.on!)) / cores;
      say(`| lower bound of the wall on ${cores} cores (all CPU / cores), ms | ${fmt(floor * 1000)} | | | ${((floor * 1000) / median(conc['http-backend']!)).toFixed(2)}× |`);
    }
    say('');
    say(`64 concurrent mixed clients on Palisade (cache on, default limits), ${OPS} operations each: 8 clone, 48 fetch (20 new commits), 8 push (a commit to a new branch); ${fmt(wall)} ms wall, ${failures.length} failed.`);
    say('');
    say('| operation | count | p50 ms | p99 ms | max ms |');
    say('| --- | --- | --- | --- | --- |');
    for (const [k, v] of Object.entries(times)) if (v.length) say(`| ${k} | ${v.length} | ${fmt(median(v))} | ${fmt(pct(v, 99))} | ${fmt(Math.max(...v))} |`);
    say('');
    say(`Server memory, peaks over the mixed load: Node RSS ${(mem.node / 1024).toFixed(0)} MB; its children (git, hooks) RSS summed ${(mem.children / 1024).toFixed(0)} MB, ${mem.procs} processes at most; Node + children RSS ${(mem.total / 1024).toFixed(0)} MB (PSS, shared pages counted once: ${(mem.totalPss / 1024).toFixed(0)} MB).`);
    for (const f of failures.slice(0, 10)) say(`- failure: ${f}`);
    say('');
    say(`Machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${(await run('git', ['--version'])).trim()}; load average at the end ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}.`);
    fs.writeFileSync(path.join(DIR, 'results.md'), lines.join('\n') + '\n');
  } finally {
    for (const s of servers) s.kill();
    for (const p of backend) {
      try {
        process.kill(-p.pid!, 'SIGTERM');
      } catch {
        p.kill('SIGTERM');
      }
    }
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
