import type { Access } from '../../access/index.ts';
import { Level, parseRepoPerm, type Principal, repoPermOf } from '../../domain/access.ts';
import { invalid, notFound } from '../../domain/errors.ts';
import type { Grants } from '../../services/grants.ts';
import { redactUrl } from '../../services/outbound.ts';
import type { Groups } from '../../services/groups.ts';
import type { Repos } from '../../services/repos.ts';
import type { Users } from '../../services/users.ts';
import type { RepoRow, UserRow, UsersGroupRow } from '../../services/types.ts';
import type { ArgSpec, ArgValues } from './args.ts';

export interface RpcDeps {
  users: Users;
  groups: Groups;
  repos: Repos;
  grants: Grants;
  access: Access;
}

export interface RpcMethod {
  /** only admins may call it (checked through the decision point as `server:admin`) */
  admin: boolean;
  args: Record<string, ArgSpec>;
  run(d: RpcDeps, p: Principal, a: ArgValues): Promise<unknown>;
}

const str = (required = true, extra: Partial<ArgSpec> = {}): ArgSpec => ({ type: 'string', required, ...extra });
const bool = (def: boolean): ArgSpec => ({ type: 'bool', default: def });

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
const repoOut = (r: RepoRow) => ({ id: r.id, repo_name: r.name ?? r.id, type: 'git', description: r.description ?? '', private: r.visibility === 'private', clone_uri: r.upstream_url && redactUrl(r.upstream_url) }); // credentials are write-only

function perm(v: unknown): Level {
  const l = parseRepoPerm(v);
  if (l === undefined) throw invalid('perm must be one of repository.none, repository.read, repository.write, repository.admin');
  return l;
}

/** Seed 002's 17 methods, with the argument names the seed uses and the aliases it (or later RhodeCode) also uses. */
export const METHODS: Record<string, RpcMethod> = {
  pull: {
    admin: false,
    args: { repo_name: str(true, { aliases: ['repo'] }) },
    async run(d, p, a) {
      const row = await d.repos.pull(p, a.repo_name as string);
      return `Pulled from ${row.name ?? row.id}`;
    },
  },
  get_user: {
    admin: true,
    args: { username: str() },
    async run(d, p, a) {
      const u = await d.users.find(p, a.username as string);
      return u ? userOut(u) : null;
    },
  },
  get_users: {
    admin: true,
    args: {},
    async run(d, p) {
      return (await d.users.list(p)).map((u) => userOut(u));
    },
  },
  create_user: {
    admin: true,
    args: {
      username: str(),
      password: str(),
      email: str(),
      firstname: str(false, { nullable: true }),
      lastname: str(false, { nullable: true }),
      active: { type: 'bool' },
      admin: { type: 'bool' },
      ldap_dn: str(false, { nullable: true }),
    },
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
    args: { group_name: str() },
    async run(d, p, a) {
      const w = await d.groups.findWithMembers(p, a.group_name as string);
      return w ? groupOut(w.group, w.members) : null;
    },
  },
  get_users_groups: {
    admin: true,
    args: {},
    async run(d, p) {
      return (await d.groups.list(p)).map((w) => groupOut(w.group, w.members));
    },
  },
  create_users_group: {
    admin: true,
    args: { group_name: str(), active: bool(true) },
    async run(d, p, a) {
      const g = await d.groups.create(p, a.group_name as string, a.active as boolean);
      return { id: g.id, msg: `created new users group ${g.name}` };
    },
  },
  add_user_to_users_group: {
    admin: true,
    args: { group_name: str(), username: str() },
    async run(d, p, a) {
      const r = await d.groups.addMember(p, a.group_name as string, a.username as string);
      return { id: r.id, success: r.added, msg: r.added ? `added member ${r.user.username} to users group ${r.group.name}` : 'User is already in that group' };
    },
  },
  remove_user_from_users_group: {
    admin: true,
    args: { group_name: str(), username: str() },
    async run(d, p, a) {
      const { group, user, removed } = await d.groups.removeMember(p, a.group_name as string, a.username as string);
      return { success: removed, msg: removed ? `removed member ${user.username} from users group ${group.name}` : "User wasn't in group" };
    },
  },
  get_repo: {
    admin: false,
    args: { repo_name: str() },
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
    args: {},
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
    args: { repo_name: str(), revision: str(), root_path: str(), ret_type: { type: 'string', default: 'all' } },
    async run(d, p, a) {
      const ret = a.ret_type as string;
      if (ret !== 'all' && ret !== 'files' && ret !== 'dirs') throw invalid('ret_type must be one of all, files, dirs');
      return d.repos.nodes(p, a.repo_name as string, a.revision as string, a.root_path as string, ret);
    },
  },
  create_repo: {
    admin: false,
    args: {
      repo_name: str(),
      owner_name: str(false),
      description: { type: 'string', default: '' },
      repo_type: { type: 'string', default: 'git' },
      private: bool(false),
      clone_uri: str(false, { nullable: true }),
    },
    async run(d, p, a) {
      if (a.repo_type === 'hg') throw invalid('Mercurial repositories are not supported (yet); use repo_type "git"');
      if (a.repo_type !== 'git') throw invalid(`unknown repo_type ${String(a.repo_type).slice(0, 20)}; use "git"`);
      const row = await d.repos.create(p, {
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
    args: { repo_name: str(), username: str(), perm: str() },
    async run(d, p, a) {
      const level = perm(a.perm);
      const { repo, user } = await d.grants.grantUser(p, a.repo_name as string, a.username as string, level);
      return { msg: `Granted perm: ${repoPermOf(level)} for user: ${user.username} in repo: ${repo.name ?? repo.id}` };
    },
  },
  revoke_user_permission: {
    admin: false,
    args: { repo_name: str(), username: str() },
    async run(d, p, a) {
      const { repo, user } = await d.grants.revokeUser(p, a.repo_name as string, a.username as string);
      return { msg: `Revoked perm for user: ${user.username} in repo: ${repo.name ?? repo.id}` };
    },
  },
  grant_users_group_permission: {
    admin: false,
    args: { repo_name: str(), group_name: str(true, { aliases: ['users_group'] }), perm: str() },
    async run(d, p, a) {
      const level = perm(a.perm);
      const { repo, group } = await d.grants.grantGroup(p, a.repo_name as string, a.group_name as string, level);
      return { msg: `Granted perm: ${repoPermOf(level)} for group: ${group.name} in repo: ${repo.name ?? repo.id}` };
    },
  },
  revoke_users_group_permission: {
    admin: false,
    args: { repo_name: str(), group_name: str(true, { aliases: ['users_group'] }) },
    async run(d, p, a) {
      const { repo, group } = await d.grants.revokeGroup(p, a.repo_name as string, a.group_name as string);
      return { msg: `Revoked perm for group: ${group.name} in repo: ${repo.name ?? repo.id}` };
    },
  },
};

/** Other names callers use for a method: the seed's example spells add_user_to_users_group this way. */
export const METHOD_ALIASES: Record<string, string> = { add_user_users_group: 'add_user_to_users_group' };
