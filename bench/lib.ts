// Helpers shared by the benchmarks: a pinned git environment, timing, percentiles, the generated
// repository with a long history, and starting the real server.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { repoDir } from '../src/git/repo-path.ts';

export const ROOT = path.resolve(import.meta.dirname, '..');
export const WORK = path.join(ROOT, 'bench', '.work');
export const COMMITS = 2600;
const BLOB_BYTES = 21 * 1024;

export const env = {
  PATH: process.env.PATH,
  HOME: WORK,
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_TERMINAL_PROMPT: '0',
  LC_ALL: 'C',
  GIT_AUTHOR_NAME: 'Bench',
  GIT_AUTHOR_EMAIL: 'bench@example.com',
  GIT_COMMITTER_NAME: 'Bench',
  GIT_COMMITTER_EMAIL: 'bench@example.com',
};

export function run(cmd: string, args: string[], opts: { cwd?: string; input?: string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = execFile(cmd, args, { cwd: opts.cwd, env, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${stderr || err.message}`));
      else resolve(String(stdout));
    });
    if (opts.input !== undefined) c.stdin!.end(opts.input);
  });
}
export async function timed(cmd: string, args: string[], opts: { cwd?: string } = {}): Promise<number> {
  const t = performance.now();
  await run(cmd, args, opts);
  return performance.now() - t;
}
export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
export const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)]!;
export const fmt = (ms: number) => (ms >= 100 ? ms.toFixed(0) : ms.toFixed(1));

/** A benchmark's report: each line printed and kept, to be written to its results.md. */
export function report(): { lines: string[]; say: (s: string) => void } {
  const lines: string[] = [];
  return {
    lines,
    say: (s) => {
      lines.push(s);
      console.log(s);
    },
  };
}

/** generateRepo at `dir`, saying how large and how long; returns its packed size in bytes. */
export async function generateSource(dir: string): Promise<number> {
  const t = performance.now();
  await generateRepo(dir);
  const size = packedSize(dir);
  console.error(`generated ${COMMITS} commits, ${(size / 1e6).toFixed(1)} MB packed, in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  return size;
}

/** A repository with a long history: COMMITS commits, each editing a text file and adding an incompressible blob. */
export async function generateRepo(dir: string): Promise<void> {
  await run('git', ['init', '-q', '--bare', '-b', 'main', dir]);
  await new Promise<void>((resolve, reject) => {
    const fi = spawn('git', ['fast-import', '--quiet'], { cwd: dir, env, stdio: ['pipe', 'ignore', 'inherit'] });
    fi.on('error', reject);
    fi.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`fast-import exited ${code}`))));
    const rng = crypto.createHash('sha256');
    let seed = rng.update('palisade-bench').digest();
    const bytes = (n: number) => {
      const out = Buffer.alloc(n);
      for (let o = 0; o < n; o += 32) {
        seed = crypto.createHash('sha256').update(seed).digest();
        seed.copy(out, o);
      }
      return out;
    };
    let i = 0;
    const write = () => {
      while (i < COMMITS) {
        const text = Buffer.from(Array.from({ length: 40 }, (_, l) => `line ${l} of file ${i % 200}, revision ${i}`).join('\n') + '\n');
        const blob = bytes(BLOB_BYTES);
        const msg = Buffer.from(`commit ${i}\n`);
        const parts = [
          `commit refs/heads/main\nmark :${i + 1}\ncommitter Bench <bench@example.com> ${1_700_000_000 + i * 60} +0000\ndata ${msg.length}\n`,
          msg,
          `M 644 inline src/file${i % 200}.txt\ndata ${text.length}\n`,
          text,
          `\nM 644 inline assets/${Math.floor(i / 100)}/blob${i}.bin\ndata ${blob.length}\n`,
          blob,
          '\n',
        ];
        i++;
        const ok = fi.stdin.write(Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p))));
        if (!ok) return void fi.stdin.once('drain', write);
      }
      fi.stdin.end();
    };
    write();
  });
  await run('git', ['repack', '-adq'], { cwd: dir });
}

export function packedSize(dir: string): number {
  const packs = path.join(dir, 'objects', 'pack');
  return fs.readdirSync(packs).filter((f) => f.endsWith('.pack')).reduce((n, f) => n + fs.statSync(path.join(packs, f)).size, 0);
}

export async function startPalisade(dataDir: string, adminKey: string, extraEnv: Record<string, string> = {}, bin = path.join(ROOT, 'bin', 'palisade.js')): Promise<{ url: string; proc: ChildProcess; sshPort?: number }> {
  // BENCH_CPU_PROF=<folder>: the server writes a V8 CPU profile there when it stops (SIGTERM),
  // sampled every BENCH_CPU_PROF_US microseconds (default 1000; a git request's work is a few hundred)
  const prof = process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-interval', process.env.BENCH_CPU_PROF_US ?? '1000', `--cpu-prof-dir=${path.resolve(process.env.BENCH_CPU_PROF)}`] : [];
  const proc = spawn(process.execPath, [...prof, bin, 'serve', '--port', '0', '--data', dataDir], {
    env: { ...process.env, PALISADE_ADMIN_API_KEY: adminKey, PALISADE_LOG_LEVEL: 'warn', ...extraEnv },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    proc.stdout!.on('data', (d: Buffer) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    proc.once('exit', (c) => reject(new Error(`palisade exited ${c}`)));
  });
  const ssh = /ssh listening on \S+:(\d+)/.exec(out);
  return { url, proc, sshPort: ssh ? Number(ssh[1]) : undefined };
}


/**
 * The benchmarks' repository on a started Palisade: `source`'s main pushed through an identity
 * with write access and repacked like the baseline's copy. Returns the URL with that identity's
 * token in it and the repository's id.
 */
export async function benchRepo(palUrl: string, dataDir: string, adminKey: string, source: string, name = 'bench/repo'): Promise<{ url: string; repoId: string }> {
  const { repoId } = await api(palUrl, adminKey, 'POST', '/git/v1/repo', { name });
  const ident = await api(palUrl, adminKey, 'POST', '/identity/v1/identities');
  await api(palUrl, adminKey, 'POST', `/identity/v1/identities/${ident.id}/permissions/git/${repoId}`, { permission: 'write' });
  const { token } = await api(palUrl, adminKey, 'POST', `/identity/v1/identities/${ident.id}/tokens`);
  const url = `${palUrl.replace('http://', `http://x-access-token:${token}@`)}/${name}.git`;
  await run('git', ['push', '-q', url, 'main'], { cwd: source });
  await run('git', ['repack', '-adq'], { cwd: repoDir(dataDir, repoId) });
  return { url, repoId };
}

/** One authenticated JSON call; throws on a non-2xx answer. */
export async function api(url: string, key: string, method: string, p: string, body?: unknown): Promise<any> {
  const res = await fetch(url + p, { method, headers: { authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
  if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${await res.text()}`);
  return res.json();
}

/** git http-backend behind nginx + fcgiwrap serving the bare repositories under `root` (the baseline of the git benchmarks); returns the processes to stop. */
export async function startHttpBackend(root: string, port: number): Promise<ChildProcess[]> {
  const prefix = path.join(WORK, 'nginx');
  fs.mkdirSync(path.join(prefix, 'tmp'), { recursive: true });
  const sock = path.join(prefix, 'fcgiwrap.sock');
  fs.rmSync(sock, { force: true });
  // own process groups, so that stopping them also stops fcgiwrap's and nginx's workers
  const fcgi = spawn('fcgiwrap', ['-c', '16', '-s', `unix:${sock}`], { stdio: 'inherit', env: { PATH: process.env.PATH }, detached: true });
  // git http-backend behind one nginx location, the user it is told of as REMOTE_USER
  const location = (remoteUser: string) => `      fastcgi_pass unix:${sock};
      fastcgi_buffering off;
      fastcgi_request_buffering off;
      fastcgi_read_timeout 600s;
      include /etc/nginx/fastcgi_params;
      fastcgi_param SCRIPT_FILENAME /usr/lib/git-core/git-http-backend;
      fastcgi_param GIT_PROJECT_ROOT ${root};
      fastcgi_param GIT_HTTP_EXPORT_ALL "";
      fastcgi_param PATH_INFO $uri;
      fastcgi_param GIT_PROTOCOL $http_git_protocol;
      fastcgi_param REMOTE_USER ${remoteUser};`;
  const conf = `
user root;
worker_processes 2;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 512; }
http {
  access_log off;
  client_max_body_size 0;
  client_body_temp_path ${prefix}/tmp/body;
  fastcgi_temp_path ${prefix}/tmp/fastcgi;
  proxy_temp_path ${prefix}/tmp/proxy;
  uwsgi_temp_path ${prefix}/tmp/uwsgi;
  scgi_temp_path ${prefix}/tmp/scgi;
  server {
    listen 127.0.0.1:${port};
    location / {
${location('bench')}
    }
  }
  # the same behind HTTP Basic (nginx's auth_basic), as a private repository is served: the
  # client pays git's 401 round trip here too (user bench, password bench)
  server {
    listen 127.0.0.1:${port + 1};
    location / {
      auth_basic "bench";
      auth_basic_user_file ${prefix}/htpasswd;
${location('$remote_user')}
    }
  }
}`;
  fs.writeFileSync(path.join(prefix, 'htpasswd'), 'bench:{PLAIN}bench\n');
  fs.writeFileSync(path.join(prefix, 'nginx.conf'), conf);
  const nginx = spawn('nginx', ['-p', prefix, '-c', path.join(prefix, 'nginx.conf'), '-g', 'daemon off;'], { stdio: 'inherit', detached: true });
  for (let i = 0; i < 100; i++) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/bench.git/info/refs?service=git-upload-pack`);
      if (r.status === 200) return [nginx, fcgi];
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('nginx + fcgiwrap did not come up');
}

/** A port free right now (the tests' one: for programs that cannot listen on port 0). */
export { freePort } from '../test/helpers/server.ts';
