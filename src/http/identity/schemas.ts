import Type from 'typebox';
import { LINUX_USER_PATTERN, VM_ID_PATTERN } from '../../domain/validate.ts';
import { BoolQuery, Empty, Enum, errorResponses, Nullable, Paging, RepoRef, Str, Uuid } from '../common-schemas.ts';
import { NewSshKeyBody, SshKey, SshKeyId, SshKeyList } from '../ssh-key-schemas.ts';
import { CreatedToken, Fact, NewTokenBody, TokenInfo } from '../token-schemas.ts';

/**
 * Schemas of the Identity API (Freestyle's IdentityApi, seed 000), shaped as the
 * `freestyle-sandboxes` SDK types them. What an id means (does it exist, may the caller see
 * it) is for the services; these check shapes.
 */

export const IdentityId = Uuid('identity id', 'Identity id');
const Access = Enum(['read', 'write']);
const AccessLevel = Enum(['read', 'write'], 'Older name of `permission`');
export const VmId = Type.String({ pattern: VM_ID_PATTERN, title: 'VM id', description: 'VM id: 1-128 of A-Z a-z 0-9 . _ -' });

export const IdentityParams = Type.Object({ identity: IdentityId });
export const TokenParams = Type.Object({ identity: IdentityId, token: Uuid('token id', 'Access token id') });
export const GitParams = Type.Object({ identity: IdentityId, repo: RepoRef() });
export const VmParams = Type.Object({ identity: IdentityId, vm_id: VmId });
const SshKeyParams = Type.Object({ identity: IdentityId, key: SshKeyId });

export const Identity = Type.Object({ id: Type.String(), managed: Type.Boolean() });
export const IdentityInfo = Type.Object({ id: Type.String(), accountId: Type.String(), managed: Type.Boolean() });

const RefPattern = Str(255, { minLength: 1, title: 'ref pattern', description: 'A full ref name under refs/; `*` matches any characters, `/` included' });
/** Ref rules on a write grant. */
export const RefRules = Type.Object(
  {
    allow: Type.Array(RefPattern, { maxItems: 100, description: 'The refs the identity may move, e.g. `refs/heads/agents/*`' }),
    deny: Type.Optional(Nullable(Type.Array(RefPattern, { maxItems: 100, description: 'Refs it may not move even when allowed' }))),
    forcePush: Type.Optional(Nullable(Type.Boolean({ description: 'May move a ref to a commit that does not descend from the old one (default false)' }))),
    deleteRefs: Type.Optional(Nullable(Type.Boolean({ description: 'May delete refs (default false)' }))),
  },
  { additionalProperties: false, title: 'refs', description: 'Ref rules (write grants only); absent: every ref, force pushes and deletions allowed' },
);
const RefRulesOut = Nullable(Type.Object({ allow: Type.Array(Type.String()), deny: Type.Array(Type.String()), forcePush: Type.Boolean(), deleteRefs: Type.Boolean() }));
const VmPermission = Type.Object({
  id: Type.String(),
  vmId: Type.String(),
  identityId: Type.String(),
  allowedUsers: Nullable(Type.Array(Type.String())),
  grantedAt: Type.String(),
  grantedBy: Type.String(),
});

const PagingQuery = Type.Object(Paging(1000, 100), { additionalProperties: false });

const PermissionBody = Type.Object(
  {
    permission: Type.Optional(Access),
    accessLevel: Type.Optional(AccessLevel),
    refs: Type.Optional(Nullable(RefRules)),
  },
  { additionalProperties: false, description: '`permission` is required (or its older name `accessLevel`); `refs` limits a write grant to some refs' },
);

const VmGrantBody = Type.Object(
  {
    allowedUsers: Type.Optional(Nullable(Type.Array(Type.String({ pattern: LINUX_USER_PATTERN, title: 'allowedUsers entry' }), { maxItems: 256, description: 'Linux users the identity may log in as; null: any' }))),
  },
  { additionalProperties: false },
);

const ok = <T>(schema: T) => ({ 200: schema, ...errorResponses });

export const createIdentity = { summary: 'Create an identity', response: ok(Identity) };
export const getIdentity = { summary: 'An identity: id, account, managed (its account, admins, or the identity itself)', params: IdentityParams, response: ok(IdentityInfo) };
export const listIdentities = {
  summary: 'List identities',
  querystring: Type.Object(
    {
      ...Paging(1000, 100),
      include_managed: Type.Optional(BoolQuery('Include managed identities (those backing users)')),
      includeManaged: Type.Optional(BoolQuery('Same as include_managed')),
    },
    { additionalProperties: false },
  ),
  response: ok(Type.Object({ identities: Type.Array(Identity), offset: Type.Integer(), total: Type.Integer() })),
};
export const deleteIdentity = { summary: 'Delete an identity (its tokens and grants go with it)', params: IdentityParams, response: ok(Empty) };

export const createToken = { summary: 'Issue an access token (shown once), optionally named and expiring', params: IdentityParams, body: NewTokenBody, response: ok(CreatedToken) };
export const listTokens = { summary: 'List access tokens (never their secrets)', params: IdentityParams, response: ok(Type.Object({ tokens: Type.Array(TokenInfo) })) };
export const revokeToken = { summary: 'Revoke an access token', params: TokenParams, response: ok(Empty) };

export const listGitPermissions = {
  summary: 'List the repositories an identity may access',
  params: IdentityParams,
  querystring: PagingQuery,
  response: ok(
    Type.Object({
      repositories: Type.Array(Type.Object({ id: Type.String(), name: Nullable(Type.String()), accountId: Type.String(), permissions: Access, visibility: Enum(['public', 'private']), refs: RefRulesOut })),
      offset: Type.Integer(),
      total: Type.Integer(),
    }),
  ),
};
export const describeGitPermission = {
  summary: "An identity's access to one repository",
  params: GitParams,
  response: ok(Type.Object({ identity: Type.String(), repo: Type.String(), accessLevel: Nullable(Access), refs: RefRulesOut })),
};
export const explainGit = {
  summary: "Why an identity holds what it holds on a repository: the level and the decision's facts in order; with `ref`, the decision on moving it",
  params: GitParams,
  querystring: Type.Object(
    {
      ref: Type.Optional(Str(255, { title: 'ref', description: 'A full ref name, e.g. refs/heads/main' })),
      operation: Type.Optional(Enum(['create', 'update', 'delete'], 'What would happen to `ref` (default update)')),
    },
    { additionalProperties: false },
  ),
  response: ok(
    Type.Object({
      identity: Type.String(),
      repo: Type.String(),
      level: Enum(['none', 'read', 'write', 'admin']),
      tokens: Type.Object({ live: Type.Integer(), expired: Type.Integer() }, { description: "The identity's tokens that work now, and those that expired" }),
      facts: Type.Array(Fact),
      ref: Type.Optional(
        Type.Object({
          ref: Type.String(),
          operation: Type.String(),
          allowed: Type.Boolean(),
          fastForwardOnly: Type.Boolean({ description: 'Allowed only if the new commit descends from the old one' }),
          reason: Nullable(Type.String()),
          facts: Type.Array(Fact),
        }),
      ),
    }),
  ),
};
export const grantGit = { summary: 'Grant git access (409 if a grant exists)', params: GitParams, body: PermissionBody, response: ok(Empty) };
export const updateGit = { summary: 'Change git access', params: GitParams, body: PermissionBody, response: ok(Empty) };
export const revokeGit = { summary: 'Revoke git access', params: GitParams, response: ok(Empty) };

export const listVmPermissions = {
  summary: "List an identity's VM permissions",
  params: IdentityParams,
  querystring: PagingQuery,
  response: ok(Type.Object({ permissions: Type.Array(VmPermission), offset: Type.Integer(), total: Type.Integer() })),
};
export const describeVmPermission = { summary: 'One VM permission', params: VmParams, response: ok(VmPermission) };
export const grantVm = { summary: 'Grant VM access (409 if a grant exists)', params: VmParams, body: VmGrantBody, response: ok(VmPermission) };
export const updateVm = { summary: 'Change the Linux users of a VM permission', params: VmParams, body: VmGrantBody, response: ok(VmPermission) };
export const revokeVm = { summary: 'Revoke VM access', params: VmParams, response: ok(Empty) };

export const listSshKeys = { summary: "List an identity's SSH public keys", params: IdentityParams, response: ok(SshKeyList) };
export const addSshKey = {
  summary: 'Register an SSH public key (400: malformed, private, DSA or RSA < 2048; 409: registered anywhere already; 403: a managed identity, whose keys are its user\'s)',
  params: IdentityParams,
  body: NewSshKeyBody,
  response: ok(SshKey),
};
export const deleteSshKey = { summary: 'Remove an SSH public key', params: SshKeyParams, response: ok(Empty) };
