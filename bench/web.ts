// The web pages' speed targets (issue 11): a folder of 5,000 entries, the history of a
// repository with 100,000 commits, a 1 MB source file, and the repository list with 10,000
// repositories; server time p50 <= 50 ms each, and every page's HTML under 200 KB before the
// file or diff body. Pages are fetched over loopback by a signed-in user, sequentially, after a
// warm-up; the time is the whole request as the client sees it (`--runs N`, default 50).
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { repoDir } from '../src/git/repo-path.ts';
import { api, env, fmt, median, pct, startPalisade, WORK } from './lib.ts';

const runs = Number(process.argv[process.argv.indexOf('--runs') + 1]) || 50;

/** Writes a history into a bare repository with one `git fast-import`: `commits` commits, then a last one with the big folder and file. */
function fastImport(dir: string, commits: number, folderEntries: number, bigFileBytes: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const fi = spawn('git', ['--git-dir', dir, 'fast-import', '--quiet', '--force'], { env, stdio: ['pipe', 'ignore', 'inherit'] });
    fi.on('error', reject);
    fi.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`fast-import exited ${code}`))));
    const w = (s: string | Buffer) => fi.stdin!.write(s);
    const t0 = 1_600_000_000;
    for (let i = 1; i <= commits; i++) {
      const msg = `Change ${i}: adjust the counter\n`;
      const content = `counter ${i}\n`;
      w(`commit refs/heads/main\nmark :${i}\ncommitter Bench <bench@example.com> ${t0 + i * 60} +0000\ndata ${Buffer.byteLength(msg)}\n${msg}`);
      if (i > 1) w(`from :${i - 1}\n`);
      w(`M 100644 inline counter.txt\ndata ${Buffer.byteLength(content)}\n${content}\n`);
    }
    const msg = 'Add the big folder and the big file\n';
    w(`commit refs/heads/main\nmark :${commits + 1}\ncommitter Bench <bench@example.com> ${t0 + (commits + 1) * 60} +0000\ndata ${Buffer.byteLength(msg)}\n${msg}from :${commits}\n`);
    for (let i = 0; i < folderEntries; i++) {
      const c = `entry ${i}\n`;
      w(`M 100644 inline big-folder/file-${String(i).padStart(5, '0')}.txt\ndata ${Buffer.byteLength(c)}\n${c}\n`);
    }
    // a 1 MB TypeScript source: realistic lines (highlighting is what costs)
    const lines: string[] = [];
    let n = 0;
    for (let size = 0; size < bigFileBytes; n++) {
      const l = n % 5 === 0 ? `// function number ${n}: returns a greeting for the given name` : n % 5 === 1 ? `export function greet${n}(name: string, times = ${n}): string {` : n % 5 === 2 ? `  const text = \`hello \${name} #${n}\`.repeat(times > 3 ? 3 : times);` : n % 5 === 3 ? '  return text.trim();' : '}';
      lines.push(l);
      size += l.length + 1;
    }
    const big = Buffer.from(`${lines.join('\n')}\n`);
    w(`M 100644 inline src/big.ts\ndata ${big.length}\n`);
    w(big);
    w('\n');
    // 100 KB of the same: highlighted (the limit is 128 KiB)
    const medium = Buffer.from(`${big.subarray(0, 100 * 1024).toString('utf8').replace(/\n[^\n]*$/, '')}\n`);
    w(`M 100644 inline src/medium.ts\ndata ${medium.length}\n`);
    w(medium);
    w('\n');
    fi.stdin!.end();
  });
}

async function measure(url: string, cookie: string, page: string): Promise<{ first: number; p50: number; p90: number; bytes: number; chrome: number; status: number }> {
  const get = async () => {
    const res = await fetch(url + page, { headers: { accept: 'text/html', cookie } });
    return { status: res.status, body: await res.text() };
  };
  const t0 = performance.now();
  await get();
  const first = performance.now() - t0;
  for (let i = 0; i < 4; i++) await get();
  const times: number[] = [];
  let last = { status: 0, body: '' };
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    last = await get();
    times.push(performance.now() - t);
  }
  const chrome = last.body.replace(/<pre class="ln">[\s\S]*?<\/pre>|<pre class="code hljs" id="code">[\s\S]*?<\/pre>|<table class="diff">[\s\S]*?<\/table>/g, '');
  return { first, p50: median(times), p90: pct(times, 90), bytes: Buffer.byteLength(last.body), chrome: Buffer.byteLength(chrome), status: last.status };
}

async function signIn(url: string, username: string, password: string): Promise<string> {
  const form = await fetch(`${url}/-/login`, { headers: { accept: 'text/html' } });
  const csrfCookie = form.headers.getSetCookie()[0]!.split(';')[0]!;
  const token = /name="_csrf" value="([^"]+)"/.exec(await form.text())![1]!;
  const res = await fetch(`${url}/-/login`, { method: 'POST', redirect: 'manual', headers: { cookie: csrfCookie, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ _csrf: token, username, password }).toString() });
  return res.headers.getSetCookie().find((c) => c.startsWith('palisade_session='))!.split(';')[0]!;
}

async function main(): Promise<void> {
  fs.mkdirSync(WORK, { recursive: true });
  const data = path.join(WORK, 'web-data');
  fs.rmSync(data, { recursive: true, force: true });
  const key = `pal_bench_${crypto.randomBytes(12).toString('hex')}`;
  const pal = await startPalisade(data, key);
  const lines: string[] = [];
  const say = (s: string) => {
    lines.push(s);
    console.log(s);
  };
  try {
    const rpc = (method: string, args: Record<string, unknown>) => api(pal.url, key, 'POST', '/_admin/api', { id: 1, api_key: key, method, args });
    await rpc('create_user', { username: 'benchadmin', password: 'bench-password', email: 'a@example.com', admin: true });
    await rpc('create_user', { username: 'benchuser', password: 'bench-password', email: 'u@example.com' });

    let t = performance.now();
    const { repoId } = await api(pal.url, key, 'POST', '/git/v1/repo', { name: 'bench/history', public: true });
    await fastImport(repoDir(data, repoId), 100_000, 5000, 1024 * 1024);
    console.error(`history of 100,000 commits written in ${((performance.now() - t) / 1000).toFixed(1)} s`);

    t = performance.now();
    let next = 0;
    const total = 10_000;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < total) {
          const i = next++;
          await api(pal.url, key, 'POST', '/git/v1/repo', { name: `org${i % 100}/repo-${String(i).padStart(5, '0')}`, public: i % 2 === 0, description: `Repository number ${i}` });
        }
      }),
    );
    console.error(`10,000 repositories created in ${((performance.now() - t) / 1000).toFixed(1)} s`);

    const admin = await signIn(pal.url, 'benchadmin', 'bench-password');
    const user = await signIn(pal.url, 'benchuser', 'bench-password');
    const pages: [string, string, string][] = [
      ['tree: folder of 5,000 entries (first page of 500)', admin, '/bench/history/-/tree/main/big-folder'],
      ['history: 100,000 commits, first page', admin, '/bench/history/-/commits/main'],
      ['history: 100,000 commits, page 1,000 (offset 50,000)', admin, '/bench/history/-/commits/main?offset=50000'],
      ['history of one path (counter.txt), first page', admin, '/bench/history/-/commits/main?path=counter.txt'],
      ['file: 1 MB TypeScript (plain: past the 128 KiB highlighting limit)', admin, '/bench/history/-/blob/main/src/big.ts'],
      ['file: 100 KB TypeScript, highlighted', admin, '/bench/history/-/blob/main/src/medium.ts'],
      ['repository list, 10,001 repositories, admin', admin, '/'],
      ['repository list, a user (5,001 public visible)', user, '/'],
      ['repository list, search "repo-0999"', user, '/?q=repo-0999'],
      ['repository summary (README-less, root tree)', admin, '/bench/history'],
      ['commit page', admin, '/bench/history/-/commit/main'],
    ];
    say(`| page | first ms | p50 ms | p90 ms | HTML bytes | HTML before the file/diff body |`);
    say('| --- | --- | --- | --- | --- | --- |');
    for (const [label, cookie, page] of pages) {
      const m = await measure(pal.url, cookie, page);
      if (m.status !== 200) throw new Error(`${page}: ${m.status}`);
      say(`| ${label} | ${fmt(m.first)} | ${fmt(m.p50)} | ${fmt(m.p90)} | ${m.bytes.toLocaleString('en')} | ${m.chrome.toLocaleString('en')} |`);
    }
  } finally {
    pal.proc.kill('SIGTERM');
    fs.writeFileSync(path.join(WORK, 'web.md'), `${lines.join('\n')}\n`);
  }
}

await main();
