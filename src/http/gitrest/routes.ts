import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Commits } from '../../services/commits.ts';
import type { RepoContent } from '../../services/repo-content.ts';
import type { RepoImport } from '../../services/repo-import.ts';
import type { RemoteSync } from '../../services/remote-sync.ts';
import type { Search, SearchQuery } from '../../services/search.ts';
import { type Repos, repoInfo } from '../../services/repos.ts';
import type { Users } from '../../services/users.ts';
import type { Webhooks } from '../../services/webhooks.ts';
import { type BoolText, queryBool } from '../common-schemas.ts';
import { authenticateEarly, restPrincipal } from '../credentials.ts';
import { registerJsonParser, restErrorHandler } from '../rest-errors.ts';
import { registerRestValidation } from '../validation.ts';
import * as S from './schemas.ts';

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

/** A search's query string, as the four search schemas check it (some lack the pattern fields). */
interface SearchParams {
  query: string;
  rev?: string;
  ref?: string;
  isRegex?: BoolText;
  caseSensitive?: BoolText;
  wholeWord?: BoolText;
  pathPattern?: string;
  excludePattern?: string;
  maxResults?: number;
  offset?: number;
}

/** What Search takes: the revision given as `rev` or (the SDK's other name) `ref`, flags as booleans. */
const searchQuery = (q: SearchParams): SearchQuery => ({
  query: q.query,
  rev: q.rev || q.ref,
  isRegex: queryBool(q.isRegex),
  caseSensitive: queryBool(q.caseSensitive),
  wholeWord: queryBool(q.wholeWord),
  pathPattern: q.pathPattern,
  excludePattern: q.excludePattern,
  maxResults: q.maxResults,
  offset: q.offset,
});

/** The Freestyle Git REST API under /git/v1: repositories, refs, objects, contents, search, commits, triggers, sync; schemas in schemas.ts. */
export async function gitRestRoutes(fastify: FastifyInstance, deps: GitRestDeps): Promise<void> {
  registerJsonParser(fastify);
  registerRestValidation(fastify);
  fastify.setErrorHandler(restErrorHandler);
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { users, repos, content, commits, webhooks } = deps;
  authenticateEarly(fastify, users);
  const who = (req: FastifyRequest) => req.principal ?? restPrincipal(req, users);

  app.post('/repo', { schema: S.createRepo, bodyLimit: deps.maxCommitBytes }, async (req, reply) => {
    const b = req.body;
    const input = { name: b.name, public: b.public, defaultBranch: b.defaultBranch, description: b.description };
    const p = await who(req);
    // the client going away stops a fetch or an import (the half-made repository is removed)
    const ac = new AbortController();
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) ac.abort();
    });
    const row = b.source || b.import ? await deps.importer.create(p, input, b.source, b.import, ac.signal) : await repos.create(p, input);
    return { repoId: row.id };
  });

  app.get('/repo', { schema: S.listRepos }, async (req) => {
    const { rows, total, offset } = await repos.listWithRefs(await who(req), req.query);
    const repositories = rows.map(({ row, ...refs }) => ({ ...repoInfo(row), ...refs }));
    return { repositories, total, offset };
  });

  app.get('/repo/:repo', { schema: S.getRepo }, async (req) => repoInfo(await repos.get(await who(req), req.params.repo, 'repo:read')));

  app.delete('/repo/:repo', { schema: S.deleteRepo }, async (req) => {
    await repos.delete(await who(req), req.params.repo);
    return {};
  });

  // default branch and visibility (the SDK names the parameter repo_id here)
  app.get('/repo/:repo_id/default-branch', { schema: S.getDefaultBranch }, async (req) => ({ defaultBranch: (await repos.get(await who(req), req.params.repo_id)).default_branch }));
  app.put('/repo/:repo_id/default-branch', { schema: S.setDefaultBranch }, async (req) => ({ defaultBranch: await repos.setDefaultBranch(await who(req), req.params.repo_id, req.body.defaultBranch) }));
  app.get('/repo/:repo_id/visibility', { schema: S.getVisibility }, async (req) => ({ visibility: (await repos.get(await who(req), req.params.repo_id)).visibility }));
  app.put('/repo/:repo_id/visibility', { schema: S.setVisibility }, async (req) => ({ visibility: await repos.setVisibility(await who(req), req.params.repo_id, req.body.visibility) }));

  // protected branches: no force push or deletion below repository admin
  app.get('/repo/:repo/protected-branches', { schema: S.getProtectedBranches }, async (req) => repos.protectedBranches(await who(req), req.params.repo));
  app.put('/repo/:repo/protected-branches', { schema: S.setProtectedBranches }, async (req) => repos.setProtectedBranches(await who(req), req.params.repo, req.body.branches));

  // refs
  app.get('/repo/:repo/git/refs/heads/', { schema: S.listBranches }, async (req) => content.branches(await who(req), req.params.repo));
  app.get('/repo/:repo/git/refs/heads/*', { schema: S.getBranch }, async (req) => content.branch(await who(req), req.params.repo, req.params['*']));
  app.post('/repo/:repo/git/refs/heads/*', { schema: S.createBranch }, async (req) => commits.createBranch(await who(req), req.params.repo, req.params['*'], req.body.sha));
  app.get('/repo/:repo/git/refs/tags/', { schema: S.listTags }, async (req) => content.tags(await who(req), req.params.repo));
  app.get('/repo/:repo/git/refs/tags/*', { schema: S.getTag }, async (req) => content.tagByName(await who(req), req.params.repo, req.params['*']));
  app.get('/repo/:repo/git/tags/:hash', { schema: S.getTagByHash }, async (req) => content.tagByHash(await who(req), req.params.repo, req.params.hash));

  // objects
  app.get('/repo/:repo/git/blobs/:hash', { schema: S.getBlob }, async (req) => content.blob(await who(req), req.params.repo, req.params.hash));
  app.get('/repo/:repo/git/trees/:hash', { schema: S.getTree }, async (req) => content.tree(await who(req), req.params.repo, req.params.hash));
  app.get('/repo/:repo/git/commits/:hash', { schema: S.getCommit }, async (req) => content.commit(await who(req), req.params.repo, req.params.hash));
  app.get('/repo/:repo/git/commits', { schema: S.listCommits }, async (req) => content.commits(await who(req), req.params.repo, req.query));
  app.get('/repo/:repo/contents/*', { schema: S.getContents }, async (req) => content.contents(await who(req), req.params.repo, req.params['*'] ?? '', req.query.rev ?? req.query.ref));
  app.get('/repo/:repo/compare', { schema: S.compare }, async (req) => content.compare(await who(req), req.params.repo, req.query.base, req.query.head));
  for (const [route, format, type, schema] of [
    ['/repo/:repo/tarball', 'tar.gz', 'application/gzip', S.tarball],
    ['/repo/:repo/zip', 'zip', 'application/zip', S.zip],
  ] as const) {
    app.get(route, { schema }, async (req, reply) => {
      const ac = new AbortController();
      reply.raw.on('close', () => ac.abort());
      const { stream, filename } = await content.archive(await who(req), req.params.repo, format, req.query.rev ?? req.query.ref, ac.signal);
      return reply.header('Content-Type', type).header('Content-Disposition', `attachment; filename="${filename}"`).send(stream);
    });
  }

  // search (the revision may come as rev or ref)
  app.get('/repo/:repo/search', { schema: S.searchContent }, async (req) => deps.search.content(await who(req), req.params.repo, searchQuery(req.query)));
  app.get('/repo/:repo/search/files', { schema: S.searchFiles }, async (req) => deps.search.files(await who(req), req.params.repo, searchQuery(req.query)));
  app.get('/repo/:repo/search/commits', { schema: S.searchCommits }, async (req) => deps.search.commits(await who(req), req.params.repo, searchQuery(req.query)));
  app.get('/repo/:repo/search/diffs', { schema: S.searchDiffs }, async (req) => deps.search.diffs(await who(req), req.params.repo, searchQuery(req.query)));

  // two-way sync with a remote (the SDK's github-sync; any git URL)
  app.get('/repo/:repo_id/github-sync', { schema: S.getSync }, async (req) => deps.sync.get(await who(req), req.params.repo_id));
  app.post('/repo/:repo_id/github-sync', { schema: S.enableSync }, async (req) => deps.sync.enable(await who(req), req.params.repo_id, req.body));
  app.delete('/repo/:repo_id/github-sync', { schema: S.disableSync }, async (req) => deps.sync.disable(await who(req), req.params.repo_id));
  app.post('/repo/:repo_id/github-sync/sync', { schema: S.syncNow }, async (req) => deps.sync.syncNow(await who(req), req.params.repo_id));

  // push triggers (webhooks) and their delivery log
  app.get('/repo/:repo/trigger', { schema: S.listTriggers }, async (req) => webhooks.list(await who(req), req.params.repo));
  app.post('/repo/:repo/trigger', { schema: S.createTrigger }, async (req) => webhooks.create(await who(req), req.params.repo, req.body));
  app.delete('/repo/:repo/trigger/:trigger', { schema: S.deleteTrigger }, async (req) => {
    await webhooks.delete(await who(req), req.params.repo, req.params.trigger);
    return {};
  });
  app.get('/repo/:repo/trigger/:trigger/deliveries', { schema: S.listDeliveries }, async (req) => webhooks.deliveries(await who(req), req.params.repo, req.params.trigger));
  app.post('/repo/:repo/trigger/:trigger/deliveries/:delivery/redeliver', { schema: S.redeliver }, async (req) => webhooks.redeliver(await who(req), req.params.repo, req.params.trigger, req.params.delivery));

  // writing
  app.post('/repo/:repo/commits', { schema: S.createCommit, bodyLimit: deps.maxCommitBytes }, async (req) => commits.create(await who(req), req.params.repo, req.body));
}
