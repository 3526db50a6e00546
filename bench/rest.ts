// Benchmark of the Git REST API: commits.create of 10 files (one repository, and across 100),
// contents of a file at HEAD (warm object reader), and the tarball of the generated repository
// against `git archive` directly. Usage: node --import tsx bench/rest.ts
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { repoDir } from '../src/git/repo-path.ts';
import { api, env, fmt, generateRepo, median, pct, run, startPalisade, WORK } from './lib.ts';
import { spawn } from 'node:child_process';

const files10 = (tag: string) => Array.from({ length: 10 }, (_, i) => ({ path: `src/dir${i % 3}/file${i}.txt`, content: `${tag} file ${i} ${crypto.randomBytes(512).toString('hex')}\n` }));

async function main(): Promise<void> {
  fs.mkdirSync(WORK, { recursive: true });
  const source = path.join(WORK, 'source.git');
  if (!fs.existsSync(source)) await generateRepo(source);
  const data = path.join(WORK, 'rest-data');
  fs.rmSync(data, { recursive: true, force: true });
  const key = `pal_bench_${crypto.randomBytes(12).toString('hex')}`;
  const pal = await startPalisade(data, key);
  const lines: string[] = [];
  const say = (s: string) => {
    lines.push(s);
    console.log(s);
  };
  try {
    // 1. commits.create of 10 files on one repository, sequential and with 4 concurrent clients
    const { repoId } = await api(pal.url, key, 'POST', '/git/v1/repo', { name: 'rest/one' });
    for (let i = 0; i < 20; i++) await api(pal.url, key, 'POST', `/git/v1/repo/${repoId}/commits`, { message: `warm ${i}`, files: files10(`w${i}`) });
    const seq: number[] = [];
    let t = performance.now();
    for (let i = 0; i < 300; i++) {
      const t0 = performance.now();
      await api(pal.url, key, 'POST', `/git/v1/repo/${repoId}/commits`, { message: `c ${i}`, files: files10(`s${i}`) });
      seq.push(performance.now() - t0);
    }
    const seqRate = 300 / ((performance.now() - t) / 1000);
    t = performance.now();
    await Promise.all(Array.from({ length: 4 }, (_, c) => (async () => {
      for (let i = 0; i < 100; i++) await api(pal.url, key, 'POST', `/git/v1/repo/${repoId}/commits`, { message: `p ${c} ${i}`, files: files10(`p${c}-${i}`) });
    })()));
    const conRate = 400 / ((performance.now() - t) / 1000);
    const total = (await api(pal.url, key, 'GET', `/git/v1/repo/${repoId}/git/commits?limit=1`)).total as number;
    if (total !== 20 + 300 + 400) throw new Error(`lost commits: ${total}`);

    // 2. across 100 repositories, 8 concurrent clients
    const repos: string[] = [];
    for (let i = 0; i < 100; i++) repos.push((await api(pal.url, key, 'POST', '/git/v1/repo', {})).repoId);
    const across: number[] = [];
    t = performance.now();
    let next = 0;
    await Promise.all(Array.from({ length: 8 }, () => (async () => {
      while (next < 1000) {
        const i = next++;
        const t0 = performance.now();
        await api(pal.url, key, 'POST', `/git/v1/repo/${repos[i % 100]}/commits`, { message: `a ${i}`, files: files10(`a${i}`) });
        across.push(performance.now() - t0);
      }
    })()));
    const acrossRate = 1000 / ((performance.now() - t) / 1000);

    // 3. contents of one file at HEAD, sequential, after a warm-up
    const url = `${pal.url}/git/v1/repo/${repoId}/contents/src/dir0/file0.txt`;
    const headers = { authorization: `Bearer ${key}` };
    for (let i = 0; i < 50; i++) await (await fetch(url, { headers })).arrayBuffer();
    const contents: number[] = [];
    for (let i = 0; i < 2000; i++) {
      const t0 = performance.now();
      const res = await fetch(url, { headers });
      await res.arrayBuffer();
      contents.push(performance.now() - t0);
    }

    // 4. tarball of the generated repository vs git archive directly
    const { repoId: big } = await api(pal.url, key, 'POST', '/git/v1/repo', { name: 'rest/big' });
    const tokenUrl = `${pal.url.replace('http://', `http://x-access-token:${key}@`)}/rest/big.git`;
    await run('git', ['push', '-q', tokenUrl, 'main'], { cwd: source });
    const bigDir = repoDir(data, big);
    await run('git', ['repack', '-adq'], { cwd: bigDir });
    const viaApi: number[] = [];
    const direct: number[] = [];
    let apiBytes = 0;
    let directBytes = 0;
    for (let r = 0; r < 5; r++) {
      let t0 = performance.now();
      const res = await fetch(`${pal.url}/git/v1/repo/${big}/tarball`, { headers });
      apiBytes = 0;
      for await (const chunk of res.body as AsyncIterable<Uint8Array>) apiBytes += chunk.length;
      viaApi.push(performance.now() - t0);
      t0 = performance.now();
      directBytes = await new Promise<number>((resolve, reject) => {
        const c = spawn('git', ['--git-dir', bigDir, 'archive', '--format=tar.gz', 'main'], { env });
        let n = 0;
        c.stdout.on('data', (d: Buffer) => (n += d.length));
        c.on('error', reject);
        c.on('close', () => resolve(n));
      });
      direct.push(performance.now() - t0);
    }

    say('| Git REST operation | result | target |');
    say('| --- | --- | --- |');
    say(`| commits.create, 10 files, one repository, sequential (300) | median ${fmt(median(seq))} ms, p99 ${fmt(pct(seq, 99))} ms, ${seqRate.toFixed(0)} commits/s | ≥ 200 commits/s |`);
    say(`| commits.create, 10 files, one repository, 4 concurrent clients (400) | ${conRate.toFixed(0)} commits/s, none lost | ≥ 200 commits/s |`);
    say(`| commits.create, 10 files, across 100 repositories, 8 concurrent clients (1,000) | median ${fmt(median(across))} ms, ${acrossRate.toFixed(0)} commits/s | |`);
    say(`| contents of a file at HEAD (2,000 sequential, warm reader) | p50 ${median(contents).toFixed(2)} ms, p99 ${pct(contents, 99).toFixed(2)} ms | p50 ≤ 2 ms |`);
    say(`| tarball of the benchmark repository (${(apiBytes / 1e6).toFixed(1)} MB .tar.gz) vs git archive (${(directBytes / 1e6).toFixed(1)} MB), 5 runs | ${fmt(median(viaApi))} ms vs ${fmt(median(direct))} ms: ${(median(viaApi) / median(direct)).toFixed(2)}× | ≤ 1.1× |`);
    say('');
    say(`Machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, Node ${process.version}.`);
    fs.writeFileSync(path.join(WORK, 'rest-results.md'), lines.join('\n') + '\n');
  } finally {
    pal.proc.kill('SIGTERM');
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
