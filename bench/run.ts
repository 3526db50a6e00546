// Benchmark: Palisade's smart HTTP against git http-backend behind nginx + fcgiwrap and
// against `git clone file://`, on a generated repository of more than 50 MB packed; then
// 16 concurrent clones with the server's RSS, and API latency for repositories and identities.
// Usage: npm run bench [-- --runs N]. Writes bench/.work/results.md.
// `--before <older checkout>/bin/palisade.js` also serves the repository from an older build, in
// the same interleaved rounds (a before/after comparison on one noisy machine); `--git-only`
// stops after the comparison table (no concurrency or API latency).
import { type ChildProcess, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { repoDir } from '../src/git/repo-path.ts';
import { api, benchRepo, COMMITS, generateSource, report, fmt, median, pct, run, startHttpBackend, startPalisade, timed, WORK } from './lib.ts';

const RUNS = Number(process.argv[process.argv.indexOf('--runs') + 1]) || 5;
/** `--api-only`: skip the git comparisons and measure the API latencies alone. */
const API_ONLY = process.argv.includes('--api-only');
const GIT_ONLY = process.argv.includes('--git-only');
const BEFORE = process.argv.includes('--before') ? path.resolve(process.argv[process.argv.indexOf('--before') + 1]!) : undefined;

const rssKb = (pid: number): number => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);

async function main(): Promise<void> {
  fs.rmSync(WORK, { recursive: true, force: true });
  fs.mkdirSync(WORK, { recursive: true });
  const { lines, say } = report();

  const source = path.join(WORK, 'source.git');
  const size = await generateSource(source);

  // Palisade, with the repository pushed through it and repacked like the baseline.
  const adminKey = `pal_bench_${crypto.randomBytes(16).toString('hex')}`;
  const data = path.join(WORK, 'palisade-data');
  const pal = await startPalisade(data, adminKey);
  const { url: palUrl } = await benchRepo(pal.url, data, adminKey, source);
  // A public copy, read anonymously: git sends credentials only after a 401, so every
  // authenticated request costs one more round trip than http-backend's anonymous ones.
  const publicUrl = async (url: string, dataDir: string): Promise<string> => {
    const { repoId: pid } = await api(url, adminKey, 'POST', '/git/v1/repo', { name: 'bench/public', public: true });
    await run('git', ['push', '-q', `${url.replace('http://', `http://admin:${adminKey}@`)}/bench/public.git`, 'main'], { cwd: source });
    await run('git', ['repack', '-adq'], { cwd: repoDir(dataDir, pid) });
    return `${url}/bench/public.git`;
  };
  const palPublic = API_ONLY ? '' : await publicUrl(pal.url, data);

  // The same on an older build, when asked (its own data folder and port).
  let before: { proc: ChildProcess; url: string; publicUrl: string } | undefined;
  if (BEFORE && !API_ONLY) {
    const bdata = path.join(WORK, 'palisade-before-data');
    const b = await startPalisade(bdata, adminKey, {}, BEFORE);
    const { url: bUrl } = await benchRepo(b.url, bdata, adminKey, source);
    before = { proc: b.proc, url: bUrl, publicUrl: await publicUrl(b.url, bdata) };
  }

  // git http-backend behind nginx + fcgiwrap, on a copy of the same repository.
  const httpRoot = path.join(WORK, 'http-root');
  fs.mkdirSync(httpRoot);
  await run('git', ['clone', '-q', '--bare', '--no-local', source, path.join(httpRoot, 'bench.git')]);
  await run('git', ['config', 'http.receivepack', 'true'], { cwd: path.join(httpRoot, 'bench.git') });
  await run('git', ['repack', '-adq'], { cwd: path.join(httpRoot, 'bench.git') });
  const port = 20000 + Math.floor(Math.random() * 20000);
  const backend = await startHttpBackend(httpRoot, port);
  const backendUrl = `http://127.0.0.1:${port}/bench.git`;
  // the same http-backend behind nginx's auth_basic (startHttpBackend listens on port + 1 for it)
  const backendAuthUrl = `http://bench:bench@127.0.0.1:${port + 1}/bench.git`;
  const fileUrl = `file://${source}`;

  try {
    if (!API_ONLY) {
      const targets: [string, string][] = [
        ['palisade', palUrl],
        ...(before ? ([['palisade-before', before.url]] as [string, string][]) : []),
        ['http-backend', backendUrl],
        ['file://', fileUrl],
      ];
      // 1. full clone (bare: the checkout would cost the same for all three)
      const clone: Record<string, number[]> = {};
      for (let r = 0; r < RUNS; r++)
        for (const [name, url] of targets) {
          const dest = path.join(WORK, `clone-${name.replace(/\W/g, '')}-${r}`);
          (clone[name] ??= []).push(await timed('git', ['clone', '-q', '--bare', url, dest]));
          if (r > 0) fs.rmSync(dest, { recursive: true, force: true });
        }
      // 2. no-op fetch in an up-to-date clone; in the same rounds, http-backend behind auth_basic
      // (authenticated on both sides: git pays its 401 round trip with both)
      const haDest = path.join(WORK, 'clone-http-backend-auth');
      await run('git', ['clone', '-q', '--bare', backendAuthUrl, haDest]);
      const fetchT: Record<string, number[]> = {};
      const fetchHA: number[] = [];
      for (let r = 0; r < RUNS * 2; r++) {
        for (const [name] of targets) {
          const dest = path.join(WORK, `clone-${name.replace(/\W/g, '')}-0`);
          (fetchT[name] ??= []).push(await timed('git', ['fetch', '-q', 'origin'], { cwd: dest }));
        }
        fetchHA.push(await timed('git', ['fetch', '-q', 'origin'], { cwd: haDest }));
      }
      // 2a. the same with protocol v0 (clients before git 2.26, or configured so)
      const fetchV0: Record<string, number[]> = {};
      for (let r = 0; r < RUNS * 2; r++)
        for (const [name] of targets) {
          const dest = path.join(WORK, `clone-${name.replace(/\W/g, '')}-0`);
          (fetchV0[name] ??= []).push(await timed('git', ['-c', 'protocol.version=0', 'fetch', '-q', 'origin'], { cwd: dest }));
        }
      // 2b. ls-remote (protocol v2: the advertisement, then ls-refs), and behind auth_basic
      const lsT: Record<string, number[]> = {};
      const lsHA: number[] = [];
      for (let r = 0; r < RUNS * 2; r++) {
        for (const [name, url] of targets) (lsT[name] ??= []).push(await timed('git', ['ls-remote', '-q', url]));
        lsHA.push(await timed('git', ['ls-remote', '-q', backendAuthUrl]));
      }
      // 2c. the same two, anonymous, on the public copy (same work as http-backend's)
      const anon: [string, string][] = [['palisade', palPublic], ...(before ? ([['palisade-before', before.publicUrl]] as [string, string][]) : []), ['http-backend', backendUrl], ['file://', fileUrl]];
      const fetchA: Record<string, number[]> = {};
      const lsA: Record<string, number[]> = {};
      for (const [name, url] of anon) {
        const dest = path.join(WORK, `clone-anon-${name.replace(/\W/g, '')}`);
        await run('git', ['clone', '-q', '--bare', url, dest]);
      }
      for (let r = 0; r < RUNS * 2; r++)
        for (const [name, url] of anon) {
          (fetchA[name] ??= []).push(await timed('git', ['fetch', '-q', 'origin'], { cwd: path.join(WORK, `clone-anon-${name.replace(/\W/g, '')}`) }));
          (lsA[name] ??= []).push(await timed('git', ['ls-remote', '-q', url]));
        }
      // 3. push of 100 new commits (each run makes its own, so nothing is already there)
      const pushT: Record<string, number[]> = {};
      const wc = path.join(WORK, 'push-wc');
      await run('git', ['clone', '-q', '--no-checkout', source, wc]);
      for (let r = 0; r < RUNS; r++)
        for (const [name, url] of [...targets.filter(([n]) => n !== 'file://'), ['http-backend-auth', backendAuthUrl] as [string, string]]) {
          await run('git', ['checkout', '-q', '-B', `push-${name.replace(/\W/g, '')}-${r}`, 'origin/main'], { cwd: wc });
          for (let c = 0; c < 100; c++) {
            fs.writeFileSync(path.join(wc, 'pushed.txt'), `${name} run ${r} commit ${c} ${crypto.randomUUID()}\n`);
            await run('git', ['add', 'pushed.txt'], { cwd: wc });
            await run('git', ['commit', '-q', '-m', `push ${c}`], { cwd: wc });
          }
          (pushT[name] ??= []).push(await timed('git', ['push', '-q', url, `HEAD:refs/heads/run-${name.replace(/\W/g, '')}-${r}`], { cwd: wc }));
        }

      say(`Repository: ${COMMITS} commits, ${(size / 1e6).toFixed(1)} MB packed. Runs: ${RUNS} (no-op fetch and ls-remote: ${RUNS * 2}), interleaved; medians in ms. Load average at the end: ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}.`);
      say('');
      say(`| operation | Palisade |${before ? ' Palisade before |' : ''} git http-backend (nginx + fcgiwrap) | file:// | Palisade / http-backend |${before ? ' before / http-backend |' : ''} Palisade / file:// | target |`);
      say(`| --- | --- |${before ? ' --- |' : ''} --- | --- | --- |${before ? ' --- |' : ''} --- | --- |`);
      const row = (op: string, m: Record<string, number[]>, target: string) => {
        const p = median(m.palisade!);
        const b = median(m['http-backend']!);
        const f = m['file://'] ? median(m['file://']) : undefined;
        const pb = m['palisade-before'] ? median(m['palisade-before']) : undefined;
        const cells = [op, fmt(p), ...(before ? [pb === undefined ? 'n/a' : fmt(pb)] : []), fmt(b), f === undefined ? 'n/a' : fmt(f), `${(p / b).toFixed(2)}×`, ...(before ? [pb === undefined ? 'n/a' : `${(pb / b).toFixed(2)}×`] : []), f === undefined ? 'n/a' : `${(p / f).toFixed(2)}×`, target];
        say(`| ${cells.join(' | ')} |`);
      };
      row('full clone (--bare)', clone, '≤ 1.0× http-backend');
      row('no-op fetch', fetchT, '≤ 0.85× http-backend, ≤ 2× file://');
      row('ls-remote', lsT, '≤ 0.8× http-backend');
      row('no-op fetch, protocol v0', fetchV0, '');
      row('push of 100 commits', pushT, '≤ 1.0× http-backend');
      row('no-op fetch, public repository, anonymous', fetchA, '');
      row('ls-remote, public repository, anonymous', lsA, '');
      say('');
      say('Authenticated on both sides: Palisade with an identity token, http-backend behind nginx auth_basic (git pays its 401 round trip with both):');
      say('');
      say('| operation | Palisade | http-backend + auth_basic | Palisade / http-backend + auth_basic |');
      say('| --- | --- | --- | --- |');
      for (const [op, pal, hb] of [
        ['no-op fetch', fetchT.palisade!, fetchHA],
        ['ls-remote', lsT.palisade!, lsHA],
        ['push of 100 commits', pushT.palisade!, pushT['http-backend-auth']!],
      ] as [string, number[], number[]][])
        say(`| ${op} | ${fmt(median(pal))} | ${fmt(median(hb))} | ${(median(pal) / median(hb)).toFixed(2)}× |`);
      if (GIT_ONLY) {
        say('');
        say(`Machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${(await run('git', ['--version'])).trim()}.`);
        fs.writeFileSync(path.join(WORK, 'results.md'), lines.join('\n') + '\n');
        return;
      }

      // 4. 16 concurrent clones against Palisade: failures and server RSS growth.
      const base = rssKb(pal.proc.pid!);
      let peak = base;
      const sampler = setInterval(() => {
        peak = Math.max(peak, rssKb(pal.proc.pid!));
      }, 10);
      let t = performance.now();
      const results = await Promise.allSettled(Array.from({ length: 16 }, (_, i) => run('git', ['clone', '-q', '--bare', palUrl, path.join(WORK, `conc-${i}`)])));
      const concMs = performance.now() - t;
      clearInterval(sampler);
      const failed = results.filter((r) => r.status === 'rejected').length;
      for (let i = 0; i < 16; i++) fs.rmSync(path.join(WORK, `conc-${i}`), { recursive: true, force: true });
      t = performance.now();
      const bres = await Promise.allSettled(Array.from({ length: 16 }, (_, i) => run('git', ['clone', '-q', '--bare', backendUrl, path.join(WORK, `concb-${i}`)])));
      const concB = performance.now() - t;
      for (let i = 0; i < 16; i++) fs.rmSync(path.join(WORK, `concb-${i}`), { recursive: true, force: true });
      say('');
      say(`16 concurrent clones: Palisade ${failed} failed, ${fmt(concMs)} ms wall, server RSS ${(base / 1024).toFixed(0)} MB → peak ${(peak / 1024).toFixed(0)} MB (growth ${((peak - base) / 1024).toFixed(0)} MB; target < 200 MB); http-backend ${bres.filter((r) => r.status === 'rejected').length} failed, ${fmt(concB)} ms wall.`);
    }
    // 5. API latency: 1,000 repositories; 1,000 identities each with a token and a grant.
    const lat: Record<string, number[]> = { 'create repository': [], 'create identity': [], 'create token': [], 'grant permission': [] };
    const time = async (k: string, f: () => Promise<any>) => {
      const s = performance.now();
      const out = await f();
      lat[k]!.push(performance.now() - s);
      return out;
    };
    const repoIds: string[] = [];
    for (let i = 0; i < 1000; i++) repoIds.push((await time('create repository', () => api(pal.url, adminKey, 'POST', '/git/v1/repo', { name: `latency/r${i}` }))).repoId);
    for (let i = 0; i < 1000; i++) {
      const id = (await time('create identity', () => api(pal.url, adminKey, 'POST', '/identity/v1/identities'))).id;
      await time('create token', () => api(pal.url, adminKey, 'POST', `/identity/v1/identities/${id}/tokens`));
      await time('grant permission', () => api(pal.url, adminKey, 'POST', `/identity/v1/identities/${id}/permissions/git/${repoIds[i]}`, { permission: 'write' }));
    }
    say('');
    say('| API operation (1,000 each, sequential, keep-alive) | median ms | p99 ms | target |');
    say('| --- | --- | --- | --- |');
    for (const [k, v] of Object.entries(lat)) say(`| ${k} | ${median(v).toFixed(2)} | ${pct(v, 99).toFixed(2)} | median < 5 ms |`);
    say('');
    say(`Machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${(await run('git', ['--version'])).trim()}.`);
    fs.writeFileSync(path.join(WORK, 'results.md'), lines.join('\n') + '\n');
  } finally {
    pal.proc.kill('SIGTERM');
    before?.proc.kill('SIGTERM');
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
