// The start cost of the pack-objects hook (issue 12): on a small repository (10 commits), the
// time for upload-pack's step "give me the pack for these wants" done by `git pack-objects`
// itself, by the hook served from the cache (a hit), and by the hook when the server is gone
// (it falls back to pack-objects), each as a fresh process like upload-pack starts it, plus the
// bare start of perl, python3 and node for comparison. Usage: node --import tsx bench/pack-hook.ts [--runs N]
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { PackCache } from '../src/git/pack-cache.ts';
import { env, fmt, median, pct } from './lib.ts';

const RUNS = process.argv.includes('--runs') ? Number(process.argv[process.argv.indexOf('--runs') + 1]) : 200;

async function main(): Promise<void> {
  const data = fs.mkdtempSync(path.join(os.tmpdir(), 'palisade-hook-bench-'));
  const id = '0a1b2c3d-0000-4000-8000-000000000001';
  const dir = path.join(data, 'repos', id.slice(0, 2), `${id}.git`);
  execFileSync('git', ['init', '-q', '--bare', '-b', 'main', dir], { env });
  const wt = path.join(data, 'wt');
  execFileSync('git', ['init', '-q', '-b', 'main', wt], { env });
  for (let i = 0; i < 10; i++) {
    fs.writeFileSync(path.join(wt, `f${i}`), `file ${i}\n`.repeat(100));
    execFileSync('git', ['add', '.'], { cwd: wt, env });
    execFileSync('git', ['commit', '-q', '-m', `c${i}`], { cwd: wt, env });
  }
  execFileSync('git', ['push', '-q', dir, 'main'], { cwd: wt, env });
  const head = execFileSync('git', ['rev-parse', 'main'], { cwd: wt, env }).toString().trim();
  const home = path.join(data, 'git-home');
  fs.mkdirSync(home);
  const cache = new PackCache({ git: { home }, dataDir: data, runDir: path.join(data, 'run'), cacheDir: path.join(data, 'cache', 'packs'), maxBytes: 1 << 30, ttlMs: 3600_000, timeoutMs: 60_000 });
  await cache.listen();
  const hookEnv = cache.uploadPackRun()!.env;
  const hook = path.join(home, 'hooks', 'pack-objects');
  const args = ['pack-objects', '--revs', '--thin', '--stdout', '--delta-base-offset'];
  const input = `${head}\n\n`;
  // spawnSync blocks this event loop, which serves the socket: the hook runs as a child of a
  // separate node process for the measured cases, timed there
  const timeIt = (label: string, cmd: string, argv: string[], extraEnv: Record<string, string> = {}) => {
    const script = `const {spawnSync}=require('child_process');const t=[];for(let i=0;i<${RUNS};i++){const s=process.hrtime.bigint();const r=spawnSync(${JSON.stringify(cmd)},${JSON.stringify(argv)},{cwd:${JSON.stringify(dir)},input:${JSON.stringify(input)},env:${JSON.stringify({ ...env, ...extraEnv })}});if(r.status!==0)throw new Error(String(r.stderr));t.push(Number(process.hrtime.bigint()-s)/1e6)}console.log(JSON.stringify(t))`;
    return new Promise<[string, number[]]>((resolve, reject) => {
      execFile(process.execPath, ['-e', script], { maxBuffer: 1 << 24 }, (err, out) => (err ? reject(err) : resolve([label, JSON.parse(out)])));
    });
  };
  const rows: [string, number[]][] = [];
  rows.push(await timeIt('git pack-objects (what upload-pack runs without the cache)', 'git', args));
  rows.push(await timeIt('hook, served from the cache (hit)', hook, ['git', ...args], hookEnv));
  rows.push(await timeIt('hook, server gone: falls back to git pack-objects', hook, ['git', ...args], { ...hookEnv, PALISADE_PACK_SOCKET: path.join(data, 'run', 'nothing.sock') }));
  for (const [label, cmd, argv] of [
    ['perl -e 1', 'perl', ['-e', '1']],
    ['python3 -c 1', 'python3', ['-c', '1']],
    ['node -e 1', process.execPath, ['-e', '1']],
  ] as const) {
    const t: number[] = [];
    for (let i = 0; i < Math.min(RUNS, 50); i++) {
      const s = performance.now();
      spawnSync(cmd, [...argv]);
      t.push(performance.now() - s);
    }
    rows.push([label, t]);
  }
  console.log(`| ${RUNS} runs each (interpreters: ${Math.min(RUNS, 50)}), sequential | median ms | p90 ms |`);
  console.log('| --- | --- | --- |');
  for (const [label, t] of rows) console.log(`| ${label} | ${fmt(median(t))} | ${fmt(pct(t, 90))} |`);
  console.log(`pack-objects runs the cache made: ${cache.stats().produced} (the first hook call), hits: ${cache.stats().hits}`);
  cache.close();
  fs.rmSync(data, { recursive: true, force: true });
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
