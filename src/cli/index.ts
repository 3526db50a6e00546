import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { buildApp, buildSsh, openServices } from '../app.ts';
import { requireGitVersion } from '../git/runner.ts';
import { ConfigError, ENV_DOC, loadConfig } from '../config/index.ts';
import { SYSTEM } from '../domain/access.ts';
import { isDomainError } from '../domain/errors.ts';

const HELP = `palisade: a self-hosted Git server with identity-based access control

Usage:
  palisade serve [--port N] [--host H] [--data DIR]
      Run the HTTP server: git smart HTTP, /identity/v1, /v5/identities, /git/v1, /user/v1,
      /vm/v1, /admin/v1 (the audit log), /_admin/api (JSON-RPC).
      Prints "listening on http://HOST:PORT" once ready (--port 0 picks a free port).
      SIGTERM/SIGINT stop accepting requests and let in-flight ones finish
      (at most PALISADE_SHUTDOWN_TIMEOUT_SECONDS).
      Several serve processes may share one PostgreSQL (DATABASE_URL) and one data folder
      behind a load balancer: background work is claimed through the database with leases
      (PALISADE_NODE_ID, PALISADE_LEASE_SECONDS); see the README's deployment section.
  palisade user create <username> [--admin] [--email E] [--data DIR]
      Create a user; prints its API key once.
  palisade user rotate-key <username> [--data DIR]
      Replace all API keys of a user with a new one; prints it once.
  palisade migrate [--data DIR]
      Create or upgrade the database, then exit (serve does this too).
  palisade --help | help
      This text.

Environment:
${ENV_DOC.map(([k, v]) => `  ${k.padEnd(34)} ${v}`).join('\n')}

On first start the user "admin" is created with PALISADE_ADMIN_API_KEY as its API
key; without it a key is generated, printed once and written to DATA/admin-api-key
(mode 0600).
`;

function die(msg: string, code = 1): never {
  process.stderr.write(`palisade: ${msg}\n`);
  process.exit(code);
}

async function serve(flags: { port?: string; host?: string; data?: string }): Promise<void> {
  const config = loadConfig(process.env, flags);
  const services = await openServices(config);
  await requireGitVersion(services.git);
  const boot = await services.users.bootstrapAdmin(SYSTEM, config.adminApiKey);
  if (boot?.generated) {
    const file = path.join(config.dataDir, 'admin-api-key');
    fs.writeFileSync(file, `${boot.apiKey}\n`, { mode: 0o600, flag: 'w' });
    process.stdout.write(`created user admin; its API key (shown once, also in ${file}):\n${boot.apiKey}\n`);
  } else if (boot) {
    process.stdout.write('created user admin with the API key from PALISADE_ADMIN_API_KEY\n');
  }
  const app = await buildApp(config, services);
  await app.listen({ port: config.port, host: config.host });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.port;
  // URLs naming this server's repositories are read as the caller, not fetched over HTTP.
  services.outbound.addSelf(config.host, port);
  // and so do URLs naming the address users reach it at: behind a balancer, that is every node's
  // (a node would otherwise fetch from itself, or another node, as a stranger)
  if (config.publicUrl) {
    const u = new URL(config.publicUrl);
    services.outbound.addSelf(u.hostname, Number(u.port || (u.protocol === 'https:' ? 443 : 80)));
  }
  const ssh = buildSsh(config, services, app);
  if (ssh) {
    const sshPort = await ssh.listen(config.sshPort!, config.sshHost);
    const sshHost = config.sshHost.includes(':') ? `[${config.sshHost}]` : config.sshHost;
    process.stdout.write(`ssh listening on ${sshHost}:${sshPort}\nssh host key ${ssh.hostKey.fingerprint} (${ssh.hostKey.publicLine.split(' ')[0]})\n`);
  }
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  // the name this process's leases carry in the database: which node holds what
  app.log.info({ nodeId: config.nodeId }, 'node started');
  process.stdout.write(`node ${config.nodeId}\nlistening on http://${host}:${port}\n`);

  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    app.log.info({ signal }, 'shutting down: waiting for in-flight requests');
    const force = setTimeout(() => {
      app.log.warn('shutdown timeout reached; exiting with requests still open');
      process.exit(1);
    }, config.shutdownTimeoutMs);
    force.unref();
    // Stop accepting connections now: app.close() first marks the app closing and only then,
    // some ticks later, stops listening, and a connection accepted in between is answered 503.
    // Behind a balancer a refused connection goes to another node; a 503 goes to the client.
    // (Fastify's own close still waits for the connections in flight: Node calls its callback
    // on the server's 'close', once they end.)
    app.server.close();
    void Promise.all([app.close(), ssh?.close()])
      .then(() => services.store.close())
      .then(() => process.exit(0));
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

/** Runs the command line; `argv` excludes node and the script. */
export async function main(argv: string[]): Promise<void> {
  // Everything the server and its git children create (database, keys, repositories) is
  // for this user only: 0700 folders, 0600 files.
  process.umask(0o077);
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      port: { type: 'string', short: 'p' },
      host: { type: 'string' },
      data: { type: 'string', short: 'd' },
      admin: { type: 'boolean' },
      email: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [cmd, sub, arg] = positionals;
  if (values.help || cmd === 'help' || cmd === undefined) {
    process.stdout.write(HELP);
    return;
  }
  try {
    if (cmd === 'serve') return await serve(values);
    const config = loadConfig(process.env, { data: values.data });
    if (cmd === 'migrate') {
      const s = await openServices(config);
      await s.store.close();
      process.stdout.write('database is up to date\n');
      return;
    }
    if (cmd === 'user' && sub === 'create' && arg) {
      const s = await openServices(config);
      const { apiKey } = await s.users.create(SYSTEM, { username: arg, admin: !!values.admin, email: values.email ?? null });
      await s.store.close();
      process.stdout.write(`created user ${arg}; its API key (shown once):\n${apiKey}\n`);
      return;
    }
    if (cmd === 'user' && sub === 'rotate-key' && arg) {
      const s = await openServices(config);
      const key = await s.users.rotateApiKey(SYSTEM, arg);
      await s.store.close();
      process.stdout.write(`new API key for ${arg} (shown once; the old ones no longer work):\n${key}\n`);
      return;
    }
    die(`unknown command: ${positionals.join(' ')}\nRun "palisade --help" for usage.`, 2);
  } catch (e) {
    if (e instanceof ConfigError || isDomainError(e)) die(e.message);
    throw e;
  }
}
