import type { Generated } from 'kysely';

/** Row types of the metadata database. Booleans are 0/1 integers (portable to PostgreSQL). */
export interface UsersTable {
  id: string;
  username: string;
  /** lower-cased username: the unique key, so `Alice` and `alice` cannot both exist */
  username_key: string;
  email: string | null;
  firstname: string | null;
  lastname: string | null;
  active: number;
  admin: number;
  password_hash: string | null;
  /** the managed identity that backs this user; its tokens are the user's API keys */
  identity_id: string;
  created_at: string;
  ldap_dn: string | null;
}

export interface IdentitiesTable {
  id: string;
  /** the user (account) that owns this identity */
  account_id: string;
  managed: number;
  created_at: string;
}

export interface TokensTable {
  id: string;
  identity_id: string;
  token_hash: string;
  created_at: string;
  /** a label the creator chose */
  name: string | null;
  /** RFC 3339; null: never expires */
  expires_at: string | null;
  /** written at most once a minute per token */
  last_used_at: string | null;
}

export interface RepositoriesTable {
  id: string;
  name: string | null;
  owner_id: string;
  visibility: 'public' | 'private';
  default_branch: string;
  description: string | null;
  upstream_url: string | null;
  created_at: string;
  group_id: string | null;
  /** `git` or `hg`, fixed at creation */
  type: 'git' | 'hg';
  /** JSON array of branch patterns (`main`, `release/*`) no principal below admin may force-push or delete; null: none */
  protected_branches: string | null;
}

export interface IdentityRepoGrantsTable {
  identity_id: string;
  repo_id: string;
  access: 'read' | 'write';
  created_at: string;
  /** JSON `{allow, deny, forcePush, deleteRefs}`; null: no ref rules (every ref, force and deletion allowed) */
  ref_rules: string | null;
}

export interface VmGrantsTable {
  id: string;
  identity_id: string;
  vm_id: string;
  /** JSON array of Linux user names, or null for any user */
  allowed_users: string | null;
  granted_at: string;
  granted_by: string;
  seq: Generated<number>;
}

export interface UsersGroupsTable {
  id: string;
  name: string;
  /** lower-cased name: the unique key */
  name_key: string;
  active: number;
  created_at: string;
}

export interface UsersGroupMembersTable {
  id: string;
  group_id: string;
  user_id: string;
  created_at: string;
}

export interface RepoGroupsTable {
  id: string;
  name: string;
  parent_id: string | null;
  created_at: string;
}

/** `repository.*` grants as the ordered level: 0 none, 1 read, 2 write, 3 admin. */
export interface UserRepoGrantsTable {
  user_id: string;
  repo_id: string;
  level: number;
  created_at: string;
}

export interface GroupRepoGrantsTable {
  group_id: string;
  repo_id: string;
  level: number;
  created_at: string;
}

export interface TriggersTable {
  id: string;
  repo_id: string;
  event: string;
  /** JSON array or null */
  branches: string | null;
  /** JSON array or null */
  globs: string | null;
  endpoint: string;
  created_by: string;
  created_at: string;
}

export interface DeliveriesTable {
  id: string;
  trigger_id: string;
  payload: string;
  /** pending | delivered | failed */
  status: string;
  attempts: number;
  next_attempt_at: string;
  last_error: string | null;
  last_status_code: number | null;
  created_at: string;
  delivered_at: string | null;
  /** the node delivering this attempt, until `lease_expires_at` (null: unclaimed) */
  lease_owner: string | null;
  lease_expires_at: string | null;
}

export interface RepoSyncTable {
  repo_id: string;
  /** what the caller gave: "owner/repo" or a git URL */
  remote_name: string;
  remote_url: string;
  created_at: string;
  last_synced_at: string | null;
  last_error: string | null;
  /** JSON {branch: oid} of the tips both sides had after the last sync */
  last_state: string | null;
  /** the node running a sync of this repository, until `lease_expires_at` (null: none) */
  lease_owner: string | null;
  lease_expires_at: string | null;
}

/** A periodic job that belongs to no other row (a repository's gc, the pack cache's cleanup), claimed by name. */
export interface JobsTable {
  name: string;
  lease_owner: string | null;
  lease_expires_at: string | null;
  last_run_at: string | null;
}

export interface SshKeysTable {
  id: string;
  /** the identity the key authenticates as (a user's keys: the user's managed identity) */
  identity_id: string;
  /** `SHA256:<base64, no padding>` of the key blob, as OpenSSH prints it; unique */
  fingerprint: string;
  key_type: string;
  /** `<type> <base64>`, without a comment */
  public_key: string;
  title: string | null;
  created_at: string;
}

export interface VmsTable {
  id: string;
  /** the account (user) that registered the VM */
  account_id: string;
  name: string | null;
  host: string;
  port: number;
  default_user: string;
  /** the VM's OpenSSH public host key line (`<type> <base64>`) */
  host_key: string;
  created_at: string;
}

/** Web sign-in sessions: the cookie's secret is stored only as its SHA-256. */
export interface WebSessionsTable {
  id: string;
  token_hash: string;
  user_id: string;
  created_at: string;
  last_seen_at: string;
  expires_at: string;
}

/** One record of the audit log: who did what to what, with what outcome; never a secret. */
export interface AuditLogTable {
  seq: Generated<number>;
  id: string;
  at: string;
  /** user | identity | anonymous | system | server */
  actor_kind: string;
  actor_id: string | null;
  /** a username (users), the identity id (identities) */
  actor_name: string | null;
  /** e.g. token.create, grant.git, access.denied */
  action: string;
  /** repo | identity | token | user | group | vm | server */
  target_kind: string;
  target_id: string | null;
  target_name: string | null;
  /** ok | denied */
  outcome: string;
  /** JSON: the facts of a denial, the fields of a change */
  detail: string | null;
}

export interface DB {
  users: UsersTable;
  identities: IdentitiesTable;
  tokens: TokensTable;
  repositories: RepositoriesTable;
  identity_repo_grants: IdentityRepoGrantsTable;
  vm_grants: VmGrantsTable;
  users_groups: UsersGroupsTable;
  users_group_members: UsersGroupMembersTable;
  repo_groups: RepoGroupsTable;
  user_repo_grants: UserRepoGrantsTable;
  group_repo_grants: GroupRepoGrantsTable;
  triggers: TriggersTable;
  deliveries: DeliveriesTable;
  repo_sync: RepoSyncTable;
  ssh_keys: SshKeysTable;
  vms: VmsTable;
  web_sessions: WebSessionsTable;
  audit_log: AuditLogTable;
  jobs: JobsTable;
}
