import type { FastifyInstance, FastifyRequest } from 'fastify';
import { parseIdentityAccess } from '../../domain/access.ts';
import { invalid } from '../../domain/errors.ts';
import { boolParam } from '../../domain/validate.ts';
import type { Identities } from '../../services/identities.ts';
import type { Users } from '../../services/users.ts';
import { restPrincipal } from '../credentials.ts';
import { objectBody, registerJsonParser, restErrorHandler } from '../rest-errors.ts';

export interface IdentityDeps {
  users: Users;
  identities: Identities;
}

type Params = { identity: string; repo: string; vm_id: string; token: string };
type Query = { limit?: string; offset?: string; include_managed?: string; includeManaged?: string };


const body = objectBody;

function permissionFrom(req: FastifyRequest) {
  const b = body(req);
  const a = parseIdentityAccess(b.permission ?? b.accessLevel);
  if (!a) throw invalid('permission must be "read" or "write"');
  return a;
}

/** The Freestyle Identity API (seed 000), all 16 endpoints, under /identity/v1. */
export async function identityRoutes(app: FastifyInstance, deps: IdentityDeps): Promise<void> {
  registerJsonParser(app);
  app.setErrorHandler(restErrorHandler);
  const { users, identities } = deps;
  const who = (req: FastifyRequest) => restPrincipal(req, users);
  const p = (req: FastifyRequest) => req.params as Params;
  const q = (req: FastifyRequest) => req.query as Query;

  app.post('/identities', async (req) => identities.create(await who(req)));
  app.get('/identities', async (req) => {
    const query = q(req);
    const includeManaged = boolParam(query.include_managed, 'include_managed') ?? boolParam(query.includeManaged, 'includeManaged') ?? false;
    return identities.list(await who(req), { limit: query.limit, offset: query.offset, includeManaged });
  });
  app.delete('/identities/:identity', async (req) => {
    await identities.delete(await who(req), p(req).identity);
    return {};
  });

  app.post('/identities/:identity/tokens', async (req) => identities.createToken(await who(req), p(req).identity));
  app.get('/identities/:identity/tokens', async (req) => identities.listTokens(await who(req), p(req).identity));
  app.delete('/identities/:identity/tokens/:token', async (req) => {
    await identities.revokeToken(await who(req), p(req).identity, p(req).token);
    return {};
  });

  app.get('/identities/:identity/permissions/git', async (req) => identities.listGitPermissions(await who(req), p(req).identity, q(req)));
  app.get('/identities/:identity/permissions/git/:repo', async (req) => identities.describeGitPermission(await who(req), p(req).identity, p(req).repo));
  app.post('/identities/:identity/permissions/git/:repo', async (req) => {
    const access = permissionFrom(req);
    await identities.grantGit(await who(req), p(req).identity, p(req).repo, access);
    return {};
  });
  app.put('/identities/:identity/permissions/git/:repo', async (req) => {
    const access = permissionFrom(req);
    await identities.updateGit(await who(req), p(req).identity, p(req).repo, access);
    return {};
  });
  app.delete('/identities/:identity/permissions/git/:repo', async (req) => {
    await identities.revokeGit(await who(req), p(req).identity, p(req).repo);
    return {};
  });

  app.get('/identities/:identity/permissions/vm', async (req) => identities.listVmPermissions(await who(req), p(req).identity, q(req)));
  app.get('/identities/:identity/permissions/vm/:vm_id', async (req) => identities.describeVmPermission(await who(req), p(req).identity, p(req).vm_id));
  app.post('/identities/:identity/permissions/vm/:vm_id', async (req) => {
    const b = body(req);
    return identities.grantVm(await who(req), p(req).identity, p(req).vm_id, b.allowedUsers);
  });
  app.put('/identities/:identity/permissions/vm/:vm_id', async (req) => {
    const b = body(req);
    return identities.updateVm(await who(req), p(req).identity, p(req).vm_id, b.allowedUsers);
  });
  app.delete('/identities/:identity/permissions/vm/:vm_id', async (req) => {
    await identities.revokeVm(await who(req), p(req).identity, p(req).vm_id);
    return {};
  });
}
