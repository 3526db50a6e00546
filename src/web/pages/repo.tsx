import type { CommitInfo } from '../../git/objects.ts';
import type { Diff, LogEntry, RefItem, TreeItem } from '../../services/browse.ts';
import type { RepoRow } from '../../services/types.ts';
import { type CodeHtml, formatBytes, formatDate, type SafeHtml } from '../render.ts';
import { type Ctx, enc, Layout, Pager, Raw, repoHref } from './layout.tsx';

const displayName = (r: RepoRow) => r.name ?? r.id;

/** The repository list: search, one page of rows from the database. */
export function RepoListPage({ ctx, rows, total, offset, limit, q }: { ctx: Ctx; rows: RepoRow[]; total: number; offset: number; limit: number; q: string }) {
  return (
    <Layout ctx={ctx} title="Repositories">
      <h1>Repositories</h1>
      <form method="get" action="/" class="box">
        <div class="hd">
          <input type="search" name="q" value={q} placeholder="Find a repository…" aria-label="Search repositories" />
          <button type="submit">Search</button>
          <span class="sp" />
          <span class="muted">{total.toLocaleString('en')} repositories</span>
        </div>
        {rows.length === 0 ? (
          <p class="muted pad">
            {q ? 'No repository matches.' : ctx.principal.kind === 'anonymous' ? 'No public repositories yet. Sign in to see yours.' : 'No repositories yet.'}
          </p>
        ) : (
          <table class="list" id="repo-list">
            <tbody>
              {rows.map((r) => (
                <tr>
                  <td>
                    <a href={repoHref(r)}>
                      <b>{displayName(r)}</b>
                    </a>{' '}
                    {r.visibility === 'private' && <span class="muted">private</span>}
                    {r.description && <div class="muted">{r.description}</div>}
                  </td>
                  <td class="num">{formatDate(r.created_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </form>
      <Pager base={q ? `/?q=${encodeURIComponent(q)}` : '/'} offset={offset} limit={limit} total={total} />
    </Layout>
  );
}

export type Tab = 'code' | 'commits' | 'branches' | 'tags' | 'compare' | 'settings';

/** Name, visibility, description and the tabs of a repository page. */
export function RepoHeader({ row, tab, canAdmin }: { row: RepoRow; tab: Tab; canAdmin: boolean }) {
  const base = repoHref(row);
  const t = (id: Tab, href: string, label: string) => (
    <a href={href} class={tab === id ? 'on' : undefined}>
      {label}
    </a>
  );
  return (
    <>
      <h1>
        <a href={base}>{displayName(row)}</a> <span class="vis">{row.visibility === 'public' ? 'Public' : 'Private'}</span>
      </h1>
      {row.description && <p class="muted">{row.description}</p>}
      <nav class="tabs">
        {t('code', base, 'Code')}
        {row.type === 'git' && (
          <>
            {t('commits', `${base}/-/commits/${enc(row.default_branch)}`, 'Commits')}
            {t('branches', `${base}/-/branches`, 'Branches')}
            {t('tags', `${base}/-/tags`, 'Tags')}
            {t('compare', `${base}/-/compare`, 'Compare')}
          </>
        )}
        {canAdmin && t('settings', `${base}/-/settings`, 'Settings')}
      </nav>
    </>
  );
}

/** `repo / dir / file` links for a path at a revision. */
function Crumbs({ row, rev, path }: { row: RepoRow; rev: string; path: string }) {
  const base = repoHref(row);
  const parts = path ? path.split('/') : [];
  return (
    <div class="crumbs">
      <span class="muted">{rev}</span> : <a href={`${base}/-/tree/${enc(rev)}`}>{displayName(row).split('/').pop()}</a>
      {parts.map((p, i) => (
        <>
          {' / '}
          {i === parts.length - 1 ? <b>{p}</b> : <a href={`${base}/-/tree/${enc(rev)}/${enc(parts.slice(0, i + 1).join('/'))}`}>{p}</a>}
        </>
      ))}
    </div>
  );
}

/** The latest commit line above a listing or file. */
function LastCommit({ row, commit }: { row: RepoRow; commit: CommitInfo | undefined }) {
  if (!commit) return null;
  return (
    <>
      <b>{commit.author.name}</b>
      <a href={`${repoHref(row)}/-/commit/${commit.sha}`}>{commit.message.split('\n')[0]}</a>
      <span class="sp" />
      <a class="sha" href={`${repoHref(row)}/-/commit/${commit.sha}`}>
        {commit.sha.slice(0, 10)}
      </a>
      <span class="muted">{formatDate(commit.committer.date)}</span>
    </>
  );
}

export interface TreeView {
  row: RepoRow;
  rev: string;
  path: string;
  items: TreeItem[];
  total: number;
  offset: number;
  limit: number;
  commit: CommitInfo | undefined;
  /** the folder's README: Markdown rendered and sanitised, or plain text */
  readme: { name: string; html: SafeHtml } | { name: string; text: string } | undefined;
}

/** A folder listing, paged, with its README. */
function TreeBox({ v }: { v: TreeView }) {
  const base = repoHref(v.row);
  const at = (name: string) => (v.path ? `${v.path}/${name}` : name);
  return (
    <>
      <div class="box">
        <div class="hd">
          <LastCommit row={v.row} commit={v.commit} />
        </div>
        <table class="list" id="tree">
          <tbody>
            {v.path && v.offset === 0 && (
              <tr>
                <td colSpan={2}>
                  <a href={`${base}/-/tree/${enc(v.rev)}/${enc(v.path.split('/').slice(0, -1).join('/'))}`.replace(/\/$/, '')}>..</a>
                </td>
              </tr>
            )}
            {v.items.map((i) => (
              <tr>
                <td>
                  <span class={`ico ${i.kind === 'dir' ? 'd' : i.kind === 'submodule' ? 's' : 'f'}`} />
                  {i.kind === 'submodule' ? (
                    <span>
                      {i.name} <span class="muted sha">@ {i.oid.slice(0, 10)}</span>
                    </span>
                  ) : (
                    <a href={`${base}/-/${i.kind === 'dir' ? 'tree' : 'blob'}/${enc(v.rev)}/${enc(at(i.name))}`}>{i.name}</a>
                  )}
                </td>
                <td class="num">{i.kind === 'symlink' ? 'symlink' : i.executable ? 'executable' : ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {v.total > v.limit && (
        <div class="notice">
          This folder has {v.total.toLocaleString('en')} entries; {v.limit.toLocaleString('en')} are shown per page.
        </div>
      )}
      <Pager base={`${base}/-/tree/${enc(v.rev)}${v.path ? `/${enc(v.path)}` : ''}`} offset={v.offset} limit={v.limit} total={v.total} />
      {v.readme && (
        <div class="box" id="readme">
          <div class="hd">
            <b>{v.readme.name}</b>
          </div>
          {'html' in v.readme ? <Raw class="markdown" html={v.readme.html} /> : <pre class="msg">{v.readme.text}</pre>}
        </div>
      )}
    </>
  );
}

export interface CloneUrls {
  http: string;
  ssh: string | undefined;
}

/** A repository's front page: clone URLs, the root folder, the README. */
export function SummaryPage({ ctx, v, clone, canAdmin, empty, hg, branches, tags }: { ctx: Ctx; v: TreeView | undefined; clone: CloneUrls; canAdmin: boolean; empty: boolean; hg: boolean; branches: number; tags: number }) {
  const row = v?.row;
  return (
    <Layout ctx={ctx} title={displayName(row!)}>
      <RepoHeader row={row!} tab="code" canAdmin={canAdmin} />
      <div class="box">
        <div class="hd">
          <b>Clone</b>
          <span class="muted">{hg ? 'Mercurial' : `${branches} branches · ${tags} tags`}</span>
          <span class="sp" />
          {!empty && (
            <>
              <a href={`${repoHref(row!)}/-/archive/${enc(v!.rev)}.tar.gz`}>tar.gz</a>
              <a href={`${repoHref(row!)}/-/archive/${enc(v!.rev)}.zip`}>zip</a>
            </>
          )}
        </div>
        <div class="pad8">
          <div class="clone">
            <span>HTTP</span>
            <input type="text" id="clone-http" value={clone.http} readOnly />
            <button type="button" data-copy="clone-http">
              Copy
            </button>
          </div>
          {clone.ssh && (
            <div class="clone">
              <span>SSH</span>
              <input type="text" id="clone-ssh" value={clone.ssh} readOnly />
              <button type="button" data-copy="clone-ssh">
                Copy
              </button>
            </div>
          )}
        </div>
      </div>
      {hg ? (
        <div class="notice">
          This is a Mercurial repository. Its files and history are not shown in the web pages yet: clone it with <code>hg clone {clone.http}</code>
        </div>
      ) : empty || !v ? (
        <div class="notice">
          This repository is empty. Push to it: <code>git push {clone.http} {row!.default_branch}</code>
        </div>
      ) : (
        <TreeBox v={v} />
      )}
    </Layout>
  );
}

/** A folder at a revision. */
export function TreePage({ ctx, v, canAdmin }: { ctx: Ctx; v: TreeView; canAdmin: boolean }) {
  return (
    <Layout ctx={ctx} title={`${v.path || '/'} · ${displayName(v.row)}`}>
      <RepoHeader row={v.row} tab="code" canAdmin={canAdmin} />
      <Crumbs row={v.row} rev={v.rev} path={v.path} />
      <TreeBox v={v} />
    </Layout>
  );
}

export interface BlobView {
  row: RepoRow;
  rev: string;
  path: string;
  size: number;
  commit: CommitInfo | undefined;
  /** the text as HTML (from highlight.js, or escaped), undefined for images and binaries */
  code: CodeHtml | undefined;
  binary: boolean;
  image: boolean;
  truncatedAt: number | undefined;
  markdown: SafeHtml | undefined;
}

/** A file: highlighted lines with anchors, raw and download links; images shown, binaries linked. */
export function BlobPage({ ctx, v, canAdmin }: { ctx: Ctx; v: BlobView; canAdmin: boolean }) {
  const base = repoHref(v.row);
  const raw = `${base}/-/raw/${enc(v.rev)}/${enc(v.path)}`;
  return (
    <Layout ctx={ctx} title={`${v.path} · ${displayName(v.row)}`}>
      <RepoHeader row={v.row} tab="code" canAdmin={canAdmin} />
      <Crumbs row={v.row} rev={v.rev} path={v.path} />
      <div class="box">
        <div class="hd">
          <LastCommit row={v.row} commit={v.commit} />
        </div>
        <div class="hd">
          <span>
            {v.code ? `${v.code.lines.toLocaleString('en')} lines · ` : ''}
            {formatBytes(v.size)}
          </span>
          <span class="sp" />
          <a href={raw} id="raw-link">
            Raw
          </a>
          <a href={`${raw}?download=1`}>Download</a>
          <a href={`${base}/-/commits/${enc(v.rev)}?path=${encodeURIComponent(v.path)}`}>History</a>
        </div>
        {v.truncatedAt !== undefined && (
          <div class="notice m8">
            The file is {formatBytes(v.size)}; the first {formatBytes(v.truncatedAt)} are shown. <a href={raw}>View the whole file</a>.
          </div>
        )}
        {v.code && !v.code.highlighted && v.code.lines > 0 && !v.markdown && <div class="muted pad4">Plain text (highlighting is off for files this large or of this type).</div>}
        {v.markdown ? (
          <Raw class="markdown" html={v.markdown} />
        ) : v.image ? (
          <div class="pad16">
            <img src={raw} alt={v.path} class="full" />
          </div>
        ) : v.binary ? (
          <p class="pad">
            Binary file not shown. <a href={`${raw}?download=1`}>Download it</a>.
          </p>
        ) : (
          <div class="blob">
            <Raw tag="pre" class="ln" html={v.code!.gutter} />
            <Raw tag="pre" class="code hljs" id="code" html={v.code!.code} />
          </div>
        )}
      </div>
    </Layout>
  );
}

/** History lines: subject, author, date, id. */
function LogList({ row, entries }: { row: RepoRow; entries: LogEntry[] }) {
  const base = repoHref(row);
  return (
    <table class="list" id="commits">
      <tbody>
        {entries.map((e) => (
          <tr>
            <td>
              <a href={`${base}/-/commit/${e.sha}`}>{e.subject || '(no message)'}</a>
              <div class="muted">
                {e.authorName} · {formatDate(e.authorTime)}
              </div>
            </td>
            <td class="num">
              <a class="sha" href={`${base}/-/commit/${e.sha}`}>
                {e.sha.slice(0, 10)}
              </a>{' '}
              <a href={`${base}/-/tree/${e.sha}`} title="Browse the files at this commit">
                files
              </a>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** A branch's (or revision's) history, paged, optionally for one path. */
export function CommitsPage({ ctx, row, rev, path, entries, offset, limit, more, canAdmin }: { ctx: Ctx; row: RepoRow; rev: string; path: string; entries: LogEntry[]; offset: number; limit: number; more: boolean; canAdmin: boolean }) {
  const base = `${repoHref(row)}/-/commits/${enc(rev)}${path ? `?path=${encodeURIComponent(path)}` : ''}`;
  return (
    <Layout ctx={ctx} title={`Commits · ${displayName(row)}`}>
      <RepoHeader row={row} tab="commits" canAdmin={canAdmin} />
      <form method="get" action={`${repoHref(row)}/-/commits/${enc(rev)}`} class="box">
        <div class="hd">
          <span>
            History of <b>{rev}</b>
            {path && (
              <>
                {' '}
                for <code>{path}</code>
              </>
            )}
          </span>
          <span class="sp" />
          <input type="text" name="path" value={path} placeholder="Only commits touching this path" aria-label="Path filter" />
          <button type="submit">Filter</button>
        </div>
        {entries.length === 0 ? <p class="muted pad">No commits.</p> : <LogList row={row} entries={entries} />}
      </form>
      <Pager base={base} offset={offset} limit={limit} more={more} />
    </Layout>
  );
}

/** A unified diff, file by file, with a note when it was cut short. */
export function DiffView({ diff, more }: { diff: Diff; more: string }) {
  return (
    <>
      <p class="stat">
        {diff.files.length} files changed, <span class="a">+{diff.files.reduce((n, f) => n + f.additions, 0)}</span> <span class="d">−{diff.files.reduce((n, f) => n + f.deletions, 0)}</span>
      </p>
      {diff.files.map((f) => (
        <div class="box diff-file">
          <div class="hd">
            <b class="mono">{f.status === 'renamed' || f.status === 'copied' ? `${f.oldPath} → ${f.newPath}` : (f.newPath ?? f.oldPath)}</b>
            <span class="muted">{f.status}</span>
            <span class="sp" />
            <span class="stat">
              <span class="a">+{f.additions}</span> <span class="d">−{f.deletions}</span>
            </span>
          </div>
          {f.binary ? (
            <p class="muted pad">
              Binary file.
            </p>
          ) : (
            f.lines.length > 0 && (
              <table class="diff">
                <tbody>
                  {f.lines.map((l) => (
                    <tr class={l.kind}>
                      <td class="o">{l.oldNo ?? ''}</td>
                      <td class="n">{l.newNo ?? ''}</td>
                      <td>{l.kind === 'add' ? `+${l.text}` : l.kind === 'del' ? `-${l.text}` : l.kind === 'ctx' ? ` ${l.text}` : l.text}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )
          )}
        </div>
      ))}
      {diff.truncated && (
        <div class="notice" id="diff-truncated">
          This diff is too large to show whole. <a href={more}>See the full patch</a>.
        </div>
      )}
    </>
  );
}

/** One commit: message, people, parents, its diff. */
export function CommitPage({ ctx, row, commit, diff, canAdmin }: { ctx: Ctx; row: RepoRow; commit: CommitInfo; diff: Diff; canAdmin: boolean }) {
  const base = repoHref(row);
  const [subject, ...body] = commit.message.split('\n');
  return (
    <Layout ctx={ctx} title={`${subject} · ${displayName(row)}`}>
      <RepoHeader row={row} tab="commits" canAdmin={canAdmin} />
      <div class="box">
        <div class="hd">
          <b id="commit-subject">{subject}</b>
          <span class="sp" />
          <a href={`${base}/-/tree/${commit.sha}`}>Browse files</a>
          <a href={`${base}/-/commit/${commit.sha}.patch`}>Patch</a>
        </div>
        {body.join('\n').trim() && <pre class="msg">{body.join('\n').trim()}</pre>}
        <div class="pad8">
          <div>
            <b>{commit.author.name}</b> &lt;{commit.author.email}&gt; authored {formatDate(commit.author.date)}
            {commit.committer.name !== commit.author.name && (
              <span class="muted">
                {' '}
                · {commit.committer.name} committed {formatDate(commit.committer.date)}
              </span>
            )}
          </div>
          <div class="muted">
            commit <span class="sha">{commit.sha}</span>
            {commit.parents.map((p) => (
              <>
                {' '}
                · parent{' '}
                <a class="sha" href={`${base}/-/commit/${p}`}>
                  {p.slice(0, 10)}
                </a>
              </>
            ))}
          </div>
        </div>
      </div>
      <DiffView diff={diff} more={`${base}/-/commit/${commit.sha}.patch`} />
    </Layout>
  );
}

/** Compare two revisions: a form, the commits, the diff from their merge base. */
export function ComparePage({
  ctx,
  row,
  baseRev,
  headRev,
  result,
  canAdmin,
}: {
  ctx: Ctx;
  row: RepoRow;
  baseRev: string;
  headRev: string;
  result: { commits: LogEntry[]; more: boolean; diff: Diff; unrelated: boolean } | undefined;
  canAdmin: boolean;
}) {
  const base = repoHref(row);
  return (
    <Layout ctx={ctx} title={`Compare · ${displayName(row)}`}>
      <RepoHeader row={row} tab="compare" canAdmin={canAdmin} />
      <form method="get" action={`${base}/-/compare`} class="box">
        <div class="hd">
          <input type="text" name="from" value={baseRev} placeholder="base" aria-label="Base revision" />
          <span>...</span>
          <input type="text" name="to" value={headRev} placeholder="head" aria-label="Head revision" />
          <button type="submit">Compare</button>
        </div>
      </form>
      {result && (
        <>
          {result.unrelated && <div class="notice">These revisions have no common ancestor.</div>}
          <div class="box">
            <div class="hd">
              <b>
                {result.commits.length}
                {result.more ? '+' : ''} commits
              </b>
            </div>
            {result.commits.length > 0 && <LogList row={row} entries={result.commits} />}
          </div>
          <DiffView diff={result.diff} more={`${base}/-/commits/${enc(headRev)}`} />
        </>
      )}
    </Layout>
  );
}

/** Branches or tags with their latest commits. */
export function RefsPage({ ctx, row, kind, items, total, offset, limit, canAdmin }: { ctx: Ctx; row: RepoRow; kind: 'branches' | 'tags'; items: RefItem[]; total: number; offset: number; limit: number; canAdmin: boolean }) {
  const base = repoHref(row);
  return (
    <Layout ctx={ctx} title={`${kind === 'branches' ? 'Branches' : 'Tags'} · ${displayName(row)}`}>
      <RepoHeader row={row} tab={kind} canAdmin={canAdmin} />
      <div class="box">
        {items.length === 0 ? (
          <p class="muted pad">
            No {kind}.
          </p>
        ) : (
          <table class="list" id={kind}>
            <tbody>
              {items.map((i) => (
                <tr>
                  <td>
                    <a href={`${base}/-/tree/${enc(i.name)}`}>
                      <b>{i.name}</b>
                    </a>{' '}
                    {i.isDefault && <span class="muted">default</span>}
                    {i.commit && (
                      <div class="muted">
                        {i.commit.message.split('\n')[0]} · {i.commit.author.name} · {formatDate(i.commit.committer.date)}
                      </div>
                    )}
                  </td>
                  <td class="num">
                    <a href={`${base}/-/commits/${enc(i.name)}`}>history</a> · <a href={`${base}/-/archive/${enc(i.name)}.tar.gz`}>tar.gz</a> · <a href={`${base}/-/archive/${enc(i.name)}.zip`}>zip</a>
                    {kind === 'branches' && !i.isDefault && (
                      <>
                        {' '}
                        · <a href={`${base}/-/compare/${enc(row.default_branch)}...${enc(i.name)}`}>compare</a>
                      </>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
      <Pager base={`${base}/-/${kind}`} offset={offset} limit={limit} total={total} />
    </Layout>
  );
}
