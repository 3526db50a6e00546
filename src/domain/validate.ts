import { isIPv4, isIPv6 } from 'node:net';
import { invalid } from './errors.ts';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** The shape of a UUID in any case, for request schemas (services lowercase what they get). */
export const UUID_PATTERN = '^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$';

/** True for a lowercase canonical UUID, the form every Palisade id takes. */
export const isUuid = (v: string): boolean => UUID_RE.test(v);

const SEGMENT_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$/;
/** First path segments that belong to Palisade's own URLs. */
const RESERVED_FIRST = new Set(['identity', 'git', '_admin', 'api', 'auth', 'healthz', 'openapi.json', 'docs', '.well-known']);

/**
 * Checks a repository's full name (`group/sub/name`). Each segment is letters,
 * digits, `._-`, not starting with `.` or `-`, not `..`, not ending in `.git`
 * or `.lock`; at most 10 segments and 255 characters; never a UUID (ids and
 * names share the URL space) and never one of Palisade's own first segments.
 * Returns undefined when valid, else the reason.
 */
export function repoNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'name must not be empty';
  if (name.length > 255) return 'name is longer than 255 characters';
  const segments = name.split('/');
  if (segments.length > 10) return 'name has more than 10 segments';
  for (const s of segments) {
    if (!SEGMENT_RE.test(s)) return `segment "${s.slice(0, 40)}" must be 1-100 of A-Z a-z 0-9 . _ - and not start with . or -`;
    if (s.includes('..')) return 'name must not contain ".."';
    if (/\.(git|lock)$/i.test(s)) return 'segments must not end in .git or .lock';
  }
  if (RESERVED_FIRST.has(segments[0]!.toLowerCase())) return `"${segments[0]}" is reserved`;
  if (isUuid(name.toLowerCase())) return 'name must not be a UUID';
  return undefined;
}

/**
 * Checks a branch name the way `git check-ref-format --branch` would, minus
 * the rarely-used corners: no control characters, spaces, `~^:?*[\`, `..`,
 * `@{`, no leading `-` or `/`, no trailing `/`, `.` or `.lock`, no `//`.
 */
export function branchNameProblem(name: string): string | undefined {
  if (name.length === 0 || name.length > 200) return 'branch name must be 1-200 characters';
  if (/[\x00-\x20\x7f~^:?*[\\]/.test(name)) return 'branch name contains a forbidden character';
  if (name.includes('..') || name.includes('@{') || name.includes('//')) return 'branch name contains "..", "@{" or "//"';
  if (name.startsWith('-') || name.startsWith('/') || name.endsWith('/') || name.endsWith('.') || name.endsWith('.lock'))
    return 'branch name has a forbidden start or end';
  if (name === '@' || name.split('/').some((p) => p.startsWith('.'))) return 'branch name has a component starting with "."';
  return undefined;
}

const REV_RE = /^[A-Za-z0-9_][A-Za-z0-9._\/@{}^~-]{0,199}$/;

/**
 * The one revision check: true when `rev` may be handed to git as a revision (a branch, tag
 * or object id, with `^`/`~`/`@{…}` suffixes): at most 200 characters, no option (leading
 * `-`), no range (`..`), no spaces, colons or other characters git would read specially.
 */
export const isRevision = (rev: unknown): rev is string => typeof rev === 'string' && REV_RE.test(rev) && !rev.includes('..');

/** Validates a revision taken from input; throws `invalid` (INVALID_REVISION) naming `what`. */
export function requireRevision(rev: unknown, what = 'revision'): string {
  if (!isRevision(rev)) throw invalid(`Invalid ${what}: ${String(rev).slice(0, 100)}`, 'INVALID_REVISION');
  return rev;
}

const OID_RE = /^[0-9a-f]{40}$/;

/** The one object-id check: a full SHA-1 object id in lowercase hex, as git prints them. */
export const isObjectId = (v: unknown): v is string => typeof v === 'string' && OID_RE.test(v);

/**
 * Validates an object id taken from input, in any case, and returns it lowercased; throws
 * `invalid` naming `what` (INVALID_OBJECT_ID unless another Freestyle code is given).
 */
export function requireObjectId(v: unknown, what = 'object ID', code = 'INVALID_OBJECT_ID'): string {
  const lower = typeof v === 'string' ? v.toLowerCase() : v;
  if (!isObjectId(lower)) throw invalid(`Invalid ${what}: ${String(v).slice(0, 100)} (expected 40 hex digits)`, code);
  return lower;
}

/**
 * VM ids, as request schemas check them: opaque to Palisade until the SSH gateway comes, so
 * their shape is all there is to check.
 */
export const VM_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$';

/** Linux user names (a VM grant's `allowedUsers`), as request schemas check them. */
export const LINUX_USER_PATTERN = '^[a-z_][a-z0-9_-]{0,31}\\$?$';

/**
 * True when `v` may be the name or the email of a commit's author or committer: git writes
 * them as `name <email>` on one header line, so not empty, no `<`, `>`, line break or NUL.
 */
export const isSignaturePart = (v: string): boolean => v.length > 0 && !/[<>\n\r\0]/.test(v);

const USERNAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** Usernames: 1-64 of letters, digits, `._-`, starting with a letter or digit; `x-access-token` is reserved for git. */
export function usernameProblem(v: string): string | undefined {
  if (!USERNAME_RE.test(v)) return 'username must be 1-64 of A-Z a-z 0-9 . _ - starting with a letter or digit';
  if (v.toLowerCase() === 'x-access-token') return 'username "x-access-token" is reserved';
  return undefined;
}

/** Zero-width code points HFS+ ignores in names, so `.g\u200cit` would be `.git` there. */
export const HFS_IGNORABLE = /[\u200c-\u200f\u202a-\u202e\u206a-\u206f\ufeff]/g;

/** `.git` in any case, as HFS+ (ignorable code points) or NTFS (trailing dots and spaces, `:stream`, 8.3 name) would read it. */
export function isDotGit(part: string): boolean {
  return /^(?:\.git|git~1)(?:[. ]*$|[. ]*:)/.test(part.replace(HFS_IGNORABLE, '').toLowerCase());
}

const HOST_LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
const HOSTNAME_RE = new RegExp(`^${HOST_LABEL}(?:\\.${HOST_LABEL})*$`);

/**
 * A VM's address as the gateway will dial it: a DNS name (letters, digits and `-` in labels of
 * at most 63, 253 in all, the last label not all digits, so that nothing reads it as an IPv4
 * number), a dotted-decimal IPv4 address, or an IPv6 address (brackets optional, no zone).
 * Returns the canonical form (lowercase, no trailing dot, IPv6 compressed), or undefined when
 * it is none of these; `0.0.0.0` and `::` name no machine.
 */
export function normaliseVmHost(host: string): string | undefined {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (isIPv6(bare)) {
    if (bare.includes('%')) return undefined;
    let v6: string;
    try {
      v6 = new URL(`ssh://[${bare}]`).hostname.slice(1, -1);
    } catch {
      return undefined;
    }
    return v6 === '::' ? undefined : v6;
  }
  if (bare !== host) return undefined;
  if (isIPv4(host)) return host === '0.0.0.0' ? undefined : host;
  const name = (host.endsWith('.') ? host.slice(0, -1) : host).toLowerCase();
  if (name.length === 0 || name.length > 253 || !HOSTNAME_RE.test(name)) return undefined;
  if (/^[0-9]+$/.test(name.slice(name.lastIndexOf('.') + 1))) return undefined;
  return name;
}

/**
 * True when `text` matches the glob `pattern`, where `*` matches any run of characters (`/`
 * included, as in git's refspecs) and every other character only itself. Linear in practice
 * and never worse than |pattern|·|text|: the classic matcher that backtracks only to the last
 * star (no regular expression, so no pattern can make it slow).
 */
export function globMatch(pattern: string, text: string): boolean {
  let p = 0;
  let t = 0;
  let star = -1;
  let mark = 0;
  while (t < text.length) {
    if (p < pattern.length && pattern[p] !== '*' && pattern[p] === text[t]) {
      p++;
      t++;
    } else if (p < pattern.length && pattern[p] === '*') {
      star = p++;
      mark = t;
    } else if (star >= 0) {
      p = star + 1;
      t = ++mark;
    } else return false;
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}

/** The characters git refuses in ref names, and spaces (a `*` is a glob in a pattern). */
const REF_FORBIDDEN = /[\x00-\x20\x7f~^:?[\\]/;

/**
 * Checks a full ref name as a push names it (`refs/heads/main`), the way `git check-ref-format`
 * would: under `refs/`, no control characters, spaces or `~^:?*[\`, no `..`, `@{` or `//`, no
 * component starting with `.` or ending in `.lock`, no trailing `/` or `.`. Undefined when valid.
 */
export function refNameProblem(ref: string): string | undefined {
  if (ref.length === 0 || ref.length > 255) return 'ref name must be 1-255 characters';
  if (!ref.startsWith('refs/')) return 'ref name must start with refs/';
  if (REF_FORBIDDEN.test(ref) || ref.includes('*')) return 'ref name contains a forbidden character';
  if (ref.includes('..') || ref.includes('@{') || ref.includes('//')) return 'ref name contains "..", "@{" or "//"';
  if (ref.endsWith('/') || ref.endsWith('.')) return 'ref name has a forbidden end';
  if (ref.split('/').some((c) => c.startsWith('.') || c.endsWith('.lock'))) return 'ref name has a component starting with "." or ending in ".lock"';
  return undefined;
}

/** Checks a ref pattern of a grant's rules: a full ref name under `refs/` in which `*` is a wildcard. */
export function refPatternProblem(pattern: string): string | undefined {
  if (pattern.length === 0 || pattern.length > 255) return 'a ref pattern must be 1-255 characters';
  if (!pattern.startsWith('refs/')) return `ref pattern ${pattern.slice(0, 100)} must start with refs/ (e.g. refs/heads/agents/*)`;
  if (REF_FORBIDDEN.test(pattern)) return `ref pattern ${pattern.slice(0, 100)} contains a forbidden character`;
  if ((pattern.match(/\*/g) ?? []).length > 8) return 'a ref pattern may hold at most 8 `*`';
  return undefined;
}

/** Checks a protected-branch pattern: a branch name (`main`) in which `*` is a wildcard (`release/*`). */
export function branchPatternProblem(pattern: string): string | undefined {
  if (pattern.length === 0 || pattern.length > 200) return 'a branch pattern must be 1-200 characters';
  if (pattern.startsWith('refs/')) return `branch pattern ${pattern.slice(0, 100)} names a branch, not a ref: drop refs/heads/`;
  if (REF_FORBIDDEN.test(pattern) || pattern.startsWith('-') || pattern.startsWith('/')) return `branch pattern ${pattern.slice(0, 100)} contains a forbidden character`;
  if ((pattern.match(/\*/g) ?? []).length > 8) return 'a branch pattern may hold at most 8 `*`';
  return undefined;
}
