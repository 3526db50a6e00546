import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { parseIdentityAccess } from '../../domain/access.ts';
import { invalid } from '../../domain/errors.ts';
import type { Identities } from '../../services/identities.ts';
import type { SshKeys } from '../../services/ssh-keys.ts';
import type { Users } from '../../services/users.ts';
import { queryBool } from '../common-schemas.ts';
import { authenticateEarly, restPrincipal } from '../credentials.ts';
import { registerJsonParser, restErrorHandler } from '../rest-errors.ts';
import { registerRestValidation } from '../validation.ts';
import * as S from './schemas.ts';

export interface IdentityDeps {
  users: Users;
  identities: Identities;
  sshKeys: SshKeys;
}

/** `permission`, or its older name `accessLevel`: one of them is required. */
export function permissionFrom(b: { permission?: string; accessLevel?: string }) {
  const a = parseIdentityAccess(b.permission ?? b.accessLevel);
  if (!a) throw invalid('permission must be "read" or "write"');
  return a;
}

/** The Freestyle Identity API (seed 000), all 16 endpoints, Palisade's additions (one identity, explain) and identities' SSH keys, under /identity/v1; schemas in schemas.ts. */
export async function identityRoutes(fastify: FastifyInstance, deps: IdentityDeps): Promise<void> {
  registerJsonParser(fastify);
  registerRestValidation(fastify);
  fastify.setErrorHandler(restErrorHandler);
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { users, identities, sshKeys } = deps;
  authenticateEarly(fastify, users);
  const who = (req: FastifyRequest) => req.principal ?? restPrincipal(req, users);

  app.post('/identities', { schema: S.createIdentity }, async (req) => identities.create(await who(req)));
  app.get('/identities', { schema: S.listIdentities }, async (req) => {
    const { limit, offset, include_managed, includeManaged } = req.query;
    return identities.list(await who(req), { limit, offset, includeManaged: queryBool(include_managed) ?? queryBool(includeManaged) ?? false });
  });
  app.get('/identities/:identity', { schema: S.getIdentity }, async (req) => identities.get(await who(req), req.params.identity));
  app.delete('/identities/:identity', { schema: S.deleteIdentity }, async (req) => {
    await identities.delete(await who(req), req.params.identity);
    return {};
  });

  app.post('/identities/:identity/tokens', { schema: S.createToken }, async (req) => identities.createToken(await who(req), req.params.identity, req.body));
  app.get('/identities/:identity/tokens', { schema: S.listTokens }, async (req) => identities.listTokens(await who(req), req.params.identity));
  app.delete('/identities/:identity/tokens/:token', { schema: S.revokeToken }, async (req) => {
    await identities.revokeToken(await who(req), req.params.identity, req.params.token);
    return {};
  });

  app.get('/identities/:identity/permissions/git', { schema: S.listGitPermissions }, async (req) => identities.listGitPermissions(await who(req), req.params.identity, req.query));
  app.get('/identities/:identity/permissions/git/:repo', { schema: S.describeGitPermission }, async (req) => identities.describeGitPermission(await who(req), req.params.identity, req.params.repo));
  app.get('/identities/:identity/permissions/git/:repo/explain', { schema: S.explainGit }, async (req) => identities.explainGit(await who(req), req.params.identity, req.params.repo, req.query));
  app.post('/identities/:identity/permissions/git/:repo', { schema: S.grantGit }, async (req) => {
    const access = permissionFrom(req.body);
    await identities.grantGit(await who(req), req.params.identity, req.params.repo, access, req.body.refs);
    return {};
  });
  app.put('/identities/:identity/permissions/git/:repo', { schema: S.updateGit }, async (req) => {
    const access = permissionFrom(req.body);
    await identities.updateGit(await who(req), req.params.identity, req.params.repo, access, req.body.refs);
    return {};
  });
  app.delete('/identities/:identity/permissions/git/:repo', { schema: S.revokeGit }, async (req) => {
    await identities.revokeGit(await who(req), req.params.identity, req.params.repo);
    return {};
  });

  app.get('/identities/:identity/permissions/vm', { schema: S.listVmPermissions }, async (req) => identities.listVmPermissions(await who(req), req.params.identity, req.query));
  app.get('/identities/:identity/permissions/vm/:vm_id', { schema: S.describeVmPermission }, async (req) => identities.describeVmPermission(await who(req), req.params.identity, req.params.vm_id));
  app.post('/identities/:identity/permissions/vm/:vm_id', { schema: S.grantVm }, async (req) => identities.grantVm(await who(req), req.params.identity, req.params.vm_id, req.body.allowedUsers));
  app.put('/identities/:identity/permissions/vm/:vm_id', { schema: S.updateVm }, async (req) => identities.updateVm(await who(req), req.params.identity, req.params.vm_id, req.body.allowedUsers));
  app.delete('/identities/:identity/permissions/vm/:vm_id', { schema: S.revokeVm }, async (req) => {
    await identities.revokeVm(await who(req), req.params.identity, req.params.vm_id);
    return {};
  });

  app.get('/identities/:identity/ssh-keys', { schema: S.listSshKeys }, async (req) => sshKeys.listForIdentity(await who(req), req.params.identity));
  app.post('/identities/:identity/ssh-keys', { schema: S.addSshKey }, async (req) => sshKeys.addToIdentity(await who(req), req.params.identity, req.body));
  app.delete('/identities/:identity/ssh-keys/:key', { schema: S.deleteSshKey }, async (req) => {
    await sshKeys.deleteFromIdentity(await who(req), req.params.identity, req.params.key);
    return {};
  });
}
