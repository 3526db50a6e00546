// A real OpenSSH server playing a VM: its own config, host key and port under a temp folder,
// Linux users created for it, the gateway key installed the way the README tells a VM to.
// Needs root and /usr/sbin/sshd. stop() kills sshd, whatever the users still run, and removes
// the users with their homes; call it in `after`, it is safe to call twice.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../helpers/server.ts';

export { freePort };

export const canRunSshd = (): boolean => process.getuid?.() === 0 && fs.existsSync('/usr/sbin/sshd');

export interface VmHost {
  port: number;
  dir: string;
  /** `ssh-ed25519 AAAA…`: the host key line to register */
  hostKeyLine: string;
  /** `ecdsa-sha2-nistp256 AAAA…`: the VM's second host key (sshd offers both) */
  ecdsaHostKeyLine: string;
  /** the Linux users created, by the short names asked for */
  users: Record<string, string>;
  /** sshd's own log so far (its -e output) */
  log(): string;
  stop(): Promise<void>;
}

export interface VmHostOptions {
  /** `GET /vm/v1/gateway-key`'s answer */
  gatewayKey: { authorizedKeysLine: string; sshdConfig: string };
  /** short names (`dev`, `ci`): each becomes `palvm-<name>-<random>` */
  users: string[];
  /** more sshd_config lines */
  extra?: string[];
  /** public key lines put in each user's own ~/.ssh/authorized_keys (a direct login, for comparisons) */
  userKeys?: string[];
}


/** Pids of the processes a Linux user runs. */
function processesOf(user: string): number[] {
  try {
    return execFileSync('ps', ['-u', user, '-o', 'pid='], { encoding: 'utf8' })
      .split('\n')
      .map((l) => Number(l.trim()))
      .filter((n) => n > 0);
  } catch {
    return []; // ps exits 1 when there are none
  }
}

export async function startVmHost(o: VmHostOptions): Promise<VmHost> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'palisade-vm-'));
  fs.chmodSync(dir, 0o755);
  const suffix = crypto.randomBytes(3).toString('hex');
  const users: Record<string, string> = {};
  let sshd: ChildProcess | undefined;
  let log = '';
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (sshd && sshd.exitCode === null && sshd.signalCode === null) {
      const exited = new Promise((r) => sshd!.once('exit', r));
      sshd.kill('SIGTERM');
      await exited;
    }
    for (const user of Object.values(users)) {
      // sessions sshd left behind (a command without a pty outlives its connection)
      for (const pid of processesOf(user)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone already */
        }
      }
      try {
        execFileSync('userdel', ['-f', '-r', user], { stdio: 'pipe' });
      } catch {
        /* never created, or removed already */
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const name of o.users) {
      const user = `palvm-${name}-${suffix}`;
      // '*' rather than useradd's locked '!': without PAM, sshd refuses every login of a locked account
      execFileSync('useradd', ['-m', '-s', '/bin/sh', '-p', '*', user], { stdio: 'pipe' });
      users[name] = user;
      if (o.userKeys?.length) {
        const home = `/home/${user}`;
        fs.mkdirSync(`${home}/.ssh`, { recursive: true, mode: 0o700 });
        fs.writeFileSync(`${home}/.ssh/authorized_keys`, `${o.userKeys.join('\n')}\n`, { mode: 0o600 });
        execFileSync('chown', ['-R', `${user}:`, `${home}/.ssh`]);
      }
    }
    const hostKeyFile = path.join(dir, 'host_ed25519');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'vm-host', '-f', hostKeyFile], { stdio: 'pipe' });
    const hostKeyLine = fs.readFileSync(`${hostKeyFile}.pub`, 'utf8').split(' ').slice(0, 2).join(' ');
    const ecdsaFile = path.join(dir, 'host_ecdsa');
    execFileSync('ssh-keygen', ['-q', '-t', 'ecdsa', '-b', '256', '-N', '', '-C', 'vm-host', '-f', ecdsaFile], { stdio: 'pipe' });
    const ecdsaHostKeyLine = fs.readFileSync(`${ecdsaFile}.pub`, 'utf8').split(' ').slice(0, 2).join(' ');
    // what the README has a VM install: the key line in a root-owned file, the drop-in pointing at it
    const keysFile = path.join(dir, 'palisade_gateway_keys');
    fs.writeFileSync(keysFile, `${o.gatewayKey.authorizedKeysLine}\n`, { mode: 0o644 });
    const port = await freePort();
    const config = path.join(dir, 'sshd_config');
    fs.writeFileSync(
      config,
      [
        `Port ${port}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${hostKeyFile}`,
        `HostKey ${ecdsaFile}`,
        `PidFile ${dir}/sshd.pid`,
        // the temp folder is under the world-writable /tmp
        'StrictModes no',
        'UsePAM no',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        // nobody but the users made here, whatever else this machine has
        `AllowUsers ${Object.values(users).join(' ')}`,
        'Subsystem sftp internal-sftp',
        'AcceptEnv LANG LC_* PALISADE_TEST_*',
        'LogLevel VERBOSE',
        ...(o.extra ?? []),
        o.gatewayKey.sshdConfig.replaceAll('/etc/ssh/palisade_gateway_keys', keysFile),
      ].join('\n'),
    );
    fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 }); // privilege separation folder
    execFileSync('/usr/sbin/sshd', ['-t', '-f', config], { stdio: 'pipe' });
    const proc = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    sshd = proc;
    proc.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`sshd did not start: ${log}`)), 10_000);
      const check = () => {
        if (/Server listening on/.test(log)) {
          clearTimeout(timer);
          resolve();
        }
      };
      proc.stderr!.on('data', check);
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`sshd exited with ${code}: ${log}`));
      });
    });
    return { port, dir, hostKeyLine, ecdsaHostKeyLine, users, log: () => log, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
