// Archive imports: how fast a bomb is refused and how much the server's peak memory (VmHWM)
// moves, for a tar.gz and a zip of BOMB_MIB MiB of zeros; then a legitimate archive of
// REAL_MIB MiB of random bytes (tar.gz streams; a zip is held in memory as downloaded).
// The first import of a fresh server raises its peak by ~30 MiB whatever the archive (warm-up);
// ORDER="real.tgz bomb.tgz bomb.zip" puts a legitimate import first to see the bombs alone.
// Usage: npm run build && node --import tsx bench/archive-import.ts   (env BOMB_MIB=300 REAL_MIB=100 ORDER=…)
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { api, startServer } from '../test/helpers/server.ts';

const MiB = 1024 * 1024;
const BOMB = Number(process.env.BOMB_MIB ?? 300) * MiB;
const REAL = Number(process.env.REAL_MIB ?? 100) * MiB;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'palisade-bench-archive-'));
const status = (pid: number, key: string) => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
const mib = (n: number) => `${(n / MiB).toFixed(1)} MiB`;

async function main(): Promise<void> {
  const zeros = path.join(dir, 'zeros');
  fs.writeFileSync(zeros, '');
  fs.truncateSync(zeros, BOMB);
  execFileSync('tar', ['-czf', 'bomb.tgz', 'zeros'], { cwd: dir });
  execFileSync('zip', ['-q', 'bomb.zip', 'zeros'], { cwd: dir });
  fs.rmSync(zeros);
  execFileSync('sh', ['-c', `head -c ${REAL} /dev/urandom > random && tar -czf real.tgz random && zip -q real.zip random && rm random`], { cwd: dir });

  const files = http.createServer((req, res) => {
    const f = path.join(dir, path.basename(req.url ?? ''));
    res.writeHead(200, { 'content-length': fs.statSync(f).size });
    fs.createReadStream(f).pipe(res);
  });
  await new Promise<void>((r) => files.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(files.address() as AddressInfo).port}`;
  // single entries as large as the bomb are allowed, so the streaming checks are what stops it
  const s = await startServer({ PALISADE_ALLOW_PRIVATE_URLS: '1', PALISADE_MAX_IMPORT_ENTRY_BYTES: String(2 * BOMB), PALISADE_MAX_IMPORT_UNPACKED_BYTES: String(2 * BOMB) });
  try {
    const pid = s.proc.pid!;
    for (const [name, type] of (process.env.ORDER ?? 'bomb.tgz bomb.zip real.tgz real.zip').split(' ').map((n) => [n, n.endsWith('zip') ? 'zip' : 'tar'] as const)) {
      const peak = status(pid, 'VmHWM');
      const started = Date.now();
      const r = await api(s, 'POST', '/git/v1/repo', { key: s.adminKey, body: { import: { type, url: `${base}/${name}`, commitMessage: 'bench' } } });
      const ms = Date.now() - started;
      const size = fs.statSync(path.join(dir, name)).size;
      const unpacked = name.startsWith('bomb') ? BOMB : REAL;
      console.log(`${name.padEnd(9)} ${mib(size).padStart(10)} -> ${mib(unpacked)}: HTTP ${r.status} ${r.body.code ?? ''} in ${ms} ms; peak RSS ${mib(peak)} -> ${mib(status(pid, 'VmHWM'))}`);
    }
  } finally {
    await s.stop();
    files.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
