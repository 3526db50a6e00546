import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Identities, VmPermission } from '../../services/identities.ts';
import type { Users } from '../../services/users.ts';
import { queryBool } from '../common-schemas.ts';
import { authenticateEarly, restPrincipal } from '../credentials.ts';
import { permissionFrom } from '../identity/routes.ts';
import { registerJsonParser, restErrorHandler } from '../rest-errors.ts';
import { registerRestValidation } from '../validation.ts';
import * as S from './schemas.ts';

export interface IdentityV5Deps {
  users: Users;
  identities: Identities;
}

/** A VM grant in the current SDK's spelling. */
const vmOut = (v: VmPermission) => ({ id: v.id, identityId: v.identityId, vmId: v.vmId, allowedLinuxUsers: v.allowedUsers, grantedAt: v.grantedAt, grantedBy: v.grantedBy });

/**
 * `/v5/identities` as the `freestyle` SDK (0.2.17) calls it: thin codecs over the same
 * `Identities` calls as `/identity/v1`, so both surfaces see the same identities, tokens and
 * grants. Credentials: `Authorization: Bearer <API key>`, or the SDK's identityAccessToken mode
 * (`x-freestyle-identity-access-token`), which reads only the identity itself. The SDK's
 * `x-freestyle-background-after-secs` is accepted and ignored: every call answers inline,
 * never 202.
 */
export async function identityV5Routes(fastify: FastifyInstance, deps: IdentityV5Deps): Promise<void> {
  registerJsonParser(fastify);
  registerRestValidation(fastify);
  fastify.setErrorHandler(restErrorHandler);
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { users, identities } = deps;
  authenticateEarly(fastify, users);
  const who = (req: FastifyRequest) => req.principal ?? restPrincipal(req, users);

  app.post('/identities', { schema: S.createIdentity }, async (req) => identities.create(await who(req), { managed: req.body.managed }));
  app.get('/identities', { schema: S.listIdentities }, async (req) => {
    const { identities: list, total } = await identities.list(await who(req), { limit: req.query.limit, offset: req.query.offset, includeManaged: queryBool(req.query.includeManaged) ?? false });
    return { identities: list, total };
  });
  app.get('/identities/:identity', { schema: S.getIdentity }, async (req) => identities.get(await who(req), req.params.identity));
  app.delete('/identities/:identity', { schema: S.deleteIdentity }, async (req) => {
    await identities.delete(await who(req), req.params.identity);
    return {};
  });

  app.post('/identities/:identity/tokens', { schema: S.createToken }, async (req) => identities.createToken(await who(req), req.params.identity, req.body));
  app.get('/identities/:identity/tokens', { schema: S.listTokens }, async (req) => (await identities.listTokens(await who(req), req.params.identity)).tokens);
  app.delete('/identities/:identity/tokens/:token', { schema: S.revokeToken }, async (req) => {
    await identities.revokeToken(await who(req), req.params.identity, req.params.token);
    return {};
  });

  app.get('/identities/:identity/permissions/vm', { schema: S.listVmPermissions }, async (req) => (await identities.listVmPermissions(await who(req), req.params.identity, { limit: req.query.limit ?? 1000, offset: req.query.offset })).permissions.map(vmOut));
  app.post('/identities/:identity/permissions/vm', { schema: S.grantVm }, async (req) => vmOut(await identities.grantVm(await who(req), req.params.identity, req.body.vmId, req.body.allowedLinuxUsers)));
  app.get('/identities/:identity/permissions/vm/:vm_id', { schema: S.getVm }, async (req) => vmOut(await identities.describeVmPermission(await who(req), req.params.identity, req.params.vm_id)));
  app.patch('/identities/:identity/permissions/vm/:vm_id', { schema: S.updateVm }, async (req) => vmOut(await identities.updateVm(await who(req), req.params.identity, req.params.vm_id, req.body.allowedLinuxUsers)));
  app.delete('/identities/:identity/permissions/vm/:vm_id', { schema: S.revokeVm }, async (req) => {
    await identities.revokeVm(await who(req), req.params.identity, req.params.vm_id);
    return {};
  });

  // git grants with ref rules: Palisade's, in v1's shapes (the SDK has no git namespace here)
  app.get('/identities/:identity/permissions/git', { schema: S.listGitPermissions }, async (req) => identities.listGitPermissions(await who(req), req.params.identity, req.query));
  app.get('/identities/:identity/permissions/git/:repo', { schema: S.describeGitPermission }, async (req) => identities.describeGitPermission(await who(req), req.params.identity, req.params.repo));
  app.get('/identities/:identity/permissions/git/:repo/explain', { schema: S.explainGit }, async (req) => identities.explainGit(await who(req), req.params.identity, req.params.repo, req.query));
  app.post('/identities/:identity/permissions/git/:repo', { schema: S.grantGit }, async (req) => {
    await identities.grantGit(await who(req), req.params.identity, req.params.repo, permissionFrom(req.body), req.body.refs);
    return {};
  });
  app.put('/identities/:identity/permissions/git/:repo', { schema: S.updateGit }, async (req) => {
    await identities.updateGit(await who(req), req.params.identity, req.params.repo, permissionFrom(req.body), req.body.refs);
    return {};
  });
  app.delete('/identities/:identity/permissions/git/:repo', { schema: S.revokeGit }, async (req) => {
    await identities.revokeGit(await who(req), req.params.identity, req.params.repo);
    return {};
  });
}
