// The SSH gateway to VMs with real OpenSSH on both ends: the `ssh` client against Palisade, and
// a real sshd started here on a loopback port, playing the VM, with Linux users created for it
// and the gateway key installed as the README says. The decision matrix (granted user, the
// default user, a user outside allowedUsers, null meaning any, no grant, an unregistered VM, a
// VM of another account, a revoked token), the three login forms, a changed host key, exec
// with stdout, stderr and exit status, an interactive pty session, window changes and signals,
// sftp, what is never forwarded, the audit record, and live sessions closed within seconds of
// their token or grant being revoked.
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import ssh2 from 'ssh2';
import { vmAddressProblem } from '../../src/services/gateway.ts';
import { api, startServer, type TestServer } from '../helpers/server.ts';
import { SshClient } from '../helpers/ssh.ts';
import { canRunSshd, freePort, startVmHost, type VmHost } from './vm-host.ts';

const skip = !canRunSshd() && 'needs root and /usr/sbin/sshd';

let s: TestServer;
let c: SshClient;
let vmHost: VmHost;
let dev = '';
let ci = '';
/** alice's identities: granted [dev], granted null (any user), no grant; bob's: granted alice's VM */
const id: Record<'dev' | 'any' | 'none' | 'bobs', { id: string; token: string; tokenId: string }> = {} as never;
let alice = '';
let bob = '';
let vm = '';
let devKey = '';
const GHOST = '00000000-0000-4000-8000-00000000abcd';

async function identity(key: string): Promise<{ id: string; token: string; tokenId: string }> {
  const i = (await api(s, 'POST', '/identity/v1/identities', { key })).body.id as string;
  const t = (await api(s, 'POST', `/identity/v1/identities/${i}/tokens`, { key })).body;
  return { id: i, token: t.token, tokenId: t.id };
}
async function grant(key: string, identityId: string, vmId: string, allowedUsers: string[] | null): Promise<void> {
  const r = await api(s, 'POST', `/identity/v1/identities/${identityId}/permissions/vm/${vmId}`, { key, body: { allowedUsers } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
}

/** The gateway's audit records so far. */
function audits(): any[] {
  return s
    .logs()
    .split('\n')
    .filter((l) => l.includes('"event":"gateway"'))
    .map((l) => JSON.parse(l).ssh);
}

before(async () => {
  if (skip) return;
  s = await startServer({ PALISADE_SSH_PORT: '0', PALISADE_SSH_RECHECK_SECONDS: '1', PALISADE_ALLOW_PRIVATE_URLS: '1', PALISADE_LOG_LEVEL: 'info' });
  c = new SshClient(s);
  alice = await s.createUser('alice');
  bob = await s.createUser('bob');
  const gatewayKey = (await api(s, 'GET', '/vm/v1/gateway-key', { key: alice })).body;
  vmHost = await startVmHost({ gatewayKey, users: ['dev', 'ci'] });
  dev = vmHost.users.dev!;
  ci = vmHost.users.ci!;
  const r = await api(s, 'POST', '/vm/v1/vms', { key: alice, body: { name: 'vm', host: '127.0.0.1', port: vmHost.port, defaultUser: dev, hostKey: vmHost.hostKeyLine } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  vm = r.body.id;
  id.dev = await identity(alice);
  id.any = await identity(alice);
  id.none = await identity(alice);
  id.bobs = await identity(bob);
  await grant(alice, id.dev.id, vm, [dev]);
  await grant(alice, id.any.id, vm, null);
  await grant(alice, id.dev.id, GHOST, [dev]); // a grant on an id nobody registered
  await grant(bob, id.bobs.id, vm, null); // bob's identity, alice's VM
  const k = c.keygen('identity-key');
  devKey = k.file;
  const added = await api(s, 'POST', `/identity/v1/identities/${id.dev.id}/ssh-keys`, { key: alice, body: { publicKey: k.pub } });
  assert.equal(added.status, 200, JSON.stringify(added.body));
});
after(async () => {
  await vmHost?.stop();
  await s?.stop();
  if (c) fs.rmSync(c.dir, { recursive: true, force: true });
});

type Auth = Parameters<SshClient['ssh']>[1];
type Result = { code: number; stdout: string; stderr: string };

/** `ssh [options] [extra] login@127.0.0.1 [command]` with `input` on stdin: SshClient's options, and extra flags (`-tt`, `-R`). */
function ssh(login: string, auth: Auth, command?: string, input = '', extra: string[] = []): Promise<Result> {
  const o = c.options(auth);
  return new Promise((resolve) => {
    const child = spawn('ssh', [...o.args, ...extra, `${login}@127.0.0.1`, ...(command ? [command] : [])], { env: { PATH: process.env.PATH, HOME: c.dir, ...o.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code: code ?? 255, stdout, stderr }));
    child.stdin.end(input);
  });
}

describe('SSH gateway', { skip }, () => {
  test('decision matrix: who opens the VM as which Linux user, and the one-line refusals', async () => {
    const rows: [string, string, Auth, RegExp | string][] = [
      ['granted user', `${vm}+${dev}`, { password: id.dev.token }, dev],
      ['no user: the VM\'s default user', vm, { password: id.dev.token }, dev],
      ['a user outside allowedUsers', `${vm}+${ci}`, { password: id.dev.token }, `ERROR: user ${ci} not allowed`],
      ['allowedUsers null: any user', `${vm}+${ci}`, { password: id.any.token }, ci],
      ['allowedUsers null: the default user too', vm, { password: id.any.token }, dev],
      ['no grant', `${vm}+${dev}`, { password: id.none.token }, 'ERROR: no grant for this VM'],
      // a caller without a grant learns nothing: a VM that does not exist answers the same
      ['no grant, no such VM', `${GHOST}+${dev}`, { password: id.none.token }, 'ERROR: no grant for this VM'],
      ['a grant on an unregistered VM', `${GHOST}+${dev}`, { password: id.dev.token }, 'ERROR: VM not registered'],
      ['a VM of another account', `${vm}+${dev}`, { password: id.bobs.token }, 'ERROR: VM not registered'],
      ['a user\'s API key is no identity', `${vm}+${dev}`, { password: alice }, 'ERROR: only identities log in to VMs'],
      // the VM refused the login: the client learns only that it could not be reached
      ['a Linux user the VM does not have (null allows it)', `${vm}+palvm-nobody`, { password: id.any.token }, 'ERROR: VM unreachable'],
    ];
    const got = await Promise.all(rows.map(([, login, auth]) => ssh(login, auth, 'id -un')));
    rows.forEach(([label, , , want], i) => {
      const r = got[i]!;
      if (want instanceof RegExp || want.startsWith('ERROR')) {
        assert.equal(r.code, 1, `${label}: ${JSON.stringify(r)}`);
        assert.equal(r.stdout, '', label);
        assert.equal(r.stderr, `${want}\n`, label);
      } else {
        assert.equal(r.code, 0, `${label}: ${JSON.stringify(r)}`);
        assert.equal(r.stdout, `${want}\n`, label);
      }
    });
  });

  test('the three login forms: token as password, token in the name with auth none, the identity\'s key; a wrong or revoked token never authenticates', async () => {
    assert.equal((await ssh(`${vm}+${dev}`, { password: id.dev.token }, 'id -un')).stdout, `${dev}\n`);
    assert.equal((await ssh(`${vm}+${dev}:${id.dev.token}`, { none: true }, 'id -un')).stdout, `${dev}\n`);
    assert.equal((await ssh(`${vm}+${dev}`, { key: devKey }, 'id -un')).stdout, `${dev}\n`);
    assert.equal((await ssh(vm, { key: devKey }, 'id -un')).stdout, `${dev}\n`);
    const wrong = await ssh(`${vm}+${dev}:pal_wrong`, { none: true }, 'id -un');
    assert.equal(wrong.code, 255);
    assert.match(wrong.stderr, /Permission denied/);
    const revoked = await identity(alice);
    await grant(alice, revoked.id, vm, null);
    assert.equal((await ssh(`${vm}+${dev}`, { password: revoked.token }, 'true')).code, 0);
    assert.equal((await api(s, 'DELETE', `/identity/v1/identities/${revoked.id}/tokens/${revoked.tokenId}`, { key: alice })).status, 200);
    for (const auth of [{ password: revoked.token }, { none: true as const }]) {
      const r = await ssh('password' in auth ? `${vm}+${dev}` : `${vm}+${dev}:${revoked.token}`, auth, 'id -un');
      assert.equal(r.code, 255, JSON.stringify(r));
      assert.match(r.stderr, /Permission denied/);
      assert.equal(r.stdout, '');
    }
  });

  test('exec: stdout, stderr and the exit status come back; stdin goes in, EOF included; only the locale travels in the environment', async () => {
    const r = await ssh(`${vm}+${dev}`, { password: id.dev.token }, "sh -c 'echo hi; echo oops >&2; exit 7'");
    assert.deepEqual(r, { code: 7, stdout: 'hi\n', stderr: 'oops\n' });
    const input = crypto.randomBytes(300_000).toString('base64');
    const cat = await ssh(`${vm}+${dev}`, { password: id.dev.token }, 'cat; echo; echo done', input);
    assert.equal(cat.code, 0);
    assert.equal(cat.stdout, `${input}\ndone\n`);
    // the VM's sshd accepts LANG, LC_* and PALISADE_TEST_*; the gateway passes on only the first two
    const o = c.options({ password: id.dev.token });
    const env = await new Promise<string>((resolve) => {
      const child = spawn('ssh', [...o.args, '-o', 'SetEnv=LC_PALISADE=fr_FR.UTF-8 PALISADE_TEST_X=leaked', `${vm}+${dev}@127.0.0.1`, 'echo "[$LC_PALISADE][$PALISADE_TEST_X]"'], { env: { PATH: process.env.PATH, HOME: c.dir, ...o.env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.on('close', () => resolve(out));
    });
    assert.equal(env, '[fr_FR.UTF-8][]\n');
  });

  // A command that prints nothing and exits at once: its exit status and close can come in the
  // same read as the confirmation of the channel; the gateway once lost them ("VM connection lost").
  test('regression: the exit status of a command that ends at once is not lost', async () => {
    const runs = await Promise.all(Array.from({ length: 8 }, (_, i) => ssh(`${vm}+${dev}`, { key: devKey }, i % 2 ? 'true' : `exit ${i}`)));
    assert.deepEqual(runs, Array.from({ length: 8 }, (_, i) => ({ code: i % 2 ? 0 : i, stdout: '', stderr: '' })));
    // and many on one connection, where the VM's side is already open
    const conn = await connect(`${vm}+${dev}`, id.dev.token);
    try {
      for (let i = 0; i < 20; i++) {
        const code = await new Promise((resolve, reject) => conn.exec(`exit ${i}`, (e, ch) => (e ? reject(e) : ch.on('exit', resolve).resume())));
        assert.equal(code, i);
      }
    } finally {
      conn.end();
    }
  });

  test('an interactive shell with a pty, driven by a script: output, a terminal, the exit status; a shell without one', async () => {
    const r = await ssh(`${vm}+${dev}`, { password: id.dev.token }, undefined, 'echo $((6*7)); tty; exit 3\n', ['-tt']);
    assert.equal(r.code, 3, JSON.stringify(r));
    // the shell's prompt may come first on a line; the echoed command line holds no 42
    assert.match(r.stdout, /^(\$ )?42\r$/m);
    assert.match(r.stdout, /^(\$ )?\/dev\/pts\/\d+\r$/m);
    // a shell without a pty reads its script from stdin
    assert.deepEqual(await ssh(`${vm}+${dev}`, { password: id.dev.token }, undefined, 'echo $((6*7)); tty; exit 5\n'), { code: 5, stdout: '42\nnot a tty\n', stderr: '' });
    // exec with a pty too; without one, no terminal
    assert.match((await ssh(`${vm}+${dev}`, { password: id.dev.token }, 'tty', undefined, ['-tt'])).stdout, /^\/dev\/pts\/\d+\r\n$/);
    assert.equal((await ssh(`${vm}+${dev}`, { password: id.dev.token }, 'tty')).stdout, 'not a tty\n');
  });

  test('window changes and signals reach the VM; a signal exit comes back as one', async () => {
    const conn = await connect(`${vm}+${dev}`, id.dev.token);
    try {
      const sh = await new Promise<ssh2.ClientChannel>((resolve, reject) => conn.shell({ rows: 24, cols: 80, term: 'xterm' }, (e, ch) => (e ? reject(e) : resolve(ch))));
      let out = '';
      sh.on('data', (d: Buffer) => (out += d.toString()));
      const waitFor = async (re: RegExp) => {
        for (let i = 0; i < 100 && !re.test(out); i++) await new Promise((r) => setTimeout(r, 50));
        assert.match(out, re);
      };
      sh.write('stty size; echo "term=$TERM"\n');
      await waitFor(/^(\$ )?24 80\r$/m);
      await waitFor(/^(\$ )?term=xterm\r$/m);
      sh.setWindow(50, 132, 0, 0);
      await new Promise((r) => setTimeout(r, 200));
      sh.write('stty size\n');
      await waitFor(/^(\$ )?50 132\r$/m);
      sh.end('exit\n');
      await new Promise((r) => sh.once('close', r));

      const exec = await new Promise<ssh2.ClientChannel>((resolve, reject) => conn.exec('echo ready; exec sleep 30', (e, ch) => (e ? reject(e) : resolve(ch))));
      const exited = new Promise<unknown[]>((resolve) => exec.once('exit', (...a: unknown[]) => resolve(a)));
      await new Promise<void>((resolve) => exec.once('data', () => resolve()));
      exec.signal('TERM');
      const [code, signal] = await exited;
      assert.equal(code, null);
      assert.equal(signal, 'SIGTERM');
    } finally {
      conn.end();
    }
  });

  test('a client that goes away in the middle of a stream: the VM side closes, the session is audited, the connection serves on', async () => {
    const before = audits().length;
    const conn = await connect(`${vm}+${dev}`, id.dev.token);
    try {
      const ch = await new Promise<ssh2.ClientChannel>((resolve, reject) => conn.exec('head -c 100000000 /dev/zero', (e, c) => (e ? reject(e) : resolve(c))));
      // read a little, then stop reading and close: the VM still has most of it to send
      await new Promise<void>((resolve) => ch.once('data', () => resolve()));
      ch.pause();
      ch.close();
      for (let i = 0; i < 100 && audits().length === before; i++) await new Promise((r) => setTimeout(r, 50));
      const [a] = audits().slice(before);
      assert.equal(a?.allowed, true, JSON.stringify(a));
      assert.ok(a.bytesOut > 0 && a.bytesOut < 100_000_000, JSON.stringify(a));
      const again = await new Promise<string>((resolve, reject) =>
        conn.exec('echo again', (e, c) => {
          if (e) return reject(e);
          let o = '';
          c.on('data', (d: Buffer) => (o += d.toString())).on('close', () => resolve(o));
        }),
      );
      assert.equal(again, 'again\n');
    } finally {
      conn.end();
    }
  });

  test('sftp through the subsystem: put, get, list as the Linux user', async () => {
    const dir = fs.mkdtempSync(path.join(c.dir, 'sftp-'));
    const content = crypto.randomBytes(1 << 20);
    fs.writeFileSync(path.join(dir, 'up.bin'), content);
    fs.writeFileSync(path.join(dir, 'batch'), ['put up.bin remote.bin', 'get remote.bin down.bin', 'ls -l remote.bin', ''].join('\n'));
    const o = c.options({ key: devKey });
    // sftp names the port -P; the rest of the ssh options as they are
    const args = o.args.map((a) => (a === '-p' ? '-P' : a));
    const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn('sftp', [...args, '-b', 'batch', `${vm}+${dev}@127.0.0.1`], { cwd: dir, env: { PATH: process.env.PATH, HOME: c.dir }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      child.on('close', (code) => resolve({ code, out }));
    });
    assert.equal(r.code, 0, r.out);
    assert.ok(fs.readFileSync(path.join(dir, 'down.bin')).equals(content));
    const remote = `/home/${dev}/remote.bin`;
    assert.ok(fs.readFileSync(remote).equals(content));
    assert.equal(execFileSync('stat', ['-c', '%U', remote], { encoding: 'utf8' }).trim(), dev);
    assert.match(r.out, new RegExp(`${dev}.*remote\\.bin`));
  });

  test('nothing but sessions: remote and local port forwarding and other subsystems are refused', async () => {
    const conn = await connect(`${vm}+${dev}`, id.dev.token);
    try {
      // 1: administratively prohibited
      await assert.rejects(
        new Promise((resolve, reject) => conn.forwardOut('127.0.0.1', 0, '127.0.0.1', vmHost.port, (e, ch) => (e ? reject(e) : resolve(ch)))),
        (e: Error & { reason?: number }) => e.reason === 1,
      );
      await assert.rejects(new Promise((resolve, reject) => conn.forwardIn('127.0.0.1', 0, (e, port) => (e ? reject(e) : resolve(port)))), /Unable to bind/);
      await assert.rejects(new Promise((resolve, reject) => conn.subsys('palisade-other', (e, ch) => (e ? reject(e) : resolve(ch)))), /subsystem/i);
    } finally {
      conn.end();
    }
    // ssh -R with ExitOnForwardFailure: the client gives up
    const r = await ssh(`${vm}+${dev}`, { password: id.dev.token }, 'true', undefined, ['-o', 'ExitOnForwardFailure=yes', '-R', '0:127.0.0.1:9']);
    assert.equal(r.code, 255, JSON.stringify(r));
    assert.match(r.stderr, /forwarding failed/i);
  });

  // Registering someone else's machine. The attack: with one gateway key for every account, an
  // account registered another account's VM (host key from ssh-keyscan: public) as its own,
  // granted its own identity any user, and got a shell there as root. Now each account has its
  // own gateway key, which only that account's VMs trust, and a host key registered by another
  // account is refused.
  test("another account's machine: its host key is refused at registration, and another of its keys opens nothing", async () => {
    const same = await api(s, 'POST', '/vm/v1/vms', { key: bob, body: { host: '127.0.0.1', port: vmHost.port, defaultUser: dev, hostKey: vmHost.hostKeyLine } });
    assert.equal(same.status, 409);
    assert.equal(same.body.code, 'VM_ALREADY_REGISTERED');
    // the VM's second host key, which alice never registered: bob's registration succeeds...
    const theirs = await api(s, 'POST', '/vm/v1/vms', { key: bob, body: { host: '127.0.0.1', port: vmHost.port, defaultUser: dev, hostKey: vmHost.ecdsaHostKeyLine } });
    assert.equal(theirs.status, 200, JSON.stringify(theirs.body));
    const attacker = await identity(bob);
    await grant(bob, attacker.id, theirs.body.id, null);
    // ...but the VM trusts alice's gateway key, not bob's: no shell, and nothing about why
    for (const user of [dev, ci, 'root']) {
      const r = await ssh(`${theirs.body.id}+${user}`, { password: attacker.token }, 'id -un');
      assert.deepEqual(r, { code: 1, stdout: '', stderr: 'ERROR: VM unreachable\n' }, user);
    }
    await api(s, 'DELETE', `/vm/v1/vms/${theirs.body.id}`, { key: bob });
  });

  test('a changed host key: the VM is refused and the mismatch logged, until the registration matches again', async () => {
    const other = c.keygen('another-host-key').pub.split(' ').slice(0, 2).join(' ');
    assert.equal((await api(s, 'PATCH', `/vm/v1/vms/${vm}`, { key: alice, body: { hostKey: other } })).status, 200);
    try {
      const r = await ssh(`${vm}+${dev}`, { password: id.dev.token }, 'id -un');
      assert.deepEqual(r, { code: 1, stdout: '', stderr: 'ERROR: VM unreachable\n' }, 'the mismatch is logged, not told');
      const logged = s
        .logs()
        .split('\n')
        .filter((l) => l.includes('"event":"gateway-host-key"'))
        .map((l) => JSON.parse(l));
      assert.ok(logged.some((l) => l.level === 40 && l.ssh.vm === vm), 'logged at warn');
    } finally {
      await api(s, 'PATCH', `/vm/v1/vms/${vm}`, { key: alice, body: { hostKey: vmHost.hostKeyLine } });
    }
    assert.equal((await ssh(`${vm}+${dev}`, { password: id.dev.token }, 'id -un')).code, 0);
  });

  test('a VM with several host keys is asked for the registered one', async () => {
    // sshd would show its ed25519 key first; registered with its ECDSA key, the gateway offers only ECDSA
    assert.equal((await api(s, 'PATCH', `/vm/v1/vms/${vm}`, { key: alice, body: { hostKey: vmHost.ecdsaHostKeyLine } })).status, 200);
    try {
      assert.deepEqual(await ssh(`${vm}+${dev}`, { password: id.dev.token }, 'id -un'), { code: 0, stdout: `${dev}\n`, stderr: '' });
    } finally {
      await api(s, 'PATCH', `/vm/v1/vms/${vm}`, { key: alice, body: { hostKey: vmHost.hostKeyLine } });
    }
  });

  test('a VM that does not answer is "VM unreachable"', async () => {
    const port = await freePort(); // nothing listens there
    const dead = (await api(s, 'POST', '/vm/v1/vms', { key: alice, body: { host: '127.0.0.1', port, defaultUser: dev, hostKey: vmHost.hostKeyLine } })).body.id;
    await grant(alice, id.any.id, dead, null);
    assert.deepEqual(await ssh(dead, { password: id.any.token }, 'true'), { code: 1, stdout: '', stderr: 'ERROR: VM unreachable\n' });
  });

  test('one audit record per gateway session: identity, VM, Linux user, allowed or why not, bytes, duration, exit status', async () => {
    const before = audits().length;
    await ssh(`${vm}+${dev}`, { password: id.dev.token }, "printf 12345; exit 4", 'abc');
    await ssh(`${vm}+${ci}`, { password: id.dev.token }, 'true');
    // this test's two records (an earlier test's record may still arrive meanwhile: a client
    // refused at once can exit before the server has written its line)
    const mine = () => audits().slice(before).filter((a) => a.principal === `identity:${id.dev.id}` && a.vm === vm);
    for (let i = 0; i < 40 && mine().length < 2; i++) await new Promise((r) => setTimeout(r, 50));
    const [ok, refused] = mine();
    const why = () => `${s.logs().split('\n').filter((l) => l.includes('gateway')).slice(-5).join('\n')}\n--- VM sshd:\n${vmHost.log().slice(-2000)}`;
    assert.deepEqual({ ...ok, ms: undefined, ip: undefined }, { event: 'gateway', ip: undefined, principal: `identity:${id.dev.id}`, vm, linuxUser: dev, request: 'exec', pty: false, ms: undefined, allowed: true, bytesIn: 3, bytesOut: 5, exitStatus: 4 }, ok?.allowed ? undefined : why());
    assert.ok(ok.ms >= 0 && ok.ip === '127.0.0.1');
    assert.deepEqual({ ...refused, ms: undefined, ip: undefined }, { event: 'gateway', ip: undefined, principal: `identity:${id.dev.id}`, vm, linuxUser: ci, request: 'exec', pty: false, ms: undefined, allowed: false, why: `user ${ci} not allowed` });
    // nothing secret in the log: no token, no command
    assert.ok(!s.logs().includes(id.dev.token));
    assert.ok(!s.logs().includes('printf 12345'));
  });

  describe('live sessions end within seconds of losing access', () => {
    /** Starts `ssh -tt` on a long command; resolves once the VM has answered. */
    async function live(login: string, auth: Auth): Promise<{ child: ChildProcess; closed: Promise<number | null> }> {
      const o = c.options(auth);
      const child = spawn('ssh', [...o.args, '-tt', `${login}@127.0.0.1`, 'echo started; exec sleep 60'], { env: { PATH: process.env.PATH, HOME: c.dir, ...o.env }, stdio: ['pipe', 'pipe', 'pipe'] });
      const closed = new Promise<number | null>((r) => child.once('close', r));
      let out = '';
      await new Promise<void>((resolve, reject) => {
        child.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('started')) resolve();
        });
        void closed.then(() => reject(new Error(`ssh ended before the session started: ${out}`)));
      });
      return { child, closed };
    }
    async function endsWithin(session: { child: ChildProcess; closed: Promise<number | null> }, ms: number): Promise<number> {
      const t = Date.now();
      const timer = setTimeout(() => session.child.kill('SIGKILL'), ms + 5000);
      const code = await session.closed;
      clearTimeout(timer);
      const took = Date.now() - t;
      assert.ok(took < ms, `ended after ${took} ms (exit ${code})`);
      return took;
    }

    test('revoking the token', async () => {
      const t = await identity(alice);
      await grant(alice, t.id, vm, [dev]);
      const session = await live(`${vm}+${dev}`, { password: t.token });
      assert.equal((await api(s, 'DELETE', `/identity/v1/identities/${t.id}/tokens/${t.tokenId}`, { key: alice })).status, 200);
      await endsWithin(session, 5000);
    });

    test('revoking the grant, with the token still valid', async () => {
      const t = await identity(alice);
      await grant(alice, t.id, vm, [dev]);
      const session = await live(`${vm}+${dev}:${t.token}`, { none: true });
      assert.equal((await api(s, 'DELETE', `/identity/v1/identities/${t.id}/permissions/vm/${vm}`, { key: alice })).status, 200);
      await endsWithin(session, 5000);
      // the server's log reaches the test through a pipe: the line may arrive after the session's end
      for (let i = 0; i < 40 && !s.logs().includes('"event":"gateway-revoked"'); i++) await new Promise((r) => setTimeout(r, 50));
      assert.ok(s.logs().includes('"event":"gateway-revoked"'));
    });

    test('narrowing allowedUsers so that the user is no longer in it', async () => {
      const t = await identity(alice);
      await grant(alice, t.id, vm, [dev, ci]);
      const session = await live(`${vm}+${ci}`, { password: t.token });
      assert.equal((await api(s, 'PUT', `/identity/v1/identities/${t.id}/permissions/vm/${vm}`, { key: alice, body: { allowedUsers: [dev] } })).status, 200);
      await endsWithin(session, 5000);
    });
  });
});

describe('where the gateway may connect', () => {
  test('VMs live on private networks; loopback, link-local (metadata), multicast and unspecified addresses are refused unless PALISADE_ALLOW_PRIVATE_URLS', () => {
    for (const a of ['93.184.216.34', '8.8.8.8', '10.1.2.3', '172.16.0.5', '192.168.1.1', 'fd12:3456::1', '2001:4860::8888']) assert.equal(vmAddressProblem(a, false), undefined, a);
    for (const a of ['127.0.0.1', '::1', '0.0.0.0', '::', '169.254.169.254', 'fe80::1', '224.0.0.1', 'ff02::1', '255.255.255.255', '::ffff:127.0.0.1', '100.100.100.200', 'fd00:ec2::254', '64:ff9b::7f00:1']) {
      assert.ok(vmAddressProblem(a, false), `${a} should be refused`);
      assert.equal(vmAddressProblem(a, true), undefined, `${a} with the switch`);
    }
  });

  test('without the switch, a VM registered on loopback is refused before anything is dialled', { skip }, async () => {
    const strict = await startServer({ PALISADE_SSH_PORT: '0' });
    try {
      const key = await strict.createUser('carol');
      const r = await api(strict, 'POST', '/vm/v1/vms', { key, body: { host: '127.0.0.1', port: vmHost.port, defaultUser: dev, hostKey: vmHost.hostKeyLine } });
      const i = (await api(strict, 'POST', '/identity/v1/identities', { key })).body.id;
      const token = (await api(strict, 'POST', `/identity/v1/identities/${i}/tokens`, { key })).body.token;
      await api(strict, 'POST', `/identity/v1/identities/${i}/permissions/vm/${r.body.id}`, { key, body: { allowedUsers: null } });
      const before = (vmHost.log().match(/Connection from/g) ?? []).length;
      const client = new SshClient(strict);
      const out = await client.ssh(`${r.body.id}:${token}`, { none: true }, 'true');
      fs.rmSync(client.dir, { recursive: true, force: true });
      assert.deepEqual(out, { code: 1, stdout: '', stderr: 'ERROR: VM unreachable (its address is one the gateway may not dial)\n' });
      assert.equal((vmHost.log().match(/Connection from/g) ?? []).length, before, 'the VM saw no connection');
    } finally {
      await strict.stop();
    }
  });
});

function connect(username: string, password: string): Promise<ssh2.Client> {
  return new Promise((resolve, reject) => {
    const conn = new ssh2.Client();
    conn.once('ready', () => resolve(conn)).once('error', reject);
    conn.connect({ host: '127.0.0.1', port: s.sshPort, username, password, readyTimeout: 10_000, hostVerifier: () => true });
  });
}
