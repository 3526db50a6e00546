import Type from 'typebox';
import { LINUX_USER_PATTERN } from '../../domain/validate.ts';
import { BoolQuery, Empty, errorResponses, Nullable, Paging } from '../common-schemas.ts';
import * as V1 from '../identity/schemas.ts';
import { CreatedToken, NewTokenBody, TokenInfo } from '../token-schemas.ts';

/**
 * Schemas of `/v5/identities`, shaped exactly as the `freestyle` SDK (0.2.17,
 * `src/identities.ts`) reads them: bare arrays for tokens and VM permissions, `allowedLinuxUsers`,
 * `{identities, total}`. The git permission routes (Palisade's, for ref rules) keep v1's shapes.
 */

const LinuxUsers = Nullable(Type.Array(Type.String({ pattern: LINUX_USER_PATTERN, title: 'allowedLinuxUsers entry' }), { maxItems: 256, description: 'Linux users the identity may log in as; null: any' }));

const VmPermission = Type.Object({
  id: Type.String(),
  identityId: Type.String(),
  vmId: Type.String(),
  allowedLinuxUsers: Nullable(Type.Array(Type.String())),
  grantedAt: Type.String(),
  grantedBy: Type.String(),
});

const ok = <T>(schema: T) => ({ 200: schema, ...errorResponses });

export const createIdentity = {
  summary: 'Create an identity (`managed: true`: it cannot be deleted or changed through the API)',
  body: Type.Object({ managed: Type.Optional(Nullable(Type.Boolean())) }, { additionalProperties: false }),
  response: ok(V1.Identity),
};
export const listIdentities = {
  summary: 'List identities',
  querystring: Type.Object({ ...Paging(1000, 100), includeManaged: Type.Optional(BoolQuery('Include managed identities')) }, { additionalProperties: false }),
  response: ok(Type.Object({ identities: Type.Array(V1.Identity), total: Type.Integer() })),
};
export const getIdentity = { summary: 'An identity', params: V1.IdentityParams, response: ok(V1.IdentityInfo) };
export const deleteIdentity = { summary: 'Delete an identity with its tokens and grants (not a managed one)', params: V1.IdentityParams, response: ok(Empty) };

export const createToken = { summary: 'Mint an access token (shown once), optionally named and expiring', params: V1.IdentityParams, body: NewTokenBody, response: ok(CreatedToken) };
export const listTokens = { summary: "An identity's access tokens (never their secrets)", params: V1.IdentityParams, response: ok(Type.Array(TokenInfo)) };
export const revokeToken = { summary: 'Revoke an access token', params: V1.TokenParams, response: ok(Empty) };

export const listVmPermissions = {
  summary: 'The VMs this identity may reach',
  params: V1.IdentityParams,
  querystring: Type.Object(Paging(1000, 1000), { additionalProperties: false }),
  response: ok(Type.Array(VmPermission)),
};
export const grantVm = {
  summary: 'Grant access to a VM (409 if a grant exists)',
  params: V1.IdentityParams,
  body: Type.Object({ vmId: V1.VmId, allowedLinuxUsers: Type.Optional(LinuxUsers) }, { additionalProperties: false }),
  response: ok(VmPermission),
};
export const getVm = { summary: "This identity's grant on a VM", params: V1.VmParams, response: ok(VmPermission) };
export const updateVm = {
  summary: 'Change the Linux users of a VM grant',
  params: V1.VmParams,
  body: Type.Object({ allowedLinuxUsers: LinuxUsers }, { additionalProperties: false }),
  response: ok(VmPermission),
};
export const revokeVm = { summary: 'Revoke access to a VM', params: V1.VmParams, response: ok(Empty) };

export const listGitPermissions = { ...V1.listGitPermissions, summary: 'The repositories this identity may access (v1 shape)' };
export const describeGitPermission = V1.describeGitPermission;
export const explainGit = V1.explainGit;
export const grantGit = { ...V1.grantGit, summary: 'Grant git access, with optional ref rules (409 if a grant exists)' };
export const updateGit = { ...V1.updateGit, summary: 'Replace git access and its ref rules' };
export const revokeGit = V1.revokeGit;
