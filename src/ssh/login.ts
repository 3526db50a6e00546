/**
 * What an SSH login name asks for. Freestyle's gateway forms name a VM (`<vmId>`,
 * `<vmId>+<linuxUser>`, or `<vmId>+<linuxUser>:<token>` with the token in the name); every
 * other name (`git`, conventionally) is a git login whose name is ignored, except as the
 * username of a password login.
 */
export type Login =
  | { mode: 'git'; name: string }
  | { mode: 'vm'; vmId: string; linuxUser: string | undefined; token: string | undefined };

// VM ids of the registry are UUIDs: a login name that is one (with an optional +user and :token)
// always means the gateway, so a user whose username looks like a UUID logs in to git with a key.
const VM_LOGIN_RE = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(?:\+([a-z_][a-z0-9_-]{0,31}\$?))?(?::(.{1,512}))?$/i;

export function parseLogin(name: string): Login {
  const m = VM_LOGIN_RE.exec(name);
  if (!m) return { mode: 'git', name };
  return { mode: 'vm', vmId: m[1]!.toLowerCase(), linuxUser: m[2], token: m[3] };
}

/** The git command of an SSH exec request: `git-upload-pack '<path>'` (and friends), as git sends it. */
export interface GitExec {
  command: 'git-upload-pack' | 'git-receive-pack' | 'git-upload-archive';
  /** the repository as named: id or full name, without a leading `/` or `~/` and a trailing `.git` */
  repo: string;
}

const EXEC_RE = /^(git[- ](?:upload-pack|receive-pack|upload-archive))\s+(.+)$/;

/** Unquotes a path the way git and hg quote it (single-quoted parts joined by \' and \!); undefined when it is not that. */
function unquote(arg: string): string | undefined {
  if (!arg.startsWith("'")) return /\s|['"\\]/.test(arg) ? undefined : arg;
  let out = '';
  let rest = arg;
  while (rest.length) {
    const q = /^'([^']*)'/.exec(rest);
    if (q) {
      out += q[1];
      rest = rest.slice(q[0].length);
      continue;
    }
    const esc = /^\\(['!])/.exec(rest);
    if (esc) {
      out += esc[1];
      rest = rest.slice(2);
      continue;
    }
    return undefined;
  }
  return out;
}

/** The repository as named in a path: id or full name, without a leading `/` or `~/`, a trailing `/` or suffix. */
function repoOf(path: string, suffix: RegExp): string | undefined {
  const repo = path.replace(/^~\//, '').replace(/^\/+/, '').replace(/\/+$/, '').replace(suffix, '');
  if (!repo || repo.length > 300 || /[\0-\x1f]/.test(repo)) return undefined;
  return repo;
}

/**
 * Mercurial's SSH command, `hg -R <path> serve --stdio`, as hg's client sends it (the path
 * quoted like git's); undefined for anything else.
 */
export function parseHgExec(command: string): { repo: string } | undefined {
  const m = /^hg -R (\S+|'.*') serve --stdio$/.exec(command.trim());
  const path = m && unquote(m[1]!);
  const repo = path && repoOf(path, /\.hg$/);
  return repo ? { repo } : undefined;
}

/**
 * Parses an exec request; undefined for anything but the three git commands with one path.
 * git quotes the path with single quotes (`'` inside written as `'\''`, `!` as `\!`); an
 * unquoted path is taken as one word. Nothing here ever reaches a shell.
 */
export function parseGitExec(command: string): GitExec | undefined {
  const m = EXEC_RE.exec(command.trim());
  if (!m) return undefined;
  const cmd = m[1]!.replace(' ', '-') as GitExec['command'];
  const path = unquote(m[2]!);
  const repo = path && repoOf(path, /\.git$/);
  return repo ? { command: cmd, repo } : undefined;
}
