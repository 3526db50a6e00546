// Benchmark: a push of 100 commits (a fast-forward of an existing branch) over smart HTTP by an
// identity whose grant carries no ref rules, against the same push under ref rules that forbid
// force pushes (so that every update goes through the pre-receive hook's ancestry check), and a
// new branch under those rules (decided up front, no hook). Same server, same repository (the
// generated 2,600-commit history, auto gc off so that no background repack lands on a push),
// runs interleaved in rotating order. Usage: node --import tsx bench/push-rules.ts [--runs N]
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoDir } from '../src/git/repo-path.ts';
import { api, fmt, generateRepo, median, run, startPalisade, timed, WORK } from './lib.ts';

const RUNS = Number(process.argv[process.argv.indexOf('--runs') + 1] || 10) || 10;
const DIR = path.join(WORK, 'push-rules');

async function main(): Promise<void> {
  fs.rmSync(DIR, { recursive: true, force: true });
  fs.mkdirSync(DIR, { recursive: true });
  const source = path.join(DIR, 'source.git');
  await generateRepo(source);
  const adminKey = `pal_bench_${crypto.randomBytes(16).toString('hex')}`;
  const pal = await startPalisade(path.join(DIR, 'data'), adminKey);
  try {
    const { repoId } = await api(pal.url, adminKey, 'POST', '/git/v1/repo', { name: 'bench/rules' });
    const adminUrl = `${pal.url.replace('http://', `http://admin:${adminKey}@`)}/bench/rules.git`;
    await run('git', ['push', '-q', adminUrl, 'main', 'main:refs/heads/plain', 'main:refs/heads/agents/ruled'], { cwd: source });
    // receive-pack's background `gc --auto` would repack the 57 MB history every few runs and
    // land on whichever push came next: off for this repository, and packed once
    const served = repoDir(path.join(DIR, 'data'), repoId);
    await run('git', ['config', 'gc.auto', '0'], { cwd: served });
    await run('git', ['config', 'gc.autoPackLimit', '0'], { cwd: served });
    await run('git', ['repack', '-adq'], { cwd: served });
    const identity = async (refs?: object) => {
      const { id } = await api(pal.url, adminKey, 'POST', '/identity/v1/identities');
      await api(pal.url, adminKey, 'POST', `/identity/v1/identities/${id}/permissions/git/${repoId}`, { permission: 'write', ...(refs ? { refs } : {}) });
      const { token } = await api(pal.url, adminKey, 'POST', `/identity/v1/identities/${id}/tokens`);
      return `${pal.url.replace('http://', `http://x-access-token:${token}@`)}/bench/rules.git`;
    };
    const plainUrl = await identity();
    const ruledUrl = await identity({ allow: ['refs/heads/agents/*'], forcePush: false, deleteRefs: false });

    const wc = path.join(DIR, 'wc');
    await run('git', ['clone', '-q', '--bare', adminUrl, wc]);
    const scenarios: [string, string, (r: number) => string][] = [
      ['no ref rules (update)', plainUrl, () => 'plain'],
      ['no ref rules again (update: the noise floor)', plainUrl, () => 'plain'],
      ['ref rules, force forbidden (update: pre-receive hook)', ruledUrl, () => 'agents/ruled'],
      ['ref rules (new branch: decided up front)', ruledUrl, (r) => `agents/new-${r}`],
    ];
    const times: Record<string, number[]> = {};
    for (let r = 0; r < RUNS; r++) {
      // each round in another order: a background gc or a slow second must not always hit the same one
      for (let k = 0; k < scenarios.length; k++) {
        const [name, url, branch] = scenarios[(k + r) % scenarios.length]!;
        const b = branch(r);
        // 100 new commits on the branch's current tip (the server's), so the push is a fast-forward
        await run('git', ['fetch', '-q', adminUrl, b.startsWith('agents/new-') ? 'main' : b], { cwd: wc });
        const tip = (await run('git', ['rev-parse', 'FETCH_HEAD'], { cwd: wc })).trim();
        let stream = '';
        for (let c = 0; c < 100; c++) {
          const content = `${name} run ${r} commit ${c} ${crypto.randomUUID()}\n`;
          const msg = `push ${c}\n`;
          stream += `commit refs/heads/work\ncommitter Bench <bench@example.com> ${1_800_000_000 + r * 1000 + c} +0000\ndata ${msg.length}\n${msg}${c === 0 ? `from ${tip}\n` : ''}M 644 inline pushed.txt\ndata ${Buffer.byteLength(content)}\n${content}\n`;
        }
        await run('git', ['fast-import', '--quiet', '--force'], { cwd: wc, input: stream });
        (times[name] ??= []).push(await timed('git', ['push', '-q', url, `refs/heads/work:refs/heads/${b}`], { cwd: wc }));
      }
      // every push leaves a pack; every few rounds they are packed together again (untimed), so
      // the later runs do not look objects up in hundreds of packs
      if (r % 5 === 4) await run('git', ['repack', '-adq'], { cwd: served });
    }
    const base = median(times[scenarios[0]![0]]!);
    // paired: each run against the no-rules run of the same round (the rounds drift; a pair does not)
    const paired = (name: string) => median(times[name]!.map((t, i) => t / times[scenarios[0]![0]]![i]!));
    const lines = [
      `Push of 100 commits over smart HTTP as an identity, ${RUNS} runs each, interleaved, medians (repository: the generated ${'2,600'}-commit history):`,
      '',
      '| push | median ms | min ms | max ms | median / no rules | median of paired ratios |',
      '| --- | --- | --- | --- | --- | --- |',
      ...scenarios.map(([name]) => {
        const xs = times[name]!;
        return `| ${name} | ${fmt(median(xs))} | ${fmt(Math.min(...xs))} | ${fmt(Math.max(...xs))} | ${(median(xs) / base).toFixed(2)}× | ${paired(name).toFixed(2)}× |`;
      }),
      '',
      `Machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, Node ${process.version}.`,
    ];
    console.log(lines.join('\n'));
    fs.writeFileSync(path.join(WORK, 'push-rules-results.md'), lines.join('\n') + '\n');
  } finally {
    pal.proc.kill('SIGTERM');
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
