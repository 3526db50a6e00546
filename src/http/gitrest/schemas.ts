import Type, { type Static, type TSchema } from 'typebox';
import { BoolQuery, Empty, Enum, errorResponses, Int, Nullable, Paging, RepoRef, Str, Uuid } from '../common-schemas.ts';

/**
 * Schemas of the Freestyle Git REST API, shaped as the `freestyle-sandboxes` SDK types them
 * (plus what Palisade adds: `description`, delivery logs, sync status). Revisions, branch
 * names, object ids and file paths are checked for what they mean by the domain layer; here
 * they are bounded, NUL-free strings.
 */

const ok = <T extends TSchema>(schema: T) => ({ 200: schema, ...errorResponses });

// ---- building blocks -------------------------------------------------------------

/** A revision: branch, tag or commit id (the domain's `isRevision` decides). */
const Rev = (description = 'Branch, tag or commit id (default: the default branch)') => Str(255, { description });
/** A 40-hex object id (the domain's `isObjectId` decides; errors carry INVALID_OBJECT_ID). */
const Hash = Str(100, { title: 'hash', description: 'Object id (40 hex digits)' });
const RepoParams = Type.Object({ repo: RepoRef() });
/** The SDK names the repository parameter repo_id on these routes. */
const RepoIdParams = Type.Object({ repo_id: RepoRef('repo_id') });
const HashParams = Type.Object({ repo: RepoRef(), hash: Hash });
const BranchParams = Type.Object({ repo: RepoRef(), '*': Str(255, { title: 'branch', description: 'Branch name (may contain `/`)' }) });
const TagParams = Type.Object({ repo: RepoRef(), '*': Str(255, { title: 'tag', description: 'Tag name (may contain `/`)' }) });
const PathParams = Type.Object({ repo: RepoRef(), '*': Str(4096, { title: 'path', description: 'Path in the repository ("" for the root)' }) });
const TriggerParams = Type.Object({ repo: RepoRef(), trigger: Uuid('trigger id', 'Trigger id') });
const DeliveryParams = Type.Object({ repo: RepoRef(), trigger: Uuid('trigger id', 'Trigger id'), delivery: Uuid('delivery id', 'Delivery id') });

/** `?rev=` (the SDK) or `?ref=`. */
const RevQuery = Type.Object({ rev: Type.Optional(Rev()), ref: Type.Optional(Rev('Same as rev')) }, { additionalProperties: false });

const Visibility = Enum(['public', 'private']);
const Signature = Type.Object({ name: Type.String(), email: Type.String(), date: Type.String({ description: 'ISO 8601' }) });
const Commit = Type.Object({
  sha: Type.String(),
  tree: Type.Object({ sha: Type.String() }),
  parents: Type.Array(Type.Object({ sha: Type.String() })),
  author: Signature,
  committer: Signature,
  message: Type.String(),
});
const Tag = Type.Object({
  name: Type.String(),
  sha: Type.String(),
  target: Type.Object({ sha: Type.String() }),
  tagger: Nullable(Signature),
  message: Nullable(Type.String()),
});
const RepoInfo = {
  id: Type.String(),
  name: Nullable(Type.String()),
  accountId: Type.String(),
  visibility: Visibility,
  defaultBranch: Type.String(),
  createdAt: Type.String(),
  type: Type.Union([Type.Literal('git'), Type.Literal('hg')], { description: 'git, or hg (Mercurial: the Git REST API\'s content endpoints answer 400 UNSUPPORTED_REPOSITORY_TYPE)' }),
};
const BranchSummary = Type.Object({ default: Type.Boolean(), name: Type.String(), target: Nullable(Type.String()) });
const TagSummary = Type.Object({ name: Type.String(), target: Type.String() });

// ---- repositories ------------------------------------------------------------------

const SourceSpec = Type.Object(
  {
    url: Str(4096, { description: 'Any git URL the server may fetch (SSRF-checked)' }),
    rev: Type.Optional(Nullable(Rev('Revision to check out'))),
    branch: Type.Optional(Nullable(Rev('Branch to check out'))),
    depth: Type.Optional(Nullable(Int({ minimum: 1, maximum: 1_000_000, description: 'Shallow clone depth' }))),
    allBranches: Type.Optional(Nullable(Type.Boolean())),
  },
  { additionalProperties: false, description: 'Clone a repository (with history)' },
);

const importCommon = {
  commitMessage: Str(100_000),
  authorName: Type.Optional(Nullable(Str(200))),
  authorEmail: Type.Optional(Nullable(Str(200))),
};
const importBranches = [
  Type.Object(
    {
      type: Type.Literal('files'),
      // as many files and as long paths as a commit may have (createCommit's body): they become one
      files: Type.Record(Type.String(), Type.String(), { maxProperties: 2000, propertyNames: { maxLength: 4096, title: 'import.files path' }, description: 'Path -> content (UTF-8), at most 2000 files' }),
      ...importCommon,
    },
    { title: 'files' },
  ),
  Type.Object({ type: Type.Literal('tar'), url: Str(4096), dir: Type.Optional(Nullable(Str(4096))), ...importCommon }, { title: 'tar' }),
  Type.Object({ type: Type.Literal('zip'), url: Str(4096), dir: Type.Optional(Nullable(Str(4096))), ...importCommon }, { title: 'zip' }),
  Type.Object({ type: Type.Literal('git'), url: Str(4096), rev: Type.Optional(Nullable(Rev())), branch: Type.Optional(Nullable(Rev())), dir: Type.Optional(Nullable(Str(4096))), ...importCommon }, { title: 'git' }),
] as const;
/** Tagged by `type`: only the branch `type` names is checked, so errors speak of that branch. */
const ImportSpec = Type.Unsafe<Static<(typeof importBranches)[number]>>({ type: 'object', oneOf: [...importBranches], discriminator: { propertyName: 'type' }, description: 'Content for one first commit, without history' });

export const createRepo = {
  summary: 'Create a repository (empty, cloned from a source, or with imported content)',
  body: Type.Object(
    {
      name: Type.Optional(Nullable(Str(255, { description: 'Full name `group/sub/name`; none: only the id' }))),
      public: Type.Optional(Type.Boolean({ description: 'Default false (private)' })),
      defaultBranch: Type.Optional(Nullable(Str(255, { description: 'Default "main"' }))),
      description: Type.Optional(Nullable(Str(10_000))),
      source: Type.Optional(SourceSpec),
      import: Type.Optional(ImportSpec),
    },
    { additionalProperties: false },
  ),
  response: ok(Type.Object({ repoId: Type.String() })),
};
export const listRepos = {
  summary: 'List the repositories the caller owns or was granted (admins: all)',
  querystring: Type.Object(Paging(1000, 100), { additionalProperties: false }),
  response: ok(Type.Object({ repositories: Type.Array(Type.Object({ ...RepoInfo, branches: Type.Record(Type.String(), BranchSummary), tags: Type.Record(Type.String(), TagSummary) })), total: Type.Integer(), offset: Type.Integer() })),
};
export const getRepo = { summary: 'A repository', params: RepoParams, response: ok(Type.Object(RepoInfo)) };
export const deleteRepo = { summary: 'Delete a repository (admin on it)', params: RepoParams, response: ok(Empty) };

export const getDefaultBranch = { summary: 'The default branch', params: RepoIdParams, response: ok(Type.Object({ defaultBranch: Type.String() })) };
export const setDefaultBranch = {
  summary: 'Set the default branch (write)',
  params: RepoIdParams,
  body: Type.Object({ defaultBranch: Str(255) }, { additionalProperties: false }),
  response: ok(Type.Object({ defaultBranch: Type.String() })),
};
export const getVisibility = { summary: 'Public or private', params: RepoIdParams, response: ok(Type.Object({ visibility: Visibility })) };
export const setVisibility = { summary: 'Make public or private (admin)', params: RepoIdParams, body: Type.Object({ visibility: Visibility }, { additionalProperties: false }), response: ok(Type.Object({ visibility: Visibility })) };

const ProtectedBranches = Type.Object({ branches: Type.Array(Type.String(), { description: 'Branch patterns; `*` matches any characters' }) });
export const getProtectedBranches = { summary: 'Protected branches: no force push or deletion below repository admin (read)', params: RepoParams, response: ok(ProtectedBranches) };
export const setProtectedBranches = {
  summary: 'Replace the protected branches (admin): branch names or patterns such as `release/*`',
  params: RepoParams,
  body: Type.Object({ branches: Type.Array(Str(200, { minLength: 1, title: 'branch pattern' }), { maxItems: 100 }) }, { additionalProperties: false }),
  response: ok(ProtectedBranches),
};

// ---- refs and objects ----------------------------------------------------------------

export const listBranches = { summary: 'Branches', params: RepoParams, response: ok(Type.Object({ branches: Type.Array(Type.Object({ name: Type.String(), commit: Nullable(Type.String()) })) })) };
export const getBranch = { summary: 'A branch', params: BranchParams, response: ok(Type.Object({ name: Type.String({ description: 'refs/heads/…' }), sha: Type.String() })) };
export const createBranch = {
  summary: 'Create a branch (409 BRANCH_ALREADY_EXISTS)',
  params: BranchParams,
  body: Type.Object({ sha: Type.Optional(Nullable(Str(100, { description: 'Commit id; none: the tip of the default branch' }))) }, { additionalProperties: false }),
  response: ok(Type.Object({ name: Type.String(), sha: Type.String() })),
};
export const listTags = { summary: 'Tags', params: RepoParams, response: ok(Type.Object({ tags: Type.Array(Tag) })) };
export const getTag = { summary: 'A tag by name', params: TagParams, response: ok(Tag) };
export const getTagByHash = { summary: 'An annotated tag object', params: HashParams, response: ok(Tag) };
export const getBlob = { summary: 'A blob (base64)', params: HashParams, response: ok(Type.Object({ sha: Type.String(), size: Type.Integer(), encoding: Type.Literal('base64'), content: Type.String() })) };
export const getTree = {
  summary: 'A tree',
  params: HashParams,
  response: ok(
    Type.Object({
      sha: Type.String(),
      tree: Type.Array(Type.Object({ path: Type.String(), sha: Type.String(), type: Enum(['blob', 'tree']), size: Type.Optional(Type.Integer({ description: 'blobs only' })) })),
    }),
  ),
};
export const getCommit = { summary: 'A commit', params: HashParams, response: ok(Commit) };
export const listCommits = {
  summary: 'Commits of a branch, paged by offset or by since/until',
  params: RepoParams,
  querystring: Type.Object(
    {
      branch: Type.Optional(Str(255, { description: 'Default: the default branch' })),
      limit: Type.Optional(Int({ minimum: 1, maximum: 500, description: 'Default 50' })),
      offset: Type.Optional(Int()),
      order: Type.Optional(Enum(['desc', 'asc'], 'Default desc (newest first)')),
      since: Type.Optional(Str(100, { description: 'Commit id: only commits after it' })),
      until: Type.Optional(Str(100, { description: 'Commit id: start from it instead of the branch tip' })),
    },
    { additionalProperties: false },
  ),
  response: ok(
    Type.Object({
      commits: Type.Array(Commit),
      count: Type.Integer(),
      offset: Type.Integer(),
      limit: Type.Integer(),
      total: Type.Integer(),
      order: Enum(['desc', 'asc']),
      selector: Nullable(Type.Union([Type.Object({ Range: Type.Object({ since: Type.String(), until: Type.String() }) }), Type.Object({ Since: Type.String() }), Type.Object({ Until: Type.String() })])),
      next_commit: Nullable(Type.String()),
    }),
  ),
};

const FileEntry = Type.Object({ type: Type.Literal('file'), name: Type.String(), path: Type.String(), sha: Type.String(), size: Type.Integer() });
const DirEntry = Type.Object({ type: Type.Literal('dir'), name: Type.String(), path: Type.String(), sha: Type.String(), entries: Type.Array(Type.Unknown(), { maxItems: 0, description: 'Always empty: list the folder itself' }) });
export const getContents = {
  summary: 'A file (base64) or a folder listing',
  params: PathParams,
  querystring: RevQuery,
  response: ok(
    Type.Union([
      Type.Object({ type: Type.Literal('file'), name: Type.String(), path: Type.String(), sha: Type.String(), size: Type.Integer(), content: Type.String({ description: 'base64' }) }),
      Type.Object({ type: Type.Literal('dir'), name: Type.String(), path: Type.String(), sha: Type.String(), entries: Type.Array(Type.Union([FileEntry, DirEntry])) }),
    ]),
  ),
};
export const compare = {
  summary: 'How head relates to base',
  params: RepoParams,
  querystring: Type.Object({ base: Str(255, { minLength: 1, description: 'Base revision' }), head: Str(255, { minLength: 1, description: 'Head revision' }), path: Type.Optional(Nullable(Str(4096, { description: 'Ignored (SDK compatibility)' }))) }, { additionalProperties: false }),
  response: ok(
    Type.Object({
      status: Enum(['identical', 'ahead', 'behind', 'diverged']),
      ahead_by: Type.Integer(),
      behind_by: Type.Integer(),
      total_commits: Type.Integer(),
      files: Type.Array(
        Type.Object({
          filename: Type.String(),
          status: Enum(['added', 'removed', 'modified', 'renamed', 'copied', 'changed', 'unchanged']),
          sha: Nullable(Type.String()),
          previous_filename: Nullable(Type.String()),
          additions: Type.Integer(),
          deletions: Type.Integer(),
          changes: Type.Integer(),
        }),
      ),
    }),
  ),
};
const archive = (format: string, type: string) => ({
  summary: `The tree of a revision as ${format}`,
  params: RepoParams,
  querystring: RevQuery,
  produces: [type],
  response: { 200: { description: `${format} archive`, content: { [type]: { schema: { type: 'string', format: 'binary' } } } }, ...errorResponses },
});
export const tarball = archive('tar.gz', 'application/gzip');
export const zip = archive('zip', 'application/zip');

// ---- search --------------------------------------------------------------------------

const searchQuery = (extra: Record<string, TSchema>) =>
  Type.Object(
    {
      query: Str(1000, { description: 'Text or (isRegex) a POSIX extended regex; runs in git/grep with a time limit' }),
      rev: Type.Optional(Rev()),
      ref: Type.Optional(Rev('Same as rev')),
      isRegex: Type.Optional(BoolQuery()),
      caseSensitive: Type.Optional(BoolQuery()),
      ...extra,
    },
    { additionalProperties: false },
  );
const Pattern = (description: string) => Str(300, { description });

export const searchContent = {
  summary: 'Search file contents',
  params: RepoParams,
  querystring: searchQuery({
    wholeWord: Type.Optional(BoolQuery()),
    pathPattern: Type.Optional(Pattern('Only paths matching these globs (comma-separated)')),
    excludePattern: Type.Optional(Pattern('Not paths matching these globs (comma-separated)')),
    maxResults: Type.Optional(Int({ maximum: 500, description: 'Files per page (default 50)' })),
    offset: Type.Optional(Int({ maximum: 1_000_000 })),
  }),
  response: ok(
    Type.Object({
      totalFiles: Type.Integer(),
      totalMatches: Type.Integer(),
      hasMore: Type.Boolean(),
      offset: Type.Integer(),
      files: Type.Array(
        Type.Object({
          path: Type.String(),
          extension: Nullable(Type.String()),
          size: Type.Integer(),
          matches: Type.Array(Type.Object({ lineNumber: Type.Integer(), line: Type.String(), startColumn: Type.Integer(), endColumn: Type.Integer(), contextBefore: Type.Array(Type.String()), contextAfter: Type.Array(Type.String()) })),
        }),
      ),
    }),
  ),
};
export const searchFiles = {
  summary: 'Search file names',
  params: RepoParams,
  querystring: searchQuery({ maxResults: Type.Optional(Int({ maximum: 1000, description: 'Default 50' })), offset: Type.Optional(Int({ maximum: 10_000_000 })) }),
  response: ok(Type.Object({ totalFiles: Type.Integer(), hasMore: Type.Boolean(), files: Type.Array(Type.Object({ path: Type.String(), extension: Nullable(Type.String()), size: Type.Integer() })) })),
};
export const searchCommits = {
  summary: 'Search commit messages',
  params: RepoParams,
  querystring: searchQuery({ maxResults: Type.Optional(Int({ maximum: 500, description: 'Default 50' })), offset: Type.Optional(Int({ maximum: 10_000_000 })) }),
  response: ok(
    Type.Object({
      totalCommits: Type.Integer(),
      hasMore: Type.Boolean(),
      commits: Type.Array(Type.Object({ sha: Type.String(), message: Type.String(), fullMessage: Type.String(), authorName: Type.String(), authorEmail: Type.String(), timestamp: Type.String() })),
    }),
  ),
};
export const searchDiffs = {
  summary: 'Search added and removed lines',
  params: RepoParams,
  querystring: searchQuery({
    wholeWord: Type.Optional(BoolQuery()),
    pathPattern: Type.Optional(Pattern('Only paths matching these globs (comma-separated)')),
    excludePattern: Type.Optional(Pattern('Not paths matching these globs (comma-separated)')),
    maxResults: Type.Optional(Int({ maximum: 200, description: 'Commits per page (default 20)' })),
    offset: Type.Optional(Int({ maximum: 1_000_000 })),
  }),
  response: ok(
    Type.Object({
      totalCommits: Type.Integer(),
      hasMore: Type.Boolean(),
      commits: Type.Array(
        Type.Object({
          sha: Type.String(),
          message: Type.String(),
          authorName: Type.String(),
          authorEmail: Type.String(),
          timestamp: Type.String(),
          files: Type.Array(Type.Object({ path: Type.String(), matches: Type.Array(Type.Object({ line: Type.String(), lineNumber: Type.Integer(), startColumn: Type.Integer(), endColumn: Type.Integer(), isAddition: Type.Boolean() })) })),
        }),
      ),
    }),
  ),
};

// ---- sync with a remote ----------------------------------------------------------------

export const getSync = {
  summary: 'The remote this repository syncs with (404 when none)',
  params: RepoIdParams,
  response: ok(Type.Object({ githubRepoName: Type.String(), remoteUrl: Type.String({ description: 'Credentials redacted' }), lastSyncedAt: Nullable(Type.String()), lastError: Nullable(Type.String()) })),
};
export const enableSync = {
  summary: 'Sync with a remote: "owner/repo" on GitHub, or any git URL (admin)',
  params: RepoIdParams,
  body: Type.Object({ githubRepoName: Type.Optional(Str(2000)), remoteUrl: Type.Optional(Str(2000, { description: 'Same as githubRepoName' })) }, { additionalProperties: false }),
  response: ok(Empty),
};
export const disableSync = { summary: 'Stop syncing (admin)', params: RepoIdParams, response: ok(Empty) };
export const syncNow = {
  summary: 'Sync now (409 GIT_HUB_SYNC_CONFLICT when a branch moved on both sides)',
  params: RepoIdParams,
  response: ok(Type.Object({ pulled: Type.Array(Type.String()), pushed: Type.Array(Type.String()), conflicts: Type.Array(Type.String()) })),
};

// ---- triggers ----------------------------------------------------------------------------

const Names = (what: string) => Nullable(Type.Union([Str(300), Type.Array(Str(300), { maxItems: 100 })], { description: `${what}: a list (or one string); null: all` }));
const Trigger = Type.Object({
  id: Type.String(),
  repositoryId: Type.String(),
  trigger: Type.Object({ event: Type.Literal('push'), branches: Nullable(Type.Array(Type.String())), globs: Nullable(Type.Array(Type.String())) }),
  action: Type.Object({ action: Type.Literal('webhook'), endpoint: Type.String() }),
  managed: Type.Boolean(),
  createdAt: Type.String(),
});
const Delivery = Type.Object({
  id: Type.String(),
  status: Enum(['pending', 'delivered', 'failed']),
  attempts: Type.Integer(),
  lastStatusCode: Nullable(Type.Integer()),
  lastError: Nullable(Type.String()),
  nextAttemptAt: Nullable(Type.String()),
  createdAt: Type.String(),
  deliveredAt: Nullable(Type.String()),
  payload: Type.Unknown({ description: 'The JSON body that is (re)sent' }),
});

export const listTriggers = { summary: 'Push triggers (admin)', params: RepoParams, response: ok(Type.Object({ triggers: Type.Array(Trigger) })) };
const TriggerSpec = {
  event: Type.Optional(Type.Literal('push')),
  branches: Type.Optional(Names('Branch names or globs')),
  branch: Type.Optional(Names('Same as branches')),
  globs: Type.Optional(Names('Path globs')),
  glob: Type.Optional(Names('Same as globs')),
};
const ActionSpec = {
  type: Type.Optional(Type.Literal('webhook')),
  endpoint: Type.Optional(Str(4096, { description: 'http(s) URL (SSRF-checked)' })),
  url: Type.Optional(Str(4096, { description: 'Same as endpoint' })),
};
export const createTrigger = {
  summary: 'A webhook on every push (admin); branch and path filters take globs',
  description: 'The SDK sends `{trigger, action}`; the same fields are also read at the top level.',
  params: RepoParams,
  body: Type.Object(
    {
      trigger: Type.Optional(Type.Object(TriggerSpec, { additionalProperties: false })),
      action: Type.Optional(Type.Union([Type.Object({ action: Type.Optional(Type.Literal('webhook')), ...ActionSpec }, { additionalProperties: false }), Type.Literal('webhook')])),
      ...TriggerSpec,
      ...ActionSpec,
    },
    { additionalProperties: false },
  ),
  response: ok(Type.Object({ triggerId: Type.String() })),
};
export const deleteTrigger = { summary: 'Delete a trigger (admin)', params: TriggerParams, response: ok(Empty) };
export const listDeliveries = { summary: "A trigger's delivery log, newest first (admin)", params: TriggerParams, response: ok(Type.Object({ deliveries: Type.Array(Delivery) })) };
export const redeliver = { summary: 'Queue a delivery again (admin)', params: DeliveryParams, response: ok(Delivery) };

// ---- writing ---------------------------------------------------------------------------------

export const createCommit = {
  summary: 'Commit files without a checkout; expectedSha makes it a compare-and-swap',
  params: RepoParams,
  body: Type.Object(
    {
      message: Type.String({ minLength: 1, maxLength: 1_000_000 }),
      files: Type.Array(
        Type.Object(
          {
            path: Str(4096),
            content: Type.Optional(Nullable(Type.String({ description: 'utf8 text or base64' }))),
            encoding: Type.Optional(Nullable(Enum(['utf8', 'base64']))),
            deleted: Type.Optional(Nullable(Type.Boolean())),
          },
          { additionalProperties: false },
        ),
        { minItems: 1, maxItems: 2000 },
      ),
      branch: Type.Optional(Nullable(Str(255, { description: 'Default: the default branch' }))),
      author: Type.Optional(Nullable(Type.Object({ name: Str(200), email: Str(200) }, { additionalProperties: false }))),
      expectedSha: Type.Optional(Nullable(Str(100, { description: 'The branch tip this commit expects (409 CONFLICTING_PARENT otherwise)' }))),
    },
    { additionalProperties: false },
  ),
  response: ok(Type.Object({ commit: Commit })),
};
