import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Users } from '../../services/users.ts';
import type { Vms } from '../../services/vms.ts';
import { authenticateEarly, restPrincipal } from '../credentials.ts';
import { registerJsonParser, restErrorHandler } from '../rest-errors.ts';
import { registerRestValidation } from '../validation.ts';
import * as S from './schemas.ts';

export interface VmDeps {
  users: Users;
  vms: Vms;
}

/** The VM registry under /vm/v1 (Bearer API key), and the gateway's key for VMs to install. */
export async function vmRoutes(fastify: FastifyInstance, deps: VmDeps): Promise<void> {
  registerJsonParser(fastify);
  registerRestValidation(fastify);
  fastify.setErrorHandler(restErrorHandler);
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { users, vms } = deps;
  authenticateEarly(fastify, users);
  const who = (req: FastifyRequest) => req.principal ?? restPrincipal(req, users);

  app.post('/vms', { schema: S.createVm }, async (req) => vms.create(await who(req), req.body));
  app.get('/vms', { schema: S.listVms }, async (req) => vms.list(await who(req), req.query));
  app.get('/vms/:vm', { schema: S.getVm }, async (req) => vms.get(await who(req), req.params.vm));
  app.patch('/vms/:vm', { schema: S.updateVm }, async (req) => vms.update(await who(req), req.params.vm, req.body));
  app.delete('/vms/:vm', { schema: S.deleteVm }, async (req) => {
    await vms.delete(await who(req), req.params.vm);
    return {};
  });
  app.get('/gateway-key', { schema: S.gatewayKey }, async (req) => vms.gatewayKeyFor(await who(req)));
}
