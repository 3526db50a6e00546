import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { SshKeys } from '../../services/ssh-keys.ts';
import type { Users } from '../../services/users.ts';
import { authenticateEarly, restPrincipal } from '../credentials.ts';
import { registerJsonParser, restErrorHandler } from '../rest-errors.ts';
import { registerRestValidation } from '../validation.ts';
import * as S from './schemas.ts';

export interface UserDeps {
  users: Users;
  sshKeys: SshKeys;
}

/**
 * The user API under /user/v1: what an account does for itself with its API key (an identity
 * token is refused, as on every account endpoint): its SSH public keys and its API keys.
 */
export async function userRoutes(fastify: FastifyInstance, deps: UserDeps): Promise<void> {
  registerJsonParser(fastify);
  registerRestValidation(fastify);
  fastify.setErrorHandler(restErrorHandler);
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { users, sshKeys } = deps;
  authenticateEarly(fastify, users);
  const who = (req: FastifyRequest) => req.principal ?? restPrincipal(req, users);

  app.get('/ssh-keys', { schema: S.listSshKeys }, async (req) => sshKeys.listOwn(await who(req)));
  app.post('/ssh-keys', { schema: S.addSshKey }, async (req) => sshKeys.addOwn(await who(req), req.body));
  app.delete('/ssh-keys/:key', { schema: S.deleteSshKey }, async (req) => {
    await sshKeys.deleteOwn(await who(req), req.params.key);
    return {};
  });

  app.get('/api-keys', { schema: S.listApiKeys }, async (req) => ({ keys: await users.listApiKeys(await who(req)) }));
  app.post('/api-keys', { schema: S.createApiKey }, async (req) => users.createApiKey(await who(req), req.body));
  app.delete('/api-keys/:key', { schema: S.revokeApiKey }, async (req) => {
    await users.revokeApiKey(await who(req), req.params.key);
    return {};
  });
}
