import type { Access } from '../../access/index.ts';
import { Level, parseRepoPerm, type Principal, repoPermOf } from '../../domain/access.ts';
import { invalid } from '../../domain/errors.ts';
import type { Grants } from '../../services/grants.ts';
import { redactUrl } from '../../services/outbound.ts';
import type { Groups } from '../../services/groups.ts';
import type { Repos } from '../../services/repos.ts';
import type { SshKeys, SshKeyOut } from '../../services/ssh-keys.ts';
import type { Users } from '../../services/users.ts';
import type { RepoRow, UserRow, UsersGroupRow } from '../../services/types.ts';
import Type from 'typebox';
import { UUID_PATTERN } from '../../domain/validate.ts';
import { MAX_SSH_KEY_TITLE } from '../../services/ssh-keys.ts';
import { MAX_PUBLIC_KEY_LINE } from '../ssh-key-schemas.ts';
import { MAX_TTL_SECONDS } from '../token-schemas.ts';
import type { CreatedToken, TokenInfo } from '../../services/tokens.ts';
import { type ArgSpec, type ArgValues, RpcBool, RpcInt, RpcNullableStr, RpcStr } from './args.ts';

export interface RpcDeps {
  users: Users;
  groups: Groups;
  repos: Repos;
  grants: Grants;
  access: Access;
  sshKeys: SshKeys;
  /** create_repo's repo_type when none is given: the seed's `hg`, or `git` (PALISADE_DEFAULT_REPO_TYPE) */
  defaultRepoType: 'git' | 'hg';
}

export interface RpcMethod {
  /** only admins may call it (checked through the decision point as `server:admin`) */
  admin: boolean;
  /** a short description for /openapi.json */
  summary: string;
  args: ArgSpec;
  run(d: RpcDeps, p: Principal, a: ArgValues): Promise<unknown>;
}

/** The arguments of a method: a closed object (an unknown argument is an error naming it). */
const args = (props: Parameters<typeof Type.Object>[0], aliases?: Record<string, string>): ArgSpec => ({ schema: Type.Object(props, { additionalProperties: false }), aliases });
const opt = Type.Optional;
const NAME = 255;
const RepoName = RpcStr(NAME, { description: 'Repository full name or id' });
const Username = RpcStr(NAME, { description: 'Username' });
const GroupName = RpcStr(NAME, { description: 'Users group name' });
const Perm = RpcStr(50, { description: 'repository.none, repository.read, repository.write or repository.admin' });

/** A user in seed 002's shape. The API key is stored hashed, so it appears only where it was just created. */
export const userOut = (u: UserRow, apiKey: string | null = null) => ({
  id: u.id,
  username: u.username,
  firstname: u.firstname,
  lastname: u.lastname,
  email: u.email,
  active: u.active === 1,
  admin: u.admin === 1,
  ldap: u.ldap_dn,
  api_key: apiKey,
});

const groupOut = (g: UsersGroupRow, members: UserRow[]) => ({ id: g.id, group_name: g.name, active: g.active === 1, members: members.map((m) => userOut(m)) });
const repoOut = (r: RepoRow) => ({ id: r.id, repo_name: r.name ?? r.id, type: r.type, description: r.description ?? '', private: r.visibility === 'private', clone_uri: r.upstream_url && redactUrl(r.upstream_url) }); // credentials are write-only

/** An API key in the protocol's spelling (the secret only where it was just created). */
const apiKeyOut = (k: TokenInfo | CreatedToken) => ({ id: k.id, name: k.name, created_on: k.createdAt, expires_at: k.expiresAt, ...('lastUsedAt' in k ? { last_used_on: k.lastUsedAt } : {}), ...('token' in k ? { api_key: k.token } : {}) });

/** An SSH key in the protocol's spelling. */
const sshKeyOut = (k: SshKeyOut) => ({ id: k.id, fingerprint: k.fingerprint, title: k.title, created_on: k.createdAt });

function perm(v: unknown): Level {
  const l = parseRepoPerm(v);
  if (l === undefined) throw invalid('perm must be one of repository.none, repository.read, repository.write, repository.admin');
  return l;
}

/** Seed 002's 17 methods and Palisade's SSH key, API key and explain methods, with the argument names the seed uses and the aliases it (or later RhodeCode) also uses. */
export const METHODS: Record<string, RpcMethod> = {
  pull: {
    admin: false,
    summary: 'Fetch the repository from its clone_uri again (repository.admin); also `repo` for repo_name',
    args: args({ repo_name: RepoName }, { repo: 'repo_name' }),
    async run(d, p, a) {
      const row = await d.repos.pull(p, a.repo_name as string);
      return `Pulled from ${row.name ?? row.id}`;
    },
  },
  get_user: {
    admin: true,
    summary: 'A user, or null (admin)',
    args: args({ username: Username }),
    async run(d, p, a) {
      const u = await d.users.find(p, a.username as string);
      return u ? userOut(u) : null;
    },
  },
  get_users: {
    admin: true,
    summary: 'All users (admin)',
    args: args({}),
    async run(d, p) {
      return (await d.users.list(p)).map((u) => userOut(u));
    },
  },
  create_user: {
    admin: true,
    summary: "Create a user, or update the given fields of an existing one; a new user's api_key is shown once (admin)",
    args: args({
      username: Username,
      password: RpcStr(1024),
      email: RpcStr(NAME),
      firstname: opt(RpcNullableStr(NAME)),
      lastname: opt(RpcNullableStr(NAME)),
      active: opt(RpcBool()),
      admin: opt(RpcBool()),
      ldap_dn: opt(RpcNullableStr(1024)),
    }),
    async run(d, p, a) {
      const r = await d.users.createOrUpdate(p, {
        username: a.username as string,
        password: a.password as string,
        email: a.email as string,
        firstname: a.firstname as string | null | undefined,
        lastname: a.lastname as string | null | undefined,
        active: a.active as boolean | undefined,
        admin: a.admin as boolean | undefined,
        ldapDn: a.ldap_dn as string | null | undefined,
      });
      return {
        id: r.user.id,
        msg: r.created ? `created new user ${r.user.username}` : `updated user ${r.user.username}`,
        api_key: r.apiKey ?? null,
        user: userOut(r.user, r.apiKey ?? null),
      };
    },
  },
  get_users_group: {
    admin: true,
    summary: 'A users group with its members, or null (admin)',
    args: args({ group_name: GroupName }),
    async run(d, p, a) {
      const w = await d.groups.findWithMembers(p, a.group_name as string);
      return w ? groupOut(w.group, w.members) : null;
    },
  },
  get_users_groups: {
    admin: true,
    summary: 'All users groups with their members (admin)',
    args: args({}),
    async run(d, p) {
      return (await d.groups.list(p)).map((w) => groupOut(w.group, w.members));
    },
  },
  create_users_group: {
    admin: true,
    summary: 'Create a users group (admin)',
    args: args({ group_name: GroupName, active: opt(RpcBool(true)) }),
    async run(d, p, a) {
      const g = await d.groups.create(p, a.group_name as string, a.active as boolean);
      return { id: g.id, msg: `created new users group ${g.name}` };
    },
  },
  add_user_to_users_group: {
    admin: true,
    summary: 'Add a member; success false when it already was one (admin); also spelled add_user_users_group',
    args: args({ group_name: GroupName, username: Username }),
    async run(d, p, a) {
      const r = await d.groups.addMember(p, a.group_name as string, a.username as string);
      return { id: r.id, success: r.added, msg: r.added ? `added member ${r.user.username} to users group ${r.group.name}` : 'User is already in that group' };
    },
  },
  remove_user_from_users_group: {
    admin: true,
    summary: 'Remove a member; success false when it was not one (admin)',
    args: args({ group_name: GroupName, username: Username }),
    async run(d, p, a) {
      const { group, user, removed } = await d.groups.removeMember(p, a.group_name as string, a.username as string);
      return { success: removed, msg: removed ? `removed member ${user.username} from users group ${group.name}` : "User wasn't in group" };
    },
  },
  get_repo: {
    admin: false,
    summary: 'A repository the caller may read, or null; members only for its administrators',
    args: args({ repo_name: RepoName }),
    async run(d, p, a) {
      const row = await d.repos.findReadable(p, a.repo_name as string);
      if (!row) return null;
      const out: Record<string, unknown> = repoOut(row);
      // Who holds what is shown to those who administer the repository.
      const dec = await d.access.authorize(p, 'repo:admin', { kind: 'repo', repoId: row.id });
      if (dec.allowed) {
        const m = await d.grants.members(p, row.id);
        out.members = [
          ...m.users.map((u) => ({ ...userOut(u), api_key: undefined, type: 'user', permission: repoPermOf(u.level) })),
          ...m.groups.map((g) => ({ id: g.id, name: g.name, active: g.active === 1, type: 'users_group', permission: repoPermOf(g.level) })),
        ];
      }
      return out;
    },
  },
  get_repos: {
    admin: false,
    summary: 'The repositories the caller may read',
    args: args({}),
    async run(d, p) {
      const out: ReturnType<typeof repoOut>[] = [];
      for (let offset = 0; ; offset += 1000) {
        const page = await d.repos.list(p, { limit: 1000, offset });
        out.push(...page.rows.map(repoOut));
        if (page.rows.length < 1000) return out;
      }
    },
  },
  get_repo_nodes: {
    admin: false,
    summary: 'Files and folders under root_path at revision, flat',
    args: args({
      repo_name: RepoName,
      revision: RpcStr(NAME, { description: 'Branch, tag or commit id' }),
      root_path: RpcStr(4096, { description: 'Folder ("" or "/" for the root)' }),
      ret_type: opt(Type.Unsafe<'all' | 'files' | 'dirs'>({ type: 'string', enum: ['all', 'files', 'dirs'], default: 'all' })),
    }),
    async run(d, p, a) {
      const ret = a.ret_type as 'all' | 'files' | 'dirs';
      return d.repos.nodes(p, a.repo_name as string, a.revision as string, a.root_path as string, ret);
    },
  },
  create_repo: {
    admin: false,
    summary: 'Create a repository (groups from "/" in its name); clone_uri fetches now, pull later',
    args: args({
      repo_name: RpcStr(NAME, { description: 'Full name `group/sub/name`' }),
      owner_name: opt(RpcStr(NAME, { description: 'Owner (another user than yourself: admins only)' })),
      description: opt(RpcStr(10_000, { default: '' })),
      repo_type: opt(RpcStr(20, { description: '"hg" or "git"; without it the server\'s default (the seed\'s "hg" unless PALISADE_DEFAULT_REPO_TYPE=git)' })),
      private: opt(RpcBool(false)),
      clone_uri: opt(RpcNullableStr(4096, 'http(s) URL to clone from (SSRF-checked)')),
    }),
    async run(d, p, a) {
      const type = (a.repo_type as string | undefined) ?? d.defaultRepoType;
      if (type !== 'git' && type !== 'hg') throw invalid(`unknown repo_type ${String(type).slice(0, 20)}; use "hg" or "git"`);
      const row = await d.repos.create(p, {
        type,
        name: a.repo_name as string,
        description: a.description as string,
        public: !(a.private as boolean),
        ownerName: a.owner_name as string | undefined,
        cloneUri: (a.clone_uri as string | null | undefined) ?? null,
      });
      return { id: row.id, msg: `Created new repository ${row.name}` };
    },
  },
  grant_user_permission: {
    admin: false,
    summary: "Set a user's permission on a repository (repository.admin)",
    args: args({ repo_name: RepoName, username: Username, perm: Perm }),
    async run(d, p, a) {
      const level = perm(a.perm);
      const { repo, user } = await d.grants.grantUser(p, a.repo_name as string, a.username as string, level);
      return { msg: `Granted perm: ${repoPermOf(level)} for user: ${user.username} in repo: ${repo.name ?? repo.id}` };
    },
  },
  revoke_user_permission: {
    admin: false,
    summary: "Remove a user's permission on a repository (repository.admin)",
    args: args({ repo_name: RepoName, username: Username }),
    async run(d, p, a) {
      const { repo, user } = await d.grants.revokeUser(p, a.repo_name as string, a.username as string);
      return { msg: `Revoked perm for user: ${user.username} in repo: ${repo.name ?? repo.id}` };
    },
  },
  grant_users_group_permission: {
    admin: false,
    summary: "Set a users group's permission on a repository (repository.admin); also `users_group` for group_name",
    args: args({ repo_name: RepoName, group_name: GroupName, perm: Perm }, { users_group: 'group_name' }),
    async run(d, p, a) {
      const level = perm(a.perm);
      const { repo, group } = await d.grants.grantGroup(p, a.repo_name as string, a.group_name as string, level);
      return { msg: `Granted perm: ${repoPermOf(level)} for group: ${group.name} in repo: ${repo.name ?? repo.id}` };
    },
  },
  revoke_users_group_permission: {
    admin: false,
    summary: "Remove a users group's permission on a repository (repository.admin); also `users_group` for group_name",
    args: args({ repo_name: RepoName, group_name: GroupName }, { users_group: 'group_name' }),
    async run(d, p, a) {
      const { repo, group } = await d.grants.revokeGroup(p, a.repo_name as string, a.group_name as string);
      return { msg: `Revoked perm for group: ${group.name} in repo: ${repo.name ?? repo.id}` };
    },
  },
  add_user_ssh_key: {
    admin: true,
    summary: "Register an SSH public key for a user (admin): one OpenSSH line `type base64 [comment]`; a key registered anywhere already, DSA and RSA < 2048 are refused",
    args: args({
      username: Username,
      public_key: RpcStr(MAX_PUBLIC_KEY_LINE, { description: 'OpenSSH public key line' }),
      title: opt(RpcNullableStr(MAX_SSH_KEY_TITLE, "A name for the key (default: the key's comment)")),
    }),
    async run(d, p, a) {
      const k = await d.sshKeys.addForUser(p, a.username as string, { publicKey: a.public_key as string, title: a.title as string | null | undefined });
      return { id: k.id, fingerprint: k.fingerprint, msg: `added SSH key ${k.fingerprint} for user ${(a.username as string).slice(0, 64)}` };
    },
  },
  get_user_ssh_keys: {
    admin: true,
    summary: "A user's SSH public keys: id, fingerprint, title, created_on (admin)",
    args: args({ username: Username }),
    async run(d, p, a) {
      return (await d.sshKeys.listForUser(p, a.username as string)).keys.map(sshKeyOut);
    },
  },
  delete_user_ssh_key: {
    admin: true,
    summary: "Remove one of a user's SSH public keys; success false when the user holds no such key (admin)",
    args: args({ username: Username, key_id: Type.String({ pattern: UUID_PATTERN, description: 'The key id (from get_user_ssh_keys)' }) }),
    async run(d, p, a) {
      const removed = await d.sshKeys.deleteForUser(p, a.username as string, a.key_id as string);
      return { success: removed, msg: removed ? `deleted SSH key ${a.key_id as string} of user ${(a.username as string).slice(0, 64)}` : 'The user holds no such SSH key' };
    },
  },
  add_user_api_key: {
    admin: true,
    summary: 'Issue an API key for a user, shown once; optionally named and expiring (expires_at RFC 3339, or ttl_seconds) (admin)',
    args: args({
      username: Username,
      name: opt(RpcNullableStr(200, 'A label for the key')),
      expires_at: opt(RpcNullableStr(64, 'When the key stops working (RFC 3339)')),
      ttl_seconds: opt(RpcInt(1, MAX_TTL_SECONDS, 'Seconds until the key stops working')),
    }),
    async run(d, p, a) {
      const k = await d.users.createApiKeyFor(p, a.username as string, { name: a.name as string | null | undefined, expiresAt: a.expires_at as string | null | undefined, ttlSeconds: a.ttl_seconds as number | undefined });
      return { ...apiKeyOut(k), msg: `added API key ${k.id} for user ${(a.username as string).slice(0, 64)}` };
    },
  },
  get_user_api_keys: {
    admin: true,
    summary: "A user's API keys: id, name, created_on, expires_at, last_used_on, never the key (admin)",
    args: args({ username: Username }),
    async run(d, p, a) {
      return (await d.users.listApiKeysFor(p, a.username as string)).map(apiKeyOut);
    },
  },
  delete_user_api_key: {
    admin: true,
    summary: "Revoke one of a user's API keys; success false when the user holds no such key (admin)",
    args: args({ username: Username, key_id: Type.String({ pattern: UUID_PATTERN, description: 'The key id (from get_user_api_keys)' }) }),
    async run(d, p, a) {
      const removed = await d.users.revokeApiKeyFor(p, a.username as string, a.key_id as string);
      return { success: removed, msg: removed ? `revoked API key ${a.key_id as string} of user ${(a.username as string).slice(0, 64)}` : 'The user holds no such API key' };
    },
  },
  explain_permission: {
    admin: false,
    summary: "Why a user holds its permission on a repository: the level and the decision's facts in order; with `ref` (and `operation`: create, update, delete), the decision on moving it (repository.admin, or the user itself with read)",
    args: args({
      repo_name: RepoName,
      username: Username,
      ref: opt(RpcStr(255, { description: 'A full ref name, e.g. refs/heads/main' })),
      operation: opt(Type.Unsafe<'create' | 'update' | 'delete'>({ type: 'string', enum: ['create', 'update', 'delete'], default: 'update' })),
    }),
    async run(d, p, a) {
      const e = await d.grants.explain(p, a.repo_name as string, a.username as string, a.ref === undefined ? undefined : { ref: a.ref as string, op: a.operation as 'create' | 'update' | 'delete' });
      return {
        repo_name: e.repo.name ?? e.repo.id,
        username: e.user.username,
        permission: `repository.${e.level}`,
        level: e.level,
        facts: e.facts,
        ...(e.ref ? { ref: { ref: e.ref.ref, operation: a.operation, allowed: e.ref.allowed, fast_forward_only: e.ref.fastForwardOnly, reason: e.ref.reason ?? e.ref.fastForwardReason ?? null, facts: e.ref.facts ?? [] } } : {}),
      };
    },
  },
};

/** Other names callers use for a method: the seed's example spells add_user_to_users_group this way. */
export const METHOD_ALIASES: Record<string, string> = { add_user_users_group: 'add_user_to_users_group' };
