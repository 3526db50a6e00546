import type { FastifyInstance, FastifyRequest } from 'fastify';
import { invalid } from '../../domain/errors.ts';
import { type Repos, repoInfo } from '../../services/repos.ts';
import type { Users } from '../../services/users.ts';
import { restPrincipal } from '../credentials.ts';
import { registerJsonParser, restErrorHandler } from '../rest-errors.ts';

export interface GitRestDeps {
  users: Users;
  repos: Repos;
}

function body(req: FastifyRequest): Record<string, unknown> {
  const b = req.body;
  if (b === undefined || b === null) return {};
  if (typeof b !== 'object' || Array.isArray(b)) throw invalid('Request body must be a JSON object');
  return b as Record<string, unknown>;
}

const optString = (v: unknown, name: string): string | null | undefined => {
  if (v === undefined || v === null) return v;
  if (typeof v !== 'string') throw invalid(`${name} must be a string`);
  return v;
};

/** The Freestyle Git REST API's repository endpoints, under /git/v1 (the rest comes with its own issue). */
export async function gitRestRoutes(app: FastifyInstance, deps: GitRestDeps): Promise<void> {
  registerJsonParser(app);
  app.setErrorHandler(restErrorHandler);
  const { users, repos } = deps;
  const who = (req: FastifyRequest) => restPrincipal(req, users);

  app.post('/repo', async (req) => {
    const b = body(req);
    if (b.source !== undefined && b.source !== null) throw invalid('Creating a repository from "source" is not supported yet', 'INVALID_REQUEST');
    if (b.import !== undefined && b.import !== null) throw invalid('Creating a repository with "import" is not supported yet', 'INVALID_REQUEST');
    if (b.public !== undefined && typeof b.public !== 'boolean') throw invalid('public must be a boolean');
    const row = await repos.create(await who(req), {
      name: optString(b.name, 'name'),
      public: b.public as boolean | undefined,
      defaultBranch: optString(b.defaultBranch, 'defaultBranch'),
      description: optString(b.description, 'description'),
    });
    return { repoId: row.id };
  });

  app.get('/repo', async (req) => {
    const query = req.query as { limit?: string; offset?: string };
    const { rows, total, offset } = await repos.list(await who(req), query);
    const repositories = await Promise.all(rows.map(async (r) => ({ ...repoInfo(r), ...(await repos.refsSummary(r)) })));
    return { repositories, total, offset };
  });

  app.get('/repo/:repo', async (req) => repoInfo(await repos.get(await who(req), (req.params as { repo: string }).repo, 'repo:read')));

  app.delete('/repo/:repo', async (req) => {
    await repos.delete(await who(req), (req.params as { repo: string }).repo);
    return {};
  });
}
