import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { git, type GitResult, tmpDir } from './git.ts';
import type { TestServer } from './server.ts';

/**
 * The real OpenSSH client against a test server: a known_hosts file with the server's own host
 * key (read from its data folder, so host key checking stays on), a key or a password (through
 * SSH_ASKPASS, as a person typing it), and nothing from the user's own configuration.
 */
export class SshClient {
  readonly dir = tmpDir('palisade-ssh-');
  private readonly knownHosts = path.join(this.dir, 'known_hosts');
  private readonly askpass = path.join(this.dir, 'askpass.sh');

  constructor(private readonly s: TestServer) {
    const hostPub = execFileSync('ssh-keygen', ['-y', '-f', path.join(s.dataDir, 'ssh', 'host_ed25519')], { encoding: 'utf8' }).trim();
    fs.writeFileSync(this.knownHosts, `[127.0.0.1]:${s.sshPort} ${hostPub}\n`);
    fs.writeFileSync(this.askpass, '#!/bin/sh\nprintf "%s\\n" "$PALISADE_TEST_PASSWORD"\n', { mode: 0o700 });
  }

  /** A new key pair of `type` in this client's folder; returns its private key path and public line. */
  keygen(name: string, type: 'ed25519' | 'ecdsa' | 'rsa' = 'ed25519', bits?: number): { file: string; pub: string } {
    const file = path.join(this.dir, name);
    execFileSync('ssh-keygen', ['-q', '-t', type, ...(bits ? ['-b', String(bits)] : []), '-N', '', '-C', name, '-f', file]);
    return { file, pub: fs.readFileSync(`${file}.pub`, 'utf8').trim() };
  }

  /** ssh options for a key (publickey only) or a password (password only). */
  options(auth: { key: string } | { password: string } | { none: true }): { args: string[]; env: Record<string, string> } {
    const base = ['-F', '/dev/null', '-o', `UserKnownHostsFile=${this.knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=no', '-o', 'LogLevel=ERROR', '-o', 'ConnectTimeout=10', '-p', String(this.s.sshPort)];
    if ('key' in auth) return { args: [...base, '-o', 'IdentitiesOnly=yes', '-o', 'PreferredAuthentications=publickey', '-i', auth.key], env: {} };
    if ('password' in auth) return { args: [...base, '-o', 'PreferredAuthentications=password', '-o', 'PubkeyAuthentication=no', '-o', 'NumberOfPasswordPrompts=1'], env: { SSH_ASKPASS: this.askpass, SSH_ASKPASS_REQUIRE: 'force', DISPLAY: ':0', PALISADE_TEST_PASSWORD: auth.password } };
    return { args: [...base, '-o', 'PreferredAuthentications=none', '-o', 'PubkeyAuthentication=no'], env: {} };
  }

  /** Runs `ssh [options] login@127.0.0.1 [command]`. */
  ssh(login: string, auth: Parameters<SshClient['options']>[0], command?: string, input?: string): Promise<GitResult> {
    const o = this.options(auth);
    return new Promise((resolve) => {
      const child = execFile('ssh', [...o.args, `${login}@127.0.0.1`, ...(command ? [command] : [])], { env: { PATH: process.env.PATH, HOME: this.dir, ...o.env }, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 255) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      });
      child.stdin!.end(input ?? '');
    });
  }

  /** Runs git with GIT_SSH_COMMAND set to this client. */
  git(args: string[], auth: Parameters<SshClient['options']>[0], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<GitResult> {
    const o = this.options(auth);
    const quoted = o.args.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    return git(args, { cwd: opts.cwd, env: { GIT_SSH_COMMAND: `ssh ${quoted}`, ...o.env, ...opts.env } });
  }

  /** `ssh://login@127.0.0.1:PORT/<repo>` */
  url(login: string, repo: string): string {
    return `ssh://${login}@127.0.0.1:${this.s.sshPort}/${repo}`;
  }
}
