// Benchmark: Mercurial over HTTP through Palisade (decide, then hand the request to the warm
// hgweb worker) against `hg serve` alone on the same repository, 20,000 changesets generated
// with `hg debugbuilddag` (cached in bench/.work/hg-source). Full clone (-U) and no-op pull,
// interleaved, medians. Usage: node --import tsx bench/hg.ts [--runs N]. Writes bench/.work/hg.md.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fmt, freePort, median, startPalisade, WORK } from './lib.ts';

const RUNS = Number(process.argv[process.argv.indexOf('--runs') + 1]) || 3;
const CHANGESETS = 20_000;
const env = { PATH: process.env.PATH, HOME: WORK, HGRCPATH: '', HGPLAIN: '1' };

function hg(args: string[], cwd?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    execFile('hg', ['--config', 'ui.interactive=false', ...args], { cwd, env, maxBuffer: 64 << 20 }, (err, _o, stderr) => (err ? reject(new Error(`hg ${args.join(' ')}: ${stderr}`)) : resolve(performance.now() - t0)));
  });
}


async function main(): Promise<void> {
  const dir = path.join(WORK, 'hg');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const source = path.join(WORK, 'hg-source');
  if (!fs.existsSync(path.join(source, '.hg'))) {
    console.error(`generating ${CHANGESETS} changesets (hg debugbuilddag; a few minutes, once)`);
    await hg(['init', source]);
    await hg(['-R', source, 'debugbuilddag', '--new-file', `+${CHANGESETS}`]);
  }
  let serve: ChildProcess | undefined;
  let pal: Awaited<ReturnType<typeof startPalisade>> | undefined;
  try {
    // hg serve alone: the baseline (Mercurial's own server, nothing in front)
    const servePort = await freePort();
    serve = spawn('hg', ['serve', '-R', source, '-a', '127.0.0.1', '-p', String(servePort), '--config', 'web.push_ssl=False'], { env, stdio: 'ignore', detached: true });
    // Palisade, with the same changesets pushed through it
    const adminKey = `pal_bench_${crypto.randomBytes(16).toString('hex')}`;
    pal = await startPalisade(path.join(dir, 'data'), adminKey, { PALISADE_DEFAULT_REPO_TYPE: 'hg' });
    const r = await fetch(`${pal.url}/_admin/api`, { method: 'POST', body: JSON.stringify({ id: 1, api_key: adminKey, method: 'create_repo', args: { repo_name: 'bench/hg', owner_name: 'admin' } }) });
    if (((await r.json()) as { error: string | null }).error) throw new Error('create_repo failed');
    const palUrl = `${pal.url.replace('http://', `http://admin:${adminKey}@`)}/bench/hg`;
    const tPush = await hg(['push', '-q', palUrl], source).catch((e: Error) => {
      if (/no changes found/.test(e.message)) return 0;
      throw e;
    });
    console.error(`pushed ${CHANGESETS} changesets into Palisade in ${(tPush / 1000).toFixed(1)} s`);
    for (let i = 0; i < 100; i++) {
      const up = await fetch(`http://127.0.0.1:${servePort}/?cmd=capabilities`).then(() => true, () => false);
      if (up) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    const targets: Record<string, string> = { palisade: palUrl, 'hg serve': `http://127.0.0.1:${servePort}/` };
    const clone: Record<string, number[]> = { palisade: [], 'hg serve': [] };
    const pull: Record<string, number[]> = { palisade: [], 'hg serve': [] };
    const copies: Record<string, string> = {};
    // warm both
    for (const u of Object.values(targets)) await hg(['identify', u]);
    for (let i = 0; i < RUNS; i++)
      for (const [name, u] of Object.entries(targets)) {
        const dest = path.join(dir, `clone-${name.replace(' ', '-')}-${i}`);
        clone[name]!.push(await hg(['clone', '-q', '-U', u, dest]));
        copies[name] = dest;
      }
    for (let i = 0; i < RUNS * 2; i++) for (const [name, u] of Object.entries(targets)) pull[name]!.push(await hg(['pull', '-q', u], copies[name]));
    const row = (op: string, m: Record<string, number[]>, target: string) => `| ${op} | ${fmt(median(m.palisade!))} | ${fmt(median(m['hg serve']!))} | ${(median(m.palisade!) / median(m['hg serve']!)).toFixed(2)}× | ${target} |`;
    const table = [
      `Mercurial over HTTP, ${CHANGESETS} changesets, ${RUNS} clones and ${RUNS * 2} no-op pulls each, interleaved, medians in ms`,
      '',
      '| operation | Palisade | hg serve | ratio | target |',
      '| --- | --- | --- | --- | --- |',
      row('full clone (-U)', clone, '≤ 1.2×'),
      row('no-op pull', pull, '≤ 1.5×'),
    ].join('\n');
    console.log(table);
    fs.writeFileSync(path.join(WORK, 'hg.md'), `${table}\n`);
  } finally {
    pal?.proc.kill('SIGTERM');
    if (serve?.pid) {
      try {
        process.kill(-serve.pid, 'SIGTERM');
      } catch {
        /* gone */
      }
    }
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
