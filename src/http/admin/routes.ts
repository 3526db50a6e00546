import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AuditQueries } from '../../services/audit.ts';
import type { Users } from '../../services/users.ts';
import { authenticateEarly, restPrincipal } from '../credentials.ts';
import { registerJsonParser, restErrorHandler } from '../rest-errors.ts';
import { registerRestValidation } from '../validation.ts';
import * as S from './schemas.ts';

export interface AdminDeps {
  users: Users;
  audit: AuditQueries;
}

/** The admin API under /admin/v1 (an admin's Bearer API key): the audit log. */
export async function adminRoutes(fastify: FastifyInstance, deps: AdminDeps): Promise<void> {
  registerJsonParser(fastify);
  registerRestValidation(fastify);
  fastify.setErrorHandler(restErrorHandler);
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  authenticateEarly(fastify, deps.users);
  const who = (req: FastifyRequest) => req.principal ?? restPrincipal(req, deps.users);

  app.get('/audit', { schema: S.listAudit }, async (req) => deps.audit.list(await who(req), req.query));
}
