// Benchmark: git over SSH through Palisade against the limit for SSH, OpenSSH's sshd running
// git-upload-pack directly for a local user, on the generated repository of bench/run.ts
// (2,600 commits, 57.5 MB packed). Full clone (--bare) and no-op fetch, interleaved, medians.
// Needs root (it starts sshd on a loopback port and creates a Linux user, removed at the end).
// Usage: node --import tsx bench/ssh-git.ts [--runs N]. Writes bench/.work/ssh-git.md.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { api, fmt, freePort, generateRepo, median, packedSize, run, startPalisade, WORK } from './lib.ts';

const RUNS = Number(process.argv[process.argv.indexOf('--runs') + 1]) || 5;


async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench/ssh-git.ts starts sshd and creates a user: run it as root');
  const dir = path.join(WORK, 'ssh');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const source = path.join(WORK, 'bench-source.git');
  if (!fs.existsSync(source)) await generateRepo(source);
  console.log(`repository: ${(packedSize(source) / 1e6).toFixed(1)} MB packed`);

  // the client's key, for both servers
  const key = path.join(dir, 'id_ed25519');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
  const pub = fs.readFileSync(`${key}.pub`, 'utf8').trim();

  // sshd for a local user whose home holds the repository: git-upload-pack runs directly
  const user = `palbench${crypto.randomBytes(3).toString('hex')}`;
  const home = path.join(dir, 'home');
  // '-p *': no password, but not locked (sshd refuses a locked account even with a key)
  execFileSync('useradd', ['-M', '-d', home, '-s', '/bin/sh', '-p', '*', user]);
  let sshd: ChildProcess | undefined;
  let pal: { proc: ChildProcess } | undefined;
  try {
    fs.mkdirSync(path.join(home, '.ssh'), { recursive: true });
    fs.writeFileSync(path.join(home, '.ssh', 'authorized_keys'), `${pub}\n`);
    await run('git', ['clone', '-q', '--bare', source, path.join(home, 'bench.git')]);
    execFileSync('chown', ['-R', `${user}:${user}`, home]);
    fs.chmodSync(home, 0o755);
    fs.chmodSync(path.join(home, '.ssh'), 0o700);
    const hostKey = path.join(dir, 'sshd_host_ed25519');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
    const sshdPort = await freePort();
    fs.writeFileSync(
      path.join(dir, 'sshd_config'),
      [`Port ${sshdPort}`, 'ListenAddress 127.0.0.1', `HostKey ${hostKey}`, `PidFile ${dir}/sshd.pid`, 'UsePAM no', 'PasswordAuthentication no', 'KbdInteractiveAuthentication no', `AllowUsers ${user}`, 'PermitRootLogin no'].join('\n') + '\n',
    );
    fs.mkdirSync('/run/sshd', { recursive: true });
    sshd = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', path.join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', fs.openSync(path.join(dir, 'sshd.log'), 'w')], detached: true });
    for (let i = 0; i < 100; i++) {
      const up = await new Promise<boolean>((r) => net.connect(sshdPort, '127.0.0.1').once('connect', function (this: net.Socket) { this.destroy(); r(true); }).once('error', () => r(false)));
      if (up) break;
      await new Promise((r) => setTimeout(r, 50));
    }

    // Palisade with SSH, the same repository pushed in, the same key registered to admin
    const adminKey = `pal_bench_${crypto.randomBytes(16).toString('hex')}`;
    pal = await startPalisade(path.join(dir, 'data'), adminKey, { PALISADE_SSH_PORT: '0' });
    const { url, sshPort } = pal as Awaited<ReturnType<typeof startPalisade>>;
    await api(url, adminKey, 'POST', '/git/v1/repo', { name: 'bench/repo' });
    await run('git', ['push', '-q', `${url.replace('http://', `http://x-access-token:${adminKey}@`)}/bench/repo.git`, 'main'], { cwd: source });
    await api(url, adminKey, 'POST', '/user/v1/ssh-keys', { publicKey: pub });

    const known = path.join(dir, 'known_hosts');
    fs.writeFileSync(known, '');
    const sshCmd = (port: number) => `ssh -F /dev/null -i ${key} -o IdentitiesOnly=yes -o UserKnownHostsFile=${known} -o StrictHostKeyChecking=no -o LogLevel=ERROR -p ${port}`;
    const targets = {
      palisade: { url: `ssh://git@127.0.0.1/bench/repo.git`, ssh: sshCmd(sshPort!) },
      sshd: { url: `ssh://${user}@127.0.0.1${home}/bench.git`, ssh: sshCmd(sshdPort) },
    };
    const gitSsh = (t: { ssh: string }, args: string[]) => {
      const t0 = performance.now();
      execFileSync('git', args, { env: { ...process.env, HOME: dir, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', GIT_SSH_COMMAND: t.ssh }, stdio: 'ignore' });
      return performance.now() - t0;
    };
    // warm both (page cache, first-connection costs)
    for (const t of Object.values(targets)) gitSsh(t, ['ls-remote', t.url]);

    const clone: Record<string, number[]> = { palisade: [], sshd: [] };
    const fetchNoop: Record<string, number[]> = { palisade: [], sshd: [] };
    const copies: Record<string, string> = {};
    for (let r = 0; r < RUNS; r++)
      for (const [name, t] of Object.entries(targets)) {
        const dest = path.join(dir, `clone-${name}-${r}`);
        clone[name]!.push(gitSsh(t, ['clone', '-q', '--bare', t.url, dest]));
        copies[name] = dest;
      }
    for (let r = 0; r < RUNS * 2; r++)
      for (const [name, t] of Object.entries(targets)) fetchNoop[name]!.push(gitSsh(t, ['--git-dir', copies[name]!, 'fetch', '-q', t.url, 'main']));

    const row = (op: string, m: Record<string, number[]>, target: string) => `| ${op} | ${fmt(median(m.palisade!))} | ${fmt(median(m.sshd!))} | ${(median(m.palisade!) / median(m.sshd!)).toFixed(2)}× | ${target} |`;
    const table = [
      `git over SSH, ${RUNS} clones and ${RUNS * 2} no-op fetches each, interleaved, medians in ms`,
      '',
      '| operation | Palisade SSH | OpenSSH sshd + git-upload-pack | ratio | target |',
      '| --- | --- | --- | --- | --- |',
      row('full clone (--bare)', clone, '≤ 1.15×'),
      row('no-op fetch', fetchNoop, '≤ 1.5×'),
    ].join('\n');
    console.log(table);
    fs.writeFileSync(path.join(WORK, 'ssh-git.md'), `${table}\n`);
  } finally {
    pal?.proc.kill('SIGTERM');
    if (sshd?.pid) {
      try {
        process.kill(-sshd.pid, 'SIGTERM');
      } catch {
        /* gone */
      }
    }
    try {
      execFileSync('userdel', [user]);
    } catch {
      /* already gone */
    }
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
