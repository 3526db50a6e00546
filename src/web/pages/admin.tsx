import type { ComponentChildren } from 'preact';
import type { Fact } from '../../access/decide.ts';
import { repoPermOf } from '../../domain/access.ts';
import type { VmPermission } from '../../services/identities.ts';
import type { SshKeyOut } from '../../services/ssh-keys.ts';
import type { RepoRow, UserRow, UsersGroupRow } from '../../services/types.ts';
import type { VmOut } from '../../services/vms.ts';
import { formatDate } from '../render.ts';
import { type Ctx, Csrf, Layout, repoHref } from './layout.tsx';
import { RepoHeader } from './repo.tsx';

/** A message above a form: what the last action did, or why it was refused. */
export interface Flash {
  kind: 'ok' | 'error' | 'secret';
  text: string;
  /** a secret shown once (API key, token) */
  secret?: string;
}

export function FlashBox({ flash }: { flash: Flash | undefined }) {
  if (!flash) return null;
  if (flash.kind === 'secret')
    return (
      <div class="secret" id="secret">
        {flash.text} <code id="secret-value">{flash.secret}</code>
      </div>
    );
  return (
    <div class={flash.kind === 'error' ? 'error' : 'notice'} id="flash">
      {flash.text}
    </div>
  );
}

/** A POST form with the CSRF field. */
export function PostForm({ ctx, action, children, confirm, class: cls, id }: { ctx: Ctx; action: string; children: ComponentChildren; confirm?: string; class?: string; id?: string }) {
  return (
    <form method="post" action={action} class={cls} data-confirm={confirm} id={id}>
      <Csrf ctx={ctx} />
      {children}
    </form>
  );
}

const LEVELS = ['repository.none', 'repository.read', 'repository.write', 'repository.admin'] as const;

function LevelSelect({ name, value }: { name: string; value?: number }) {
  return (
    <select name={name} aria-label="Permission">
      {LEVELS.map((l, i) => (
        <option value={l} selected={value === i}>
          {l}
        </option>
      ))}
    </select>
  );
}

function AdminTabs({ tab }: { tab: 'users' | 'groups' }) {
  return (
    <nav class="tabs">
      <a href="/-/admin/users" class={tab === 'users' ? 'on' : undefined}>
        Users
      </a>
      <a href="/-/admin/groups" class={tab === 'groups' ? 'on' : undefined}>
        Users groups
      </a>
    </nav>
  );
}

/** Administration: every user, with create, activate/deactivate, password reset and API key rotation. */
export function UsersPage({ ctx, users, flash }: { ctx: Ctx; users: UserRow[]; flash?: Flash }) {
  return (
    <Layout ctx={ctx} title="Users">
      <h1>Administration</h1>
      <AdminTabs tab="users" />
      <FlashBox flash={flash} />
      <div class="box">
        <div class="hd">
          <b>New user</b>
        </div>
        <PostForm ctx={ctx} action="/-/admin/users" class="pad8" id="new-user">
          <input type="text" name="username" placeholder="username" required aria-label="Username" /> <input type="email" name="email" placeholder="email (optional)" aria-label="Email" />{' '}
          <input type="password" name="password" placeholder="password" aria-label="Password" autocomplete="new-password" />{' '}
          <label>
            <input type="checkbox" name="admin" value="1" /> admin
          </label>{' '}
          <button type="submit" class="primary">
            Create user
          </button>
        </PostForm>
      </div>
      <div class="box">
        <table class="list" id="users">
          <thead>
            <tr>
              <th>User</th>
              <th>State</th>
              <th>Actions</th>
            </tr>
          </thead>
          <tbody>
            {users.map((u) => (
              <tr>
                <td>
                  <b>{u.username}</b> {u.admin === 1 && <span class="muted">admin</span>}
                  <div class="muted">{u.email ?? ''}</div>
                </td>
                <td>{u.active === 1 ? 'active' : 'inactive'}</td>
                <td>
                  <PostForm ctx={ctx} action={`/-/admin/users/${encodeURIComponent(u.username)}/active`} class="inline">
                    <input type="hidden" name="active" value={u.active === 1 ? '0' : '1'} />
                    <button type="submit">{u.active === 1 ? 'Deactivate' : 'Activate'}</button>
                  </PostForm>{' '}
                  <PostForm ctx={ctx} action={`/-/admin/users/${encodeURIComponent(u.username)}/password`} class="inline">
                    <input type="password" name="password" placeholder="new password" aria-label={`New password for ${u.username}`} autocomplete="new-password" required />{' '}
                    <button type="submit">Reset password</button>
                  </PostForm>{' '}
                  <PostForm ctx={ctx} action={`/-/admin/users/${encodeURIComponent(u.username)}/api-key`} class="inline" confirm={`Replace every API key of ${u.username}?`}>
                    <button type="submit">Rotate API key</button>
                  </PostForm>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </Layout>
  );
}

/** Administration: users groups and their members. */
export function GroupsPage({ ctx, groups, flash }: { ctx: Ctx; groups: { group: UsersGroupRow; members: UserRow[] }[]; flash?: Flash }) {
  return (
    <Layout ctx={ctx} title="Users groups">
      <h1>Administration</h1>
      <AdminTabs tab="groups" />
      <FlashBox flash={flash} />
      <div class="box">
        <div class="hd">
          <b>New users group</b>
        </div>
        <PostForm ctx={ctx} action="/-/admin/groups" class="pad8" id="new-group">
          <input type="text" name="name" placeholder="group name" required aria-label="Group name" />{' '}
          <button type="submit" class="primary">
            Create group
          </button>
        </PostForm>
      </div>
      {groups.map(({ group, members }) => (
        <div class="box group">
          <div class="hd">
            <b>{group.name}</b>
            <span class="muted">{group.active === 1 ? 'active' : 'inactive'}</span>
            <span class="sp" />
            <PostForm ctx={ctx} action={`/-/admin/groups/${encodeURIComponent(group.name)}/members`} class="inline">
              <input type="text" name="username" placeholder="username" required aria-label={`Add a member to ${group.name}`} /> <button type="submit">Add member</button>
            </PostForm>
          </div>
          <table class="list">
            <tbody>
              {members.length === 0 && (
                <tr>
                  <td class="muted">No members.</td>
                </tr>
              )}
              {members.map((m) => (
                <tr>
                  <td>{m.username}</td>
                  <td class="num">
                    <PostForm ctx={ctx} action={`/-/admin/groups/${encodeURIComponent(group.name)}/members/${encodeURIComponent(m.username)}/remove`} class="inline">
                      <button type="submit" class="danger">
                        Remove
                      </button>
                    </PostForm>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ))}
    </Layout>
  );
}

function SettingsTabs({ row, tab }: { row: RepoRow; tab: 'general' | 'permissions' | 'webhooks' }) {
  const base = `${repoHref(row)}/-/settings`;
  return (
    <nav class="tabs">
      <a href={base} class={tab === 'general' ? 'on' : undefined}>
        General
      </a>
      <a href={`${base}/permissions`} class={tab === 'permissions' ? 'on' : undefined}>
        Permissions
      </a>
      <a href={`${base}/webhooks`} class={tab === 'webhooks' ? 'on' : undefined}>
        Webhooks
      </a>
    </nav>
  );
}

/** A repository's settings: description, visibility, default branch, deletion. */
export function RepoSettingsPage({ ctx, row, branches, flash }: { ctx: Ctx; row: RepoRow; branches: string[]; flash?: Flash }) {
  const base = `${repoHref(row)}/-/settings`;
  return (
    <Layout ctx={ctx} title={`Settings · ${row.name ?? row.id}`}>
      <RepoHeader row={row} tab="settings" canAdmin />
      <SettingsTabs row={row} tab="general" />
      <FlashBox flash={flash} />
      <div class="box">
        <div class="hd">
          <b>Description</b>
        </div>
        <PostForm ctx={ctx} action={`${base}/description`} class="pad8">
          <textarea name="description" aria-label="Description">
            {row.description ?? ''}
          </textarea>
          <button type="submit">Save description</button>
        </PostForm>
      </div>
      <div class="box">
        <div class="hd">
          <b>Visibility</b>
        </div>
        <PostForm ctx={ctx} action={`${base}/visibility`} class="pad8" id="visibility">
          <select name="visibility" aria-label="Visibility">
            <option value="private" selected={row.visibility === 'private'}>
              Private: only those granted read
            </option>
            <option value="public" selected={row.visibility === 'public'}>
              Public: anyone may read, anonymous included
            </option>
          </select>{' '}
          <button type="submit">Save visibility</button>
        </PostForm>
      </div>
      <div class="box">
        <div class="hd">
          <b>Default branch</b>
        </div>
        <PostForm ctx={ctx} action={`${base}/default-branch`} class="pad8">
          <input type="text" name="branch" value={row.default_branch} list="branch-names" aria-label="Default branch" required />
          <datalist id="branch-names">
            {branches.map((b) => (
              <option value={b} />
            ))}
          </datalist>{' '}
          <button type="submit">Save default branch</button>
        </PostForm>
      </div>
      <div class="box">
        <div class="hd">
          <b>Delete this repository</b>
        </div>
        <PostForm ctx={ctx} action={`${base}/delete`} class="pad8" id="delete-repo">
          <p>
            This removes the repository, its history and every grant on it. Type <code>{row.name ?? row.id}</code> to confirm.
          </p>
          <input type="text" name="confirm" aria-label="Repository name to confirm" required />{' '}
          <button type="submit" class="danger">
            Delete repository
          </button>
        </PostForm>
      </div>
    </Layout>
  );
}

/** Repository permissions of users and groups (`repository.none/read/write/admin`). */
/** One user's effective level on a repository and the decision's facts, in order. */
export interface Explained {
  username: string;
  level: string;
  facts: Fact[];
}

export function PermissionsPage({ ctx, row, users, groups, flash, explained }: { ctx: Ctx; row: RepoRow; users: (UserRow & { level: number })[]; groups: (UsersGroupRow & { level: number })[]; flash?: Flash; explained?: Explained }) {
  const base = `${repoHref(row)}/-/settings/permissions`;
  return (
    <Layout ctx={ctx} title={`Permissions · ${row.name ?? row.id}`}>
      <RepoHeader row={row} tab="settings" canAdmin />
      <SettingsTabs row={row} tab="permissions" />
      <FlashBox flash={flash} />
      <p class="muted">
        A user holds the strongest of its own grant and its active groups' grants; its own <code>repository.none</code> overrides its groups. Admins and the owner hold
        everything. {row.visibility === 'public' ? 'This repository is public: everyone reads it unless their own grant is repository.none.' : ''}
      </p>
      <div class="grid2">
        <div class="box">
          <div class="hd">
            <b>Users</b>
          </div>
          <PostForm ctx={ctx} action={`${base}/users`} class="pad8" id="grant-user">
            <input type="text" name="username" placeholder="username" required aria-label="Username to grant" /> <LevelSelect name="perm" value={1} /> <button type="submit">Grant</button>
          </PostForm>
          <table class="list" id="user-grants">
            <tbody>
              {users.map((u) => (
                <tr>
                  <td>
                    {u.username} {u.id === row.owner_id && <span class="muted">owner</span>}{' '}
                    <a href={`${base}?explain=${encodeURIComponent(u.username)}#explain`} class="muted">
                      why
                    </a>
                  </td>
                  <td>{repoPermOf(u.level)}</td>
                  <td class="num">
                    {u.id !== row.owner_id && (
                      <PostForm ctx={ctx} action={`${base}/users/${encodeURIComponent(u.username)}/revoke`} class="inline">
                        <button type="submit" class="danger">
                          Revoke
                        </button>
                      </PostForm>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        <div class="box">
          <div class="hd">
            <b>Users groups</b>
          </div>
          <PostForm ctx={ctx} action={`${base}/groups`} class="pad8" id="grant-group">
            <input type="text" name="group" placeholder="group name" required aria-label="Group to grant" /> <LevelSelect name="perm" value={1} /> <button type="submit">Grant</button>
          </PostForm>
          <table class="list" id="group-grants">
            <tbody>
              {groups.map((g) => (
                <tr>
                  <td>{g.name}</td>
                  <td>{repoPermOf(g.level)}</td>
                  <td class="num">
                    <PostForm ctx={ctx} action={`${base}/groups/${encodeURIComponent(g.name)}/revoke`} class="inline">
                      <button type="submit" class="danger">
                        Revoke
                      </button>
                    </PostForm>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </div>
      <div class="box" id="explain">
        <div class="hd">
          <b>Effective level and why</b>
        </div>
        <form method="get" action={base} class="pad8">
          <input type="text" name="explain" placeholder="username" required aria-label="Username to explain" value={explained?.username ?? ''} /> <button type="submit">Explain</button>
        </form>
        {explained && (
          <div class="pad8" id="explained">
            <p>
              <b>{explained.username}</b> holds <code>repository.{explained.level}</code> on this repository:
            </p>
            <ol>
              {explained.facts.map((f) => (
                <li class={f.decisive ? 'decisive' : undefined}>
                  {f.detail}
                  {f.decisive && <b class="muted"> · decisive</b>}
                </li>
              ))}
            </ol>
          </div>
        )}
      </div>
    </Layout>
  );
}

export interface TriggerView {
  id: string;
  trigger: { branches: string[] | null; globs: string[] | null };
  action: { endpoint: string };
  createdAt: string;
}

export interface DeliveryView {
  id: string;
  status: string;
  attempts: number;
  lastStatusCode: number | null;
  lastError: string | null;
  createdAt: string;
  deliveredAt: string | null;
}

/** Push webhooks of a repository with their delivery logs and redelivery. */
export function WebhooksPage({ ctx, row, triggers, deliveries, flash }: { ctx: Ctx; row: RepoRow; triggers: TriggerView[]; deliveries: Map<string, DeliveryView[]>; flash?: Flash }) {
  const base = `${repoHref(row)}/-/settings/webhooks`;
  return (
    <Layout ctx={ctx} title={`Webhooks · ${row.name ?? row.id}`}>
      <RepoHeader row={row} tab="settings" canAdmin />
      <SettingsTabs row={row} tab="webhooks" />
      <FlashBox flash={flash} />
      <div class="box">
        <div class="hd">
          <b>New push webhook</b>
        </div>
        <PostForm ctx={ctx} action={base} class="pad8">
          <input type="text" name="endpoint" placeholder="https://example.com/hook" required aria-label="Endpoint URL" />{' '}
          <input type="text" name="branches" placeholder="branches (comma separated, optional)" aria-label="Branches" /> <button type="submit">Add webhook</button>
        </PostForm>
      </div>
      {triggers.map((t) => (
        <div class="box">
          <div class="hd">
            <b class="mono">{t.action.endpoint}</b>
            <span class="muted">{t.trigger.branches ? `branches: ${t.trigger.branches.join(', ')}` : 'every branch'}</span>
            <span class="sp" />
            <PostForm ctx={ctx} action={`${base}/${t.id}/delete`} class="inline" confirm="Delete this webhook?">
              <button type="submit" class="danger">
                Delete
              </button>
            </PostForm>
          </div>
          <table class="list">
            <thead>
              <tr>
                <th>Delivery</th>
                <th>Status</th>
                <th>Attempts</th>
                <th>Last answer</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {(deliveries.get(t.id) ?? []).map((d) => (
                <tr>
                  <td class="muted">{formatDate(d.createdAt)}</td>
                  <td>{d.status}</td>
                  <td>{d.attempts}</td>
                  <td class="muted">{d.lastStatusCode ?? d.lastError ?? ''}</td>
                  <td class="num">
                    <PostForm ctx={ctx} action={`${base}/${t.id}/deliveries/${d.id}/redeliver`} class="inline">
                      <button type="submit">Redeliver</button>
                    </PostForm>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ))}
    </Layout>
  );
}

/** Sign-in form. */
export function LoginPage({ ctx, next, error }: { ctx: Ctx; next: string; error?: string }) {
  return (
    <Layout ctx={ctx} title="Sign in">
      <div class="login box">
        <div class="hd">
          <b>Sign in to Palisade</b>
        </div>
        <form method="post" action="/-/login" class="stack pad8" id="login">
          <Csrf ctx={ctx} />
          <input type="hidden" name="next" value={next} />
          {error && <div class="error">{error}</div>}
          <label for="username">Username</label>
          <input type="text" id="username" name="username" autocomplete="username" required autofocus />
          <label for="password">Password</label>
          <input type="password" id="password" name="password" autocomplete="current-password" required />
          <button type="submit" class="primary">
            Sign in
          </button>
        </form>
      </div>
    </Layout>
  );
}

/** Create a repository. */
export function NewRepoPage({ ctx, flash }: { ctx: Ctx; flash?: Flash }) {
  return (
    <Layout ctx={ctx} title="New repository">
      <h1>New repository</h1>
      <FlashBox flash={flash} />
      <PostForm ctx={ctx} action="/-/new" class="stack box pad8" id="new-repo">
        <label for="name">Name (group/sub/name)</label>
        <input type="text" id="name" name="name" required />
        <label for="description">Description</label>
        <input type="text" id="description" name="description" />
        <label>
          <input type="checkbox" name="public" value="1" /> Public (anyone may read)
        </label>
        <p>
          <button type="submit" class="primary">
            Create repository
          </button>
        </p>
      </PostForm>
    </Layout>
  );
}

function SettingsNav({ tab }: { tab: 'identities' | 'ssh-keys' | 'vms' }) {
  return (
    <nav class="tabs">
      <a href="/-/settings/identities" class={tab === 'identities' ? 'on' : undefined}>
        Identities
      </a>
      <a href="/-/settings/ssh-keys" class={tab === 'ssh-keys' ? 'on' : undefined}>
        SSH keys
      </a>
      <a href="/-/settings/vms" class={tab === 'vms' ? 'on' : undefined}>
        VMs
      </a>
    </nav>
  );
}

/** The identities of one's account. */
export function IdentitiesPage({ ctx, identities, total, flash }: { ctx: Ctx; identities: { id: string; managed: boolean }[]; total: number; flash?: Flash }) {
  return (
    <Layout ctx={ctx} title="Identities">
      <h1>Your account</h1>
      <SettingsNav tab="identities" />
      <FlashBox flash={flash} />
      <p class="muted">Identities are what programs clone and push as: each holds access tokens and grants on repositories and VMs.</p>
      <PostForm ctx={ctx} action="/-/settings/identities" id="new-identity">
        <button type="submit" class="primary">
          New identity
        </button>
      </PostForm>
      <div class="box">
        <table class="list" id="identities">
          <tbody>
            {identities.length === 0 && (
              <tr>
                <td class="muted">No identities.</td>
              </tr>
            )}
            {identities.map((i) => (
              <tr>
                <td>
                  <a class="mono" href={`/-/settings/identities/${i.id}`}>
                    {i.id}
                  </a>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {total > identities.length && <p class="muted">{total - identities.length} more not shown.</p>}
    </Layout>
  );
}

/** One identity: tokens, git grants, VM grants. */
export function IdentityPage({
  ctx,
  id,
  tokens,
  git,
  vms,
  flash,
}: {
  ctx: Ctx;
  id: string;
  tokens: { id: string }[];
  git: { id: string; name: string | null; permissions: string }[];
  vms: VmPermission[];
  flash?: Flash;
}) {
  const base = `/-/settings/identities/${id}`;
  return (
    <Layout ctx={ctx} title={`Identity ${id}`}>
      <h1>
        Identity <span class="mono">{id}</span>
      </h1>
      <SettingsNav tab="identities" />
      <FlashBox flash={flash} />
      <div class="box">
        <div class="hd">
          <b>Access tokens</b>
          <span class="sp" />
          <PostForm ctx={ctx} action={`${base}/tokens`} class="inline" id="new-token">
            <button type="submit">New token</button>
          </PostForm>
        </div>
        <table class="list" id="tokens">
          <tbody>
            {tokens.map((t) => (
              <tr>
                <td class="mono">{t.id}</td>
                <td class="num">
                  <PostForm ctx={ctx} action={`${base}/tokens/${t.id}/revoke`} class="inline" confirm="Revoke this token? Programs using it lose access at once.">
                    <button type="submit" class="danger">
                      Revoke
                    </button>
                  </PostForm>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <div class="box">
        <div class="hd">
          <b>Git permissions</b>
        </div>
        <PostForm ctx={ctx} action={`${base}/git`} class="pad8" id="grant-git">
          <input type="text" name="repo" placeholder="repository name or id" required aria-label="Repository" />{' '}
          <select name="permission" aria-label="Access">
            <option value="read">read</option>
            <option value="write">write</option>
          </select>{' '}
          <button type="submit">Grant</button>
        </PostForm>
        <table class="list" id="git-grants">
          <tbody>
            {git.map((g) => (
              <tr>
                <td>{g.name ?? g.id}</td>
                <td>{g.permissions}</td>
                <td class="num">
                  <PostForm ctx={ctx} action={`${base}/git/${g.id}/revoke`} class="inline">
                    <button type="submit" class="danger">
                      Revoke
                    </button>
                  </PostForm>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <div class="box">
        <div class="hd">
          <b>VM permissions</b>
        </div>
        <PostForm ctx={ctx} action={`${base}/vm`} class="pad8">
          <input type="text" name="vm" placeholder="VM id" required aria-label="VM id" /> <input type="text" name="users" placeholder="Linux users, comma separated (empty: any)" aria-label="Allowed users" />{' '}
          <button type="submit">Grant</button>
        </PostForm>
        <table class="list">
          <tbody>
            {vms.map((g) => (
              <tr>
                <td class="mono">{g.vmId}</td>
                <td>{g.allowedUsers === null ? 'any user' : g.allowedUsers.join(', ')}</td>
                <td class="num">
                  <PostForm ctx={ctx} action={`${base}/vm/${encodeURIComponent(g.vmId)}/revoke`} class="inline">
                    <button type="submit" class="danger">
                      Revoke
                    </button>
                  </PostForm>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <PostForm ctx={ctx} action={`${base}/delete`} confirm="Delete this identity, its tokens and grants?">
        <button type="submit" class="danger">
          Delete identity
        </button>
      </PostForm>
    </Layout>
  );
}

/** One's own SSH keys. */
export function SshKeysPage({ ctx, keys, flash }: { ctx: Ctx; keys: SshKeyOut[]; flash?: Flash }) {
  return (
    <Layout ctx={ctx} title="SSH keys">
      <h1>Your account</h1>
      <SettingsNav tab="ssh-keys" />
      <FlashBox flash={flash} />
      <PostForm ctx={ctx} action="/-/settings/ssh-keys" class="stack box pad8">
        <label for="publicKey">Public key (one line of a .pub file)</label>
        <textarea id="publicKey" name="publicKey" required />
        <label for="title">Title</label>
        <input type="text" id="title" name="title" />
        <p>
          <button type="submit">Add key</button>
        </p>
      </PostForm>
      <div class="box">
        <table class="list">
          <tbody>
            {keys.map((k) => (
              <tr>
                <td>
                  <b>{k.title ?? ''}</b> <span class="mono">{k.fingerprint}</span>
                  <div class="muted">{formatDate(k.createdAt)}</div>
                </td>
                <td class="num">
                  <PostForm ctx={ctx} action={`/-/settings/ssh-keys/${k.id}/delete`} class="inline">
                    <button type="submit" class="danger">
                      Delete
                    </button>
                  </PostForm>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </Layout>
  );
}

/** One's VMs (an admin's: every account's). */
export function VmsPage({ ctx, vms, flash }: { ctx: Ctx; vms: VmOut[]; flash?: Flash }) {
  return (
    <Layout ctx={ctx} title="VMs">
      <h1>Your account</h1>
      <SettingsNav tab="vms" />
      <FlashBox flash={flash} />
      <PostForm ctx={ctx} action="/-/settings/vms" class="stack box pad8">
        <label for="vmname">Name</label>
        <input type="text" id="vmname" name="name" />
        <label for="host">Host</label>
        <input type="text" id="host" name="host" required />
        <label for="port">Port</label>
        <input type="text" id="port" name="port" value="22" />
        <label for="defaultUser">Default Linux user</label>
        <input type="text" id="defaultUser" name="defaultUser" value="root" />
        <label for="hostKey">Host key (ssh-keyscan line without the host)</label>
        <textarea id="hostKey" name="hostKey" required />
        <p>
          <button type="submit">Register VM</button>
        </p>
      </PostForm>
      <div class="box">
        <table class="list">
          <tbody>
            {vms.map((v) => (
              <tr>
                <td>
                  <b>{v.name ?? ''}</b> <span class="mono">{v.id}</span>
                  <div class="muted">
                    {v.defaultUser}@{v.host}:{v.port}
                  </div>
                </td>
                <td class="num">
                  <PostForm ctx={ctx} action={`/-/settings/vms/${v.id}/delete`} class="inline" confirm="Remove this VM from the registry?">
                    <button type="submit" class="danger">
                      Delete
                    </button>
                  </PostForm>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </Layout>
  );
}
