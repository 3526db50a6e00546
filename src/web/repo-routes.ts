import type { FastifyReply, FastifyRequest } from 'fastify';
import { h } from 'preact';
import { parseRepoPerm, type Principal } from '../domain/access.ts';
import { AccessDenied, invalid, isAccessDenied, isDomainError, notFound } from '../domain/errors.ts';
import type { Resolved } from '../services/browse.ts';
import type { RepoRow } from '../services/types.ts';
import { messagePage } from './errors.ts';
import { atom, rss } from './feed.ts';
import { type Explained, type Flash, PermissionsPage, RepoSettingsPage, WebhooksPage } from './pages/admin.tsx';
import { type Ctx, enc, repoHref } from './pages/layout.tsx';
import { BlobPage, type BlobView, CommitPage, CommitsPage, ComparePage, RefsPage, SummaryPage, TreePage, type TreeView } from './pages/repo.tsx';
import { type CodeHtml, codeHtml, languageOf, looksBinary, renderMarkdown } from './render.ts';
import { html, redirect } from './reply.ts';
import type { WebDeps } from './routes.ts';
import { webPrincipalOf } from './session.ts';

/** Page sizes and bounds of what a page shows (the HTML stays well under 200 KB before a file or diff). */
export const LIMITS = {
  treePage: 500,
  logPage: 50,
  refsPage: 100,
  /** bytes of a file a page shows */
  blobShown: 1 << 20,
  /** characters of a file highlight.js gets (beyond: escaped plain text): about 60 ms of highlighting */
  highlight: 128 * 1024,
  readme: 512 * 1024,
};

/** The parts of a repository URL: `/<name…>[/-/<action>/<rest…>]`, decoded. */
export interface RepoPath {
  repo: string;
  action: string | undefined;
  rest: string[];
}

/** Splits a decoded path into the repository and the action after `/-/`; undefined for a malformed path. */
export function parseRepoPath(path: string): RepoPath | undefined {
  const raw = path.split('/').slice(1);
  let segs: string[];
  try {
    segs = raw.map((s) => decodeURIComponent(s));
  } catch {
    return undefined;
  }
  if (segs.some((s) => s.includes('\0'))) return undefined;
  const dash = segs.indexOf('-');
  const repoSegs = dash < 0 ? segs : segs.slice(0, dash);
  if (repoSegs.length === 0 || repoSegs.some((s) => s === '')) return undefined;
  const after = dash < 0 ? [] : segs.slice(dash + 1);
  return { repo: repoSegs.join('/'), action: after[0], rest: after.slice(1).filter((s, i, a) => s !== '' || i < a.length - 1) };
}

/** A form's fields (the web's parser makes each a string). */
type Form = Record<string, string | undefined>;

/** Runs a form's action; a refusal of the request itself (access) propagates, any other domain error becomes the page's message. */
export async function attempt(fn: () => Promise<string | Flash>): Promise<Flash> {
  try {
    const r = await fn();
    return typeof r === 'string' ? { kind: 'ok', text: r } : r;
  } catch (e) {
    if (isAccessDenied(e) || !isDomainError(e)) throw e;
    return { kind: 'error', text: e.message };
  }
}

/**
 * Every URL below a repository: its pages (GET) and its settings forms (POST). The repository
 * is resolved through the services as the caller on every request; a hidden one is the same
 * 404 page as a missing one.
 */
export async function repoRoute(req: FastifyRequest, reply: FastifyReply, deps: WebDeps, ctx: () => Ctx, rp: RepoPath): Promise<FastifyReply> {
  const p = webPrincipalOf(req);
  const q = req.query as Record<string, string | undefined>;
  const offset = Math.min(Number(q.offset) || 0, 2 ** 31 - 1);
  const { browse } = deps;
  const post = req.method === 'POST';
  const action = rp.action;

  // The feeds first: the only pages `api_key` opens (seed 002's "API access for web views").
  if (!post && (action === 'feed.atom' || action === 'feed.rss')) return feed(req, reply, deps, rp, action === 'feed.atom' ? 'atom' : 'rss');

  if (action === undefined) {
    if (post) throw notFound('Not found');
    // `/<name>.git` is a clone URL pasted into a browser: the summary it names
    if (rp.repo.endsWith('.git')) {
      const name = rp.repo.slice(0, -4);
      await browse.open(p, name);
      return redirect(reply, `/${enc(name)}`);
    }
    return summary(req, reply, deps, ctx(), rp.repo);
  }
  if (action === 'settings') return settings(req, reply, deps, ctx, rp, req.body as Form | undefined);
  if (post) throw notFound('Not found');
  switch (action) {
    case 'tree':
    case 'blob': {
      const r = await browse.resolve(p, rp.repo, rp.rest);
      const kind = await browse.kindOf(r);
      if (!kind) throw notFound(`Path not found: ${r.path}`);
      // a folder asked as a file (or the reverse) goes where it belongs
      if ((kind === 'tree') !== (action === 'tree')) return redirect(reply, `${repoHref(r.row)}/-/${kind}/${enc(r.rev)}${r.path ? `/${enc(r.path)}` : ''}`);
      return kind === 'tree' ? tree(reply, deps, ctx(), p, r, offset) : blob(reply, deps, ctx(), p, r);
    }
    case 'raw':
      return raw(req, reply, deps, p, await browse.resolve(p, rp.repo, rp.rest), q.download !== undefined);
    case 'commits': {
      const r = await browse.resolve(p, rp.repo, rp.rest);
      const path = (q.path ?? '').trim();
      const norm = path.split('/').filter(Boolean).join('/');
      if (norm.split('/').some((s) => s === '..' || s === '.') || /[\x00-\x1f]/.test(norm)) throw invalid('Invalid path');
      const { entries, more } = await browse.log(p, { dir: r.dir, commit: r.commit, path: norm }, { offset, limit: LIMITS.logPage });
      return html(reply, h(CommitsPage, { ctx: ctx(), row: r.row, rev: r.rev, path: norm, entries, offset, limit: LIMITS.logPage, more, canAdmin: await browse.canAdmin(p, r.row) }));
    }
    case 'commit': {
      const ref = rp.rest.join('/');
      if (ref.endsWith('.patch')) {
        const ac = abortOnClose(reply);
        const { stream, sha } = await browse.patchStream(p, rp.repo, ref.slice(0, -'.patch'.length), ac.signal);
        return reply.type('text/plain; charset=utf-8').header('content-disposition', `inline; filename="${sha.slice(0, 12)}.patch"`).send(stream);
      }
      const { row, commit, diff } = await browse.commit(p, rp.repo, ref);
      return html(reply, h(CommitPage, { ctx: ctx(), row, commit, diff, canAdmin: await browse.canAdmin(p, row) }));
    }
    case 'compare': {
      const spec = rp.rest.join('/');
      const [from, to] = spec.includes('...') ? spec.split('...', 2) : [q.from ?? '', q.to ?? ''];
      const { row } = await browse.openGit(p, rp.repo);
      if (!spec && q.from && q.to) return redirect(reply, `${repoHref(row)}/-/compare/${enc(q.from)}...${enc(q.to)}`);
      const result = from && to ? await browse.compare(p, rp.repo, from, to) : undefined;
      return html(reply, h(ComparePage, { ctx: ctx(), row, baseRev: from ?? '', headRev: to ?? '', result, canAdmin: await browse.canAdmin(p, row) }));
    }
    case 'branches':
    case 'tags': {
      const { row, items, total } = await browse.refs(p, rp.repo, action, { offset, limit: LIMITS.refsPage });
      return html(reply, h(RefsPage, { ctx: ctx(), row, kind: action, items, total, offset, limit: LIMITS.refsPage, canAdmin: await browse.canAdmin(p, row) }));
    }
    case 'archive': {
      const spec = rp.rest.join('/');
      const m = /^(.+)\.(tar\.gz|zip)$/.exec(spec);
      if (!m) throw notFound('Not found');
      const ac = abortOnClose(reply);
      const { stream, filename } = await deps.content.archive(p, rp.repo, m[2] as 'tar.gz' | 'zip', m[1], ac.signal);
      return reply
        .type(m[2] === 'zip' ? 'application/zip' : 'application/gzip')
        .header('content-disposition', `attachment; filename="${filename.replace(/[^A-Za-z0-9._-]/g, '_')}"`)
        .send(stream);
    }
  }
  throw notFound('Not found');
}

/** An AbortController that fires when the client goes away before the answer is out. */
function abortOnClose(reply: FastifyReply): AbortController {
  const ac = new AbortController();
  reply.raw.on('close', () => {
    if (!reply.raw.writableFinished) ac.abort();
  });
  return ac;
}

/** Clone URLs: the public URL when one is configured, else the host the browser used. */
function cloneUrls(req: FastifyRequest, deps: WebDeps, row: RepoRow) {
  const base = deps.publicUrl ?? `${req.protocol}://${req.headers.host ?? 'localhost'}`;
  const name = row.name ?? row.id;
  const sshPort = deps.sshPort();
  let ssh: string | undefined;
  if (sshPort !== undefined) {
    const host = new URL(base).hostname;
    ssh = `ssh://git@${host.includes(':') ? `[${host}]` : host}:${sshPort}/${name}.git`;
  }
  // hg: the repository's own URL (hg clones `/<name>`, and `ssh://host:port/<name>`)
  if (row.type === 'hg') return { http: `${base.replace(/\/$/, '')}/${name}`, ssh: ssh?.replace(/\.git$/, '') };
  return { http: `${base.replace(/\/$/, '')}/${name}.git`, ssh };
}

async function treeView(deps: WebDeps, r: Resolved, offset: number): Promise<TreeView | undefined> {
  const t = await deps.browse.tree(r, { offset, limit: LIMITS.treePage });
  if (!t) return undefined;
  let readme: TreeView['readme'];
  if (t.readme && offset === 0) {
    const bytes = await deps.browse.blobById(r.dir, t.readme.oid, LIMITS.readme);
    if (bytes && !looksBinary(bytes)) {
      const dir = r.path ? `/${enc(r.path)}` : '';
      const isMd = /\.(md|markdown|mkd)$/i.test(t.readme.name);
      const text = bytes.toString('utf8');
      readme = isMd ? { name: t.readme.name, html: renderMarkdown(text, { blob: `${repoHref(r.row)}/-/blob/${enc(r.rev)}${dir}`, raw: `${repoHref(r.row)}/-/raw/${enc(r.rev)}${dir}` }) } : { name: t.readme.name, text };
    }
  }
  return { row: r.row, rev: r.rev, path: r.path, items: t.items, total: t.total, offset, limit: LIMITS.treePage, commit: await deps.browse.commitInfo(r), readme };
}

async function summary(req: FastifyRequest, reply: FastifyReply, deps: WebDeps, ctx: Ctx, repo: string): Promise<FastifyReply> {
  const p = webPrincipalOf(req);
  const { row } = await deps.browse.open(p, repo);
  const clone = cloneUrls(req, deps, row);
  const canAdmin = await deps.browse.canAdmin(p, row);
  // Mercurial: the clone URLs and a note; its files and history are not read by the pages yet
  if (row.type === 'hg') return html(reply, h(SummaryPage, { ctx, v: emptyView(row), clone, canAdmin, empty: true, hg: true, branches: 0, tags: 0 }));
  const refs = await deps.browse.refCounts(p, repo);
  let v: TreeView | undefined;
  try {
    v = await treeView(deps, await deps.browse.resolve(p, repo, []), 0);
  } catch (e) {
    if (!(isDomainError(e) && e.kind === 'notFound') || isAccessDenied(e)) throw e;
    v = undefined; // an empty repository: its default branch has no commit yet
  }
  const page = h(SummaryPage, { ctx, v: v ?? emptyView(row), clone, canAdmin, empty: !v, hg: false, branches: refs.branches, tags: refs.tags });
  return html(reply, page);
}

const emptyView = (row: RepoRow): TreeView => ({ row, rev: row.default_branch, path: '', items: [], total: 0, offset: 0, limit: LIMITS.treePage, commit: undefined, readme: undefined });

async function tree(reply: FastifyReply, deps: WebDeps, ctx: Ctx, p: Principal, r: Resolved, offset: number): Promise<FastifyReply> {
  const v = await treeView(deps, r, offset);
  if (!v) throw notFound(`Path not found: ${r.path}`);
  return html(reply, h(TreePage, { ctx, v, canAdmin: await deps.browse.canAdmin(p, r.row) }));
}

const IMAGE_TYPES: Record<string, { type: string; magic: (b: Buffer) => boolean }> = {
  png: { type: 'image/png', magic: (b) => b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) },
  jpg: { type: 'image/jpeg', magic: (b) => b[0] === 0xff && b[1] === 0xd8 },
  jpeg: { type: 'image/jpeg', magic: (b) => b[0] === 0xff && b[1] === 0xd8 },
  gif: { type: 'image/gif', magic: (b) => b.subarray(0, 4).toString('latin1') === 'GIF8' },
  webp: { type: 'image/webp', magic: (b) => b.subarray(0, 4).toString('latin1') === 'RIFF' && b.subarray(8, 12).toString('latin1') === 'WEBP' },
};

/** The image type a file may be served as: by its extension and its first bytes, never SVG (it can hold script). */
function imageType(path: string, head: Buffer): string | undefined {
  const ext = path.slice(path.lastIndexOf('.') + 1).toLowerCase();
  const t = IMAGE_TYPES[ext];
  return t && t.magic(head) ? t.type : undefined;
}

/** Highlighted files by blob id and language, least recently used first; at most HIGHLIGHT_CACHE_BYTES of HTML. */
const highlighted = new Map<string, CodeHtml>();
const HIGHLIGHT_CACHE_BYTES = 32 << 20;
let highlightedBytes = 0;
function remember(key: string, code: CodeHtml): void {
  highlighted.set(key, code);
  highlightedBytes += code.code.__html.length + code.gutter.__html.length;
  for (const [k, v] of highlighted) {
    if (highlightedBytes <= HIGHLIGHT_CACHE_BYTES) break;
    highlighted.delete(k);
    highlightedBytes -= v.code.__html.length + v.gutter.__html.length;
  }
}

async function blob(reply: FastifyReply, deps: WebDeps, ctx: Ctx, p: Principal, r: Resolved): Promise<FastifyReply> {
  const b = await deps.browse.blob(r, LIMITS.blobShown);
  if (!b) throw notFound(`Path not found: ${r.path}`);
  const name = r.path.split('/').pop() ?? '';
  const image = !!imageType(name, b.content);
  const binary = !image && looksBinary(b.content);
  let code: BlobView['code'];
  let markdown: BlobView['markdown'];
  if (!image && !binary) {
    const text = b.content.toString('utf8');
    if (/\.(md|markdown|mkd)$/i.test(name) && !b.truncated && (reply.request.query as { plain?: string }).plain === undefined) {
      const dir = r.path.includes('/') ? `/${enc(r.path.slice(0, r.path.lastIndexOf('/')))}` : '';
      markdown = renderMarkdown(text, { blob: `${repoHref(r.row)}/-/blob/${enc(r.rev)}${dir}`, raw: `${repoHref(r.row)}/-/raw/${enc(r.rev)}${dir}` });
    }
    const lang = languageOf(name);
    const key = `${b.oid}:${lang ?? ''}`;
    code = highlighted.get(key);
    if (code) {
      highlighted.delete(key); // most recently used last
      highlighted.set(key, code);
    } else {
      code = codeHtml(text, lang, LIMITS.highlight);
      // a blob never changes: its highlighted HTML is kept for the next visitor (this node only, bounded)
      if (code.highlighted) remember(key, code);
    }
  }
  const v: BlobView = { row: r.row, rev: r.rev, path: r.path, size: b.size, commit: await deps.browse.commitInfo(r), code, binary, image, truncatedAt: b.truncated ? LIMITS.blobShown : undefined, markdown };
  return html(reply, h(BlobPage, { ctx, v, canAdmin: await deps.browse.canAdmin(p, r.row) }));
}

/**
 * A file's bytes. Never HTML from this origin: text as `text/plain`, the image types checked by
 * their bytes as themselves, anything else as a download; with a sandboxing CSP and nosniff.
 */
async function raw(req: FastifyRequest, reply: FastifyReply, deps: WebDeps, p: Principal, r: Resolved, download: boolean): Promise<FastifyReply> {
  const ac = abortOnClose(reply);
  const s = await deps.browse.rawStream(p, r, ac.signal);
  if (!s) throw notFound(`Path not found: ${r.path}`);
  const name = (r.path.split('/').pop() ?? 'file').replace(/[^A-Za-z0-9._-]/g, '_');
  const image = imageType(name, s.head);
  const binary = !image && looksBinary(s.head);
  void reply.header('content-security-policy', "default-src 'none'; sandbox");
  if (download || binary) void reply.header('content-disposition', `attachment; filename="${name}"`);
  else void reply.header('content-disposition', `inline; filename="${name}"`);
  void reply.header('cache-control', /^[0-9a-f]{40,64}$/.test(r.rev) ? 'private, max-age=86400, immutable' : 'private, no-cache');
  void req;
  return reply.type(image ?? (binary ? 'application/octet-stream' : 'text/plain; charset=utf-8')).send(s.stream);
}

/**
 * Atom or RSS of a branch's recent commits. Read with the session, or with `?api_key=` of a
 * user (never an identity token) that may read the repository: the only page the key opens.
 */
async function feed(req: FastifyRequest, reply: FastifyReply, deps: WebDeps, rp: RepoPath, kind: 'atom' | 'rss'): Promise<FastifyReply> {
  const q = req.query as Record<string, string | undefined>;
  let p: Principal = webPrincipalOf(req);
  void reply.header('referrer-policy', 'no-referrer').header('cache-control', 'private, no-store');
  if (q.api_key !== undefined) {
    const byKey = await deps.users.principalForToken(q.api_key, req.ip);
    if (!byKey || byKey.kind !== 'user') return reply.status(401).type('text/plain; charset=utf-8').send('Invalid api_key\n');
    p = byKey;
  }
  const branch = q.branch;
  let r: Resolved;
  try {
    r = await deps.browse.resolve(p, rp.repo, branch ? branch.split('/') : []);
  } catch (e) {
    if (isAccessDenied(e) || (isDomainError(e) && e.kind === 'notFound')) {
      // a Mercurial repository: the web's error mapper says so, as on every other page
      if (isDomainError(e) && e.code === 'UNSUPPORTED_REPOSITORY_TYPE') throw e;
      // an empty repository has an empty feed; a hidden or missing one is a plain 404
      if (!isAccessDenied(e) && !branch) {
        const { row } = await deps.browse.open(p, rp.repo);
        return sendFeed(req, reply, deps, row, row.default_branch, [], kind);
      }
      return reply.status(404).type('text/plain; charset=utf-8').send('Not found\n');
    }
    throw e;
  }
  const { entries } = await deps.browse.log(p, { dir: r.dir, commit: r.commit, path: '' }, { offset: 0, limit: 20 }, true);
  return sendFeed(req, reply, deps, r.row, r.rev, entries, kind);
}

function sendFeed(req: FastifyRequest, reply: FastifyReply, deps: WebDeps, row: RepoRow, branch: string, entries: Awaited<ReturnType<WebDeps['browse']['log']>>['entries'], kind: 'atom' | 'rss'): FastifyReply {
  const base = (deps.publicUrl ?? `${req.protocol}://${req.headers.host ?? 'localhost'}`).replace(/\/$/, '');
  const repoUrl = `${base}${repoHref(row)}`;
  const input = { repoUrl, selfUrl: `${repoUrl}/-/feed.${kind}${branch !== row.default_branch ? `?branch=${encodeURIComponent(branch)}` : ''}`, title: row.name ?? row.id, branch, entries };
  return reply.type(kind === 'atom' ? 'application/atom+xml; charset=utf-8' : 'application/rss+xml; charset=utf-8').send(kind === 'atom' ? atom(input) : rss(input));
}

// ---- settings (repository admins) -------------------------------------------------

async function settings(req: FastifyRequest, reply: FastifyReply, deps: WebDeps, ctx: () => Ctx, rp: RepoPath, form: Form | undefined): Promise<FastifyReply> {
  const p = webPrincipalOf(req);
  if (p.kind !== 'user') {
    // a visitor: the repository must not be shown to exist; signed-in users get the decision's answer
    await deps.browse.open(p, rp.repo);
    throw new AccessDenied('notFound', 'repo', 'repo:admin', rp.repo, 'Not found');
  }
  const { repos, grants, webhooks } = deps;
  // read first, then admin: a hidden repository is a 404, a readable one without admin a 403
  const { row } = await deps.browse.open(p, rp.repo);
  await repos.get(p, row.id, 'repo:admin');
  const [section, ...rest] = rp.rest;
  const post = req.method === 'POST';
  const f = form ?? {};
  let flash: Flash | undefined;
  if (!section || section === 'description' || section === 'visibility' || section === 'default-branch' || section === 'delete') {
    if (post) {
      if (section === 'delete') {
        if ((f.confirm ?? '') !== (row.name ?? row.id)) flash = { kind: 'error', text: 'Type the repository name to confirm' };
        else {
          await repos.delete(p, row.id);
          return redirect(reply, '/');
        }
      } else
        flash = await attempt(async () => {
          if (section === 'description') await repos.setDescription(p, row.id, f.description ?? null);
          else if (section === 'visibility') {
            if (f.visibility !== 'public' && f.visibility !== 'private') throw invalid('visibility must be public or private');
            await repos.setVisibility(p, row.id, f.visibility);
          } else if (section === 'default-branch') await repos.setDefaultBranch(p, row.id, f.branch ?? '');
          else throw notFound('Not found');
          return 'Saved.';
        });
    }
    const fresh = await repos.get(p, row.id, 'repo:admin');
    const { items } = fresh.type === 'git' ? await deps.browse.refs(p, row.id, 'branches', { offset: 0, limit: 1000 }) : { items: [] };
    return html(reply.status(flash?.kind === 'error' ? 400 : 200), h(RepoSettingsPage, { ctx: ctx(), row: fresh, branches: items.map((i) => i.name), flash }));
  }
  if (section === 'permissions') {
    if (post) {
      flash = await attempt(async () => {
        const [who, name, verb] = rest;
        if (who === 'users' && !name) {
          const level = parseRepoPerm(f.perm);
          if (level === undefined) throw invalid('perm must be repository.none, read, write or admin');
          await grants.grantUser(p, row.id, f.username ?? '', level);
          return `Granted ${f.perm} to ${f.username}.`;
        }
        if (who === 'groups' && !name) {
          const level = parseRepoPerm(f.perm);
          if (level === undefined) throw invalid('perm must be repository.none, read, write or admin');
          await grants.grantGroup(p, row.id, f.group ?? '', level);
          return `Granted ${f.perm} to group ${f.group}.`;
        }
        if (who === 'users' && name && verb === 'revoke') {
          await grants.revokeUser(p, row.id, name);
          return `Revoked ${name}'s grant.`;
        }
        if (who === 'groups' && name && verb === 'revoke') {
          await grants.revokeGroup(p, row.id, name);
          return `Revoked group ${name}'s grant.`;
        }
        throw notFound('Not found');
      });
    }
    const { users, groups } = await grants.members(p, row.id);
    // `?explain=<username>`: that user's effective level here and the facts that made it
    const asked = (req.query as { explain?: unknown }).explain;
    let explained: Explained | undefined;
    if (!post && typeof asked === 'string' && asked !== '') {
      try {
        const e = await grants.explain(p, row.id, asked.slice(0, 256));
        explained = { username: e.user.username, level: e.level, facts: e.facts };
      } catch (err) {
        if (isAccessDenied(err) || !isDomainError(err)) throw err;
        flash = { kind: 'error', text: err.message };
      }
    }
    return html(reply.status(flash?.kind === 'error' ? 400 : 200), h(PermissionsPage, { ctx: ctx(), row, users, groups, flash, explained }));
  }
  if (section === 'webhooks') {
    if (post) {
      flash = await attempt(async () => {
        const [id, sub, deliveryId, verb] = rest;
        if (!id) {
          const branches = (f.branches ?? '').split(',').map((s) => s.trim()).filter(Boolean);
          await webhooks.create(p, row.id, { endpoint: f.endpoint ?? '', branches: branches.length ? branches : null });
          return 'Webhook added.';
        }
        if (sub === 'delete') {
          await webhooks.delete(p, row.id, id);
          return 'Webhook deleted.';
        }
        if (sub === 'deliveries' && deliveryId && verb === 'redeliver') {
          await webhooks.redeliver(p, row.id, id, deliveryId);
          return 'Delivery queued again.';
        }
        throw notFound('Not found');
      });
    }
    const { triggers } = await webhooks.list(p, row.id);
    const deliveries = new Map<string, Awaited<ReturnType<typeof webhooks.deliveries>>['deliveries']>();
    for (const t of triggers) deliveries.set(t.id, (await webhooks.deliveries(p, row.id, t.id)).deliveries.slice(0, 20));
    return html(reply.status(flash?.kind === 'error' ? 400 : 200), h(WebhooksPage, { ctx: ctx(), row, triggers, deliveries, flash }));
  }
  return messagePage(req, reply, 404, 'There is nothing here.');
}
