import type { FastifyInstance, FastifyRequest } from 'fastify';
import { invalid } from '../../domain/errors.ts';
import type { Commits } from '../../services/commits.ts';
import type { RepoContent } from '../../services/repo-content.ts';
import type { RepoImport } from '../../services/repo-import.ts';
import type { RemoteSync } from '../../services/remote-sync.ts';
import type { Search } from '../../services/search.ts';
import { type Repos, repoInfo } from '../../services/repos.ts';
import type { Users } from '../../services/users.ts';
import type { Webhooks } from '../../services/webhooks.ts';
import { restPrincipal } from '../credentials.ts';
import { objectBody, registerJsonParser, restErrorHandler } from '../rest-errors.ts';

export interface GitRestDeps {
  users: Users;
  repos: Repos;
  content: RepoContent;
  commits: Commits;
  webhooks: Webhooks;
  importer: RepoImport;
  search: Search;
  sync: RemoteSync;
  /** body limit of the endpoints that carry file contents inline */
  maxCommitBytes: number;
}

type RepoParams = { repo: string; repo_id: string; hash: string; trigger: string; delivery: string; '*': string };

const body = objectBody;

const optString = (v: unknown, name: string): string | null | undefined => {
  if (v === undefined || v === null) return v;
  if (typeof v !== 'string') throw invalid(`${name} must be a string`);
  return v;
};

/** The Freestyle Git REST API under /git/v1: repositories, refs, objects, contents, search, commits, triggers, sync. */
export async function gitRestRoutes(app: FastifyInstance, deps: GitRestDeps): Promise<void> {
  registerJsonParser(app);
  app.setErrorHandler(restErrorHandler);
  const { users, repos } = deps;
  const who = (req: FastifyRequest) => restPrincipal(req, users);

  app.post('/repo', { bodyLimit: deps.maxCommitBytes }, async (req) => {
    const b = body(req);
    if (b.public !== undefined && typeof b.public !== 'boolean') throw invalid('public must be a boolean');
    const input = {
      name: optString(b.name, 'name'),
      public: b.public as boolean | undefined,
      defaultBranch: optString(b.defaultBranch, 'defaultBranch'),
      description: optString(b.description, 'description'),
    };
    const p = await who(req);
    const row = b.source || b.import ? await deps.importer.create(p, input, b.source, b.import) : await repos.create(p, input);
    return { repoId: row.id };
  });

  app.get('/repo', async (req) => {
    const query = req.query as { limit?: string; offset?: string };
    const { rows, total, offset } = await repos.listWithRefs(await who(req), query);
    const repositories = rows.map(({ row, ...refs }) => ({ ...repoInfo(row), ...refs }));
    return { repositories, total, offset };
  });

  app.get('/repo/:repo', async (req) => repoInfo(await repos.get(await who(req), (req.params as { repo: string }).repo, 'repo:read')));

  app.delete('/repo/:repo', async (req) => {
    await repos.delete(await who(req), (req.params as { repo: string }).repo);
    return {};
  });

  const { content, commits } = deps;
  const P = (req: FastifyRequest) => req.params as RepoParams;
  const Q = (req: FastifyRequest) => req.query as Record<string, string | undefined>;

  // default branch and visibility (the SDK names the parameter repo_id here)
  app.get('/repo/:repo_id/default-branch', async (req) => ({ defaultBranch: (await repos.get(await who(req), P(req).repo_id)).default_branch }));
  app.put('/repo/:repo_id/default-branch', async (req) => ({ defaultBranch: await repos.setDefaultBranch(await who(req), P(req).repo_id, body(req).defaultBranch) }));
  app.get('/repo/:repo_id/visibility', async (req) => ({ visibility: (await repos.get(await who(req), P(req).repo_id)).visibility }));
  app.put('/repo/:repo_id/visibility', async (req) => ({ visibility: await repos.setVisibility(await who(req), P(req).repo_id, body(req).visibility) }));

  // refs
  app.get('/repo/:repo/git/refs/heads/', async (req) => content.branches(await who(req), P(req).repo));
  app.get('/repo/:repo/git/refs/heads/*', async (req) => content.branch(await who(req), P(req).repo, P(req)['*']));
  app.post('/repo/:repo/git/refs/heads/*', async (req) => commits.createBranch(await who(req), P(req).repo, P(req)['*'], body(req).sha));
  app.get('/repo/:repo/git/refs/tags/', async (req) => content.tags(await who(req), P(req).repo));
  app.get('/repo/:repo/git/refs/tags/*', async (req) => content.tagByName(await who(req), P(req).repo, P(req)['*']));
  app.get('/repo/:repo/git/tags/:hash', async (req) => content.tagByHash(await who(req), P(req).repo, P(req).hash));

  // objects
  app.get('/repo/:repo/git/blobs/:hash', async (req) => content.blob(await who(req), P(req).repo, P(req).hash));
  app.get('/repo/:repo/git/trees/:hash', async (req) => content.tree(await who(req), P(req).repo, P(req).hash));
  app.get('/repo/:repo/git/commits/:hash', async (req) => content.commit(await who(req), P(req).repo, P(req).hash));
  app.get('/repo/:repo/git/commits', async (req) => content.commits(await who(req), P(req).repo, Q(req)));
  app.get('/repo/:repo/contents/*', async (req) => content.contents(await who(req), P(req).repo, P(req)['*'] ?? '', Q(req).rev ?? Q(req).ref));
  app.get('/repo/:repo/compare', async (req) => content.compare(await who(req), P(req).repo, Q(req).base, Q(req).head));
  for (const [route, format, type] of [
    ['/repo/:repo/tarball', 'tar.gz', 'application/gzip'],
    ['/repo/:repo/zip', 'zip', 'application/zip'],
  ] as const) {
    app.get(route, async (req, reply) => {
      const ac = new AbortController();
      reply.raw.on('close', () => ac.abort());
      const { stream, filename } = await content.archive(await who(req), P(req).repo, format, Q(req).rev ?? Q(req).ref, ac.signal);
      return reply.header('Content-Type', type).header('Content-Disposition', `attachment; filename="${filename}"`).send(stream);
    });
  }

  // search (the revision may come as rev or ref)
  app.get('/repo/:repo/search', async (req) => deps.search.content(await who(req), P(req).repo, Q(req)));
  app.get('/repo/:repo/search/files', async (req) => deps.search.files(await who(req), P(req).repo, Q(req)));
  app.get('/repo/:repo/search/commits', async (req) => deps.search.commits(await who(req), P(req).repo, Q(req)));
  app.get('/repo/:repo/search/diffs', async (req) => deps.search.diffs(await who(req), P(req).repo, Q(req)));

  // two-way sync with a remote (the SDK's github-sync; any git URL)
  app.get('/repo/:repo_id/github-sync', async (req) => deps.sync.get(await who(req), P(req).repo_id));
  app.post('/repo/:repo_id/github-sync', async (req) => deps.sync.enable(await who(req), P(req).repo_id, body(req)));
  app.delete('/repo/:repo_id/github-sync', async (req) => deps.sync.disable(await who(req), P(req).repo_id));
  app.post('/repo/:repo_id/github-sync/sync', async (req) => deps.sync.syncNow(await who(req), P(req).repo_id));

  // push triggers (webhooks) and their delivery log
  const { webhooks } = deps;
  app.get('/repo/:repo/trigger', async (req) => webhooks.list(await who(req), P(req).repo));
  app.post('/repo/:repo/trigger', async (req) => webhooks.create(await who(req), P(req).repo, body(req)));
  app.delete('/repo/:repo/trigger/:trigger', async (req) => {
    await webhooks.delete(await who(req), P(req).repo, P(req).trigger);
    return {};
  });
  app.get('/repo/:repo/trigger/:trigger/deliveries', async (req) => webhooks.deliveries(await who(req), P(req).repo, P(req).trigger));
  app.post('/repo/:repo/trigger/:trigger/deliveries/:delivery/redeliver', async (req) => webhooks.redeliver(await who(req), P(req).repo, P(req).trigger, P(req).delivery));

  // writing
  app.post('/repo/:repo/commits', { bodyLimit: deps.maxCommitBytes }, async (req) => {
    const b = body(req);
    return commits.create(await who(req), P(req).repo, { message: b.message, files: b.files, branch: b.branch, author: b.author, expectedSha: b.expectedSha });
  });
}
