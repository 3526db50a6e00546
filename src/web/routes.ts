import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { h } from 'preact';
import { parseIdentityAccess, type Principal } from '../domain/access.ts';
import { invalid, isRateLimited } from '../domain/errors.ts';
import type { Browse } from '../services/browse.ts';
import type { Grants } from '../services/grants.ts';
import type { Groups } from '../services/groups.ts';
import type { Identities } from '../services/identities.ts';
import type { RepoContent } from '../services/repo-content.ts';
import type { Repos } from '../services/repos.ts';
import type { Sessions } from '../services/sessions.ts';
import type { SshKeys } from '../services/ssh-keys.ts';
import type { Users } from '../services/users.ts';
import type { Vms } from '../services/vms.ts';
import type { Webhooks } from '../services/webhooks.ts';
import { ASSETS } from './assets.ts';
import { surfaceConstraint } from './dispatch.ts';
import { messagePage, webErrorHandler } from './errors.ts';
import { type Flash, GroupsPage, IdentitiesPage, IdentityPage, LoginPage, NewRepoPage, SshKeysPage, UsersPage, VmsPage } from './pages/admin.tsx';
import type { Ctx } from './pages/layout.tsx';
import { repoHref } from './pages/layout.tsx';
import { RepoListPage } from './pages/repo.tsx';
import { attempt, parseRepoPath, repoRoute } from './repo-routes.ts';
import { html, redirect, safeLocal } from './reply.ts';
import * as S from './schemas.ts';
import { checkCsrf, clearSessionCookie, csrfFor, presentedSessionToken, resolveSession, setSessionCookie, type WebSessionOptions, webPrincipalOf } from './session.ts';

export interface WebDeps {
  users: Users;
  repos: Repos;
  groups: Groups;
  grants: Grants;
  identities: Identities;
  sshKeys: SshKeys;
  vms: Vms;
  webhooks: Webhooks;
  content: RepoContent;
  browse: Browse;
  sessions: Sessions;
  /** the URL the server is reached at (PALISADE_PUBLIC_URL), for clone URLs and feeds */
  publicUrl: string | undefined;
  /** the SSH port, once SSH listens (undefined: SSH is off) */
  sshPort: () => number | undefined;
  /** cookies are Secure (the public URL is https) */
  secureCookies: boolean;
}

/**
 * The Content-Security-Policy of every page: scripts and styles only from this server's own
 * files (no inline script or style, no eval), images from here or `data:`, no framing, forms
 * posting only here.
 */
export const PAGE_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/** Registers the surface's route constraint on the app's router: before the web routes. */
export function registerWebConstraint(app: FastifyInstance): void {
  app.addConstraintStrategy(surfaceConstraint);
}

/**
 * The web surface: server-rendered pages at `/`, `/-/…` and `/<repo>/-/…` (GitLab's `/-/`
 * convention), feeds, and the administration forms. Its own form parser, session → principal,
 * CSRF check on every POST, security headers, and error mapper (HTML pages).
 */
export async function webRoutes(app: FastifyInstance, deps: WebDeps): Promise<void> {
  const o: WebSessionOptions = { secureCookies: deps.secureCookies };
  app.setErrorHandler(webErrorHandler);
  // HTML forms: each field once, as a string (a repeated field keeps its first value)
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 256 * 1024 }, (_req, body, done) => {
    const out: Record<string, string> = {};
    for (const [k, v] of new URLSearchParams(body as string)) if (!(k in out)) out[k] = v;
    done(null, out);
  });

  app.addHook('onRequest', async (req) => {
    await resolveSession(req, deps.sessions, o);
  });
  // Every form is checked before its handler runs (sign-in and sign-out included).
  app.addHook('preHandler', async (req) => {
    if (req.method === 'POST') checkCsrf(req, (req.body as Record<string, unknown> | undefined)?._csrf, o);
  });
  app.addHook('onSend', async (req, reply) => {
    if (!reply.hasHeader('content-security-policy')) void reply.header('content-security-policy', PAGE_CSP);
    void reply.header('x-content-type-options', 'nosniff');
    void reply.header('x-frame-options', 'DENY');
    void reply.header('cross-origin-opener-policy', 'same-origin');
    if (!reply.hasHeader('referrer-policy')) void reply.header('referrer-policy', 'same-origin');
    if (!reply.hasHeader('cache-control')) void reply.header('cache-control', req.webPrincipal?.kind === 'user' ? 'private, no-store' : 'no-cache');
    void reply.header('vary', 'Cookie, Accept');
  });

  // the CSRF token is made when a form asks for it: a page without forms sets no cookie
  const ctxOf = (req: FastifyRequest, reply: FastifyReply): Ctx => ({
    principal: webPrincipalOf(req),
    get csrf() {
      return csrfFor(req, reply, o);
    },
    here: req.url,
  });
  /** The signed-in user, or undefined after sending the visitor to the sign-in page. */
  const user = (req: FastifyRequest, reply: FastifyReply): Extract<Principal, { kind: 'user' }> | undefined => {
    const p = req.webPrincipal;
    if (p?.kind === 'user') return p;
    void redirect(reply, `/-/login?next=${encodeURIComponent(req.url)}`);
    return undefined;
  };
  const hide = { hide: true };

  app.get('/-/static/:file', { schema: { ...hide, params: S.StaticFile } }, async (req, reply) => {
    const a = ASSETS.get((req.params as { file: string }).file);
    if (!a) return messagePage(req, reply, 404, 'There is nothing here.');
    return reply.type(a.type).header('cache-control', 'public, max-age=31536000, immutable').send(a.body);
  });

  // ---- sign-in ---------------------------------------------------------------------

  app.get('/-/login', { schema: { ...hide, querystring: S.LoginQuery } }, async (req, reply) => {
    const next = safeLocal((req.query as { next?: string }).next ?? '/');
    if (req.webPrincipal?.kind === 'user') return redirect(reply, next);
    return html(reply, h(LoginPage, { ctx: ctxOf(req, reply), next }));
  });

  app.post('/-/login', { schema: { ...hide, body: S.LoginBody } }, async (req, reply) => {
    const b = req.body as { username: string; password: string; next?: string };
    const next = safeLocal(b.next ?? '/');
    try {
      const { token, principal } = await deps.sessions.signIn(b.username, b.password, req.ip);
      // a fresh session on every sign-in: whatever session cookie came with the request is ended
      const old = presentedSessionToken(req, o);
      if (old) await deps.sessions.signOut(old);
      setSessionCookie(req, reply, token, o);
      req.log.info({ user: principal.username }, 'web sign-in');
      return redirect(reply, next);
    } catch (e) {
      if (isRateLimited(e)) {
        void reply.header('retry-after', String(e.retryAfterSeconds));
        return html(reply.status(429), h(LoginPage, { ctx: ctxOf(req, reply), next, error: 'Too many failed attempts; try again later.' }));
      }
      if ((e as { kind?: string }).kind === 'unauthenticated') return html(reply.status(401), h(LoginPage, { ctx: ctxOf(req, reply), next, error: 'Wrong username or password.' }));
      throw e;
    }
  });

  app.post('/-/logout', { schema: { ...hide, body: S.CsrfOnly } }, async (req, reply) => {
    const token = presentedSessionToken(req, o);
    if (token) await deps.sessions.signOut(token);
    clearSessionCookie(req, reply, o);
    return redirect(reply, '/');
  });

  // ---- new repository ---------------------------------------------------------------

  app.get('/-/new', { schema: hide }, async (req, reply) => {
    if (!user(req, reply)) return reply;
    return html(reply, h(NewRepoPage, { ctx: ctxOf(req, reply) }));
  });
  app.post('/-/new', { schema: { ...hide, body: S.NewRepoBody } }, async (req, reply) => {
    const p = user(req, reply);
    if (!p) return reply;
    const b = req.body as { name: string; description?: string; public?: string };
    let created: { name: string | null; id: string } | undefined;
    const flash = await attempt(async () => {
      created = await deps.repos.create(p, { name: b.name.trim(), description: b.description?.trim() || null, public: b.public === '1' });
      return 'Created.';
    });
    if (created) return redirect(reply, repoHref(created));
    return html(reply.status(400), h(NewRepoPage, { ctx: ctxOf(req, reply), flash }));
  });

  // ---- administration: users and groups (server admins) -----------------------------

  const usersPage = async (req: FastifyRequest, reply: FastifyReply, p: Principal, flash?: Flash) =>
    html(reply.status(flash?.kind === 'error' ? 400 : 200), h(UsersPage, { ctx: ctxOf(req, reply), users: await deps.users.list(p), flash }));

  app.get('/-/admin/users', { schema: hide }, async (req, reply) => {
    const p = user(req, reply);
    return p ? usersPage(req, reply, p) : reply;
  });
  app.post('/-/admin/users', { schema: { ...hide, body: S.NewUserBody } }, async (req, reply) => {
    const p = user(req, reply);
    if (!p) return reply;
    const b = req.body as { username: string; email?: string; password?: string; admin?: string };
    const flash = await attempt(async () => {
      const { apiKey } = await deps.users.create(p, { username: b.username.trim(), email: b.email?.trim() || null, password: b.password || null, admin: b.admin === '1' });
      return { kind: 'secret', text: `Created ${b.username.trim()}. Its API key, shown once:`, secret: apiKey };
    });
    return usersPage(req, reply, p, flash);
  });
  app.post('/-/admin/users/:username/:what', { schema: { ...hide, params: S.UserAction, body: S.UserActionBody } }, async (req, reply) => {
    const p = user(req, reply);
    if (!p) return reply;
    const { username, what } = req.params as { username: string; what: 'active' | 'password' | 'api-key' };
    const b = req.body as { active?: string; password?: string };
    const flash = await attempt(async () => {
      if (what === 'active') {
        const active = b.active === '1';
        await deps.users.get(p, username);
        // deactivating ends the user's sessions (Users.createOrUpdate)
        await deps.users.createOrUpdate(p, { username, active });
        return `${username} is now ${active ? 'active' : 'inactive'}.`;
      }
      if (what === 'password') {
        if (!b.password) throw invalid('A new password is required');
        await deps.users.get(p, username);
        // a reset password signs the user out everywhere (Users.createOrUpdate)
        await deps.users.createOrUpdate(p, { username, password: b.password });
        return `${username}'s password was reset; its sessions were ended.`;
      }
      const key = await deps.users.rotateApiKey(p, username);
      return { kind: 'secret', text: `New API key of ${username}, shown once (the old ones no longer work):`, secret: key };
    });
    return usersPage(req, reply, p, flash);
  });

  const groupsPage = async (req: FastifyRequest, reply: FastifyReply, p: Principal, flash?: Flash) =>
    html(reply.status(flash?.kind === 'error' ? 400 : 200), h(GroupsPage, { ctx: ctxOf(req, reply), groups: await deps.groups.list(p), flash }));

  app.get('/-/admin/groups', { schema: hide }, async (req, reply) => {
    const p = user(req, reply);
    return p ? groupsPage(req, reply, p) : reply;
  });
  app.post('/-/admin/groups', { schema: { ...hide, body: S.NewGroupBody } }, async (req, reply) => {
    const p = user(req, reply);
    if (!p) return reply;
    const name = (req.body as { name: string }).name.trim();
    const flash = await attempt(async () => {
      await deps.groups.create(p, name, true);
      return `Created group ${name}.`;
    });
    return groupsPage(req, reply, p, flash);
  });
  app.post('/-/admin/groups/:group/members', { schema: { ...hide, params: S.GroupParams, body: S.MemberBody } }, async (req, reply) => {
    const p = user(req, reply);
    if (!p) return reply;
    const { group } = req.params as { group: string };
    const username = (req.body as { username: string }).username.trim();
    const flash = await attempt(async () => {
      const r = await deps.groups.addMember(p, group, username);
      return r.added ? `Added ${username} to ${group}.` : `${username} already was a member of ${group}.`;
    });
    return groupsPage(req, reply, p, flash);
  });
  app.post('/-/admin/groups/:group/members/:username/remove', { schema: { ...hide, params: S.MemberParams, body: S.CsrfOnly } }, async (req, reply) => {
    const p = user(req, reply);
    if (!p) return reply;
    const { group, username } = req.params as { group: string; username: string };
    const flash = await attempt(async () => {
      await deps.groups.removeMember(p, group, username);
      return `Removed ${username} from ${group}.`;
    });
    return groupsPage(req, reply, p, flash);
  });

  // ---- one's account: identities, SSH keys, VMs ----------------------------------------

  const identitiesPage = async (req: FastifyRequest, reply: FastifyReply, p: Principal, flash?: Flash) => {
    const { identities, total } = await deps.identities.list(p, { limit: 500, offset: 0 });
    return html(reply.status(flash?.kind === 'error' ? 400 : 200), h(IdentitiesPage, { ctx: ctxOf(req, reply), identities, total, flash }));
  };
  const identityPage = async (req: FastifyRequest, reply: FastifyReply, p: Principal, id: string, flash?: Flash) => {
    const [{ tokens }, git, vms] = await Promise.all([deps.identities.listTokens(p, id), deps.identities.listGitPermissions(p, id, { limit: 500, offset: 0 }), deps.identities.listVmPermissions(p, id, { limit: 500, offset: 0 })]);
    return html(reply.status(flash?.kind === 'error' ? 400 : 200), h(IdentityPage, { ctx: ctxOf(req, reply), id: id.toLowerCase(), tokens, git: git.repositories, vms: vms.permissions, flash }));
  };

  app.get('/-/settings/identities', { schema: hide }, async (req, reply) => {
    const p = user(req, reply);
    return p ? identitiesPage(req, reply, p) : reply;
  });
  app.post('/-/settings/identities', { schema: { ...hide, body: S.CsrfOnly } }, async (req, reply) => {
    const p = user(req, reply);
    if (!p) return reply;
    const { id } = await deps.identities.create(p);
    return redirect(reply, `/-/settings/identities/${id}`);
  });
  app.get('/-/settings/identities/:id', { schema: { ...hide, params: S.IdentityParams } }, async (req, reply) => {
    const p = user(req, reply);
    return p ? identityPage(req, reply, p, (req.params as { id: string }).id) : reply;
  });
  app.post('/-/settings/identities/:id/*', { schema: { ...hide, params: S.IdentityAction, body: S.IdentityBody } }, async (req, reply) => {
    const p = user(req, reply);
    if (!p) return reply;
    const { id, '*': rest } = req.params as { id: string; '*': string };
    const b = req.body as { repo?: string; permission?: string; vm?: string; users?: string };
    const parts = rest.split('/');
    if (rest === 'delete') {
      await deps.identities.delete(p, id);
      return redirect(reply, '/-/settings/identities');
    }
    const flash = await attempt(async () => {
      if (rest === 'tokens') {
        const { token } = await deps.identities.createToken(p, id);
        return { kind: 'secret', text: 'New access token, shown once: use it as the password of x-access-token.', secret: token };
      }
      if (parts[0] === 'tokens' && parts[2] === 'revoke' && parts.length === 3) {
        await deps.identities.revokeToken(p, id, parts[1]!);
        return 'Token revoked.';
      }
      if (rest === 'git') {
        const access = parseIdentityAccess(b.permission);
        if (!access) throw invalid('permission must be read or write');
        const repo = (b.repo ?? '').trim();
        try {
          await deps.identities.grantGit(p, id, repo, access);
        } catch (e) {
          if ((e as { code?: string }).code !== 'PERMISSION_ALREADY_EXISTS') throw e;
          await deps.identities.updateGit(p, id, repo, access);
        }
        return `Granted ${access} on ${repo}.`;
      }
      if (parts[0] === 'git' && parts[2] === 'revoke' && parts.length === 3) {
        await deps.identities.revokeGit(p, id, parts[1]!);
        return 'Git permission revoked.';
      }
      if (rest === 'vm') {
        const vm = (b.vm ?? '').trim();
        if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(vm)) throw invalid('VM id must be 1-128 letters, digits, . _ -');
        const users = (b.users ?? '').split(',').map((s) => s.trim()).filter(Boolean);
        if (users.some((u) => !/^[a-z_][a-z0-9_-]{0,31}\$?$/.test(u))) throw invalid('Linux user names are lower-case letters, digits, _ and -');
        await deps.identities.grantVm(p, id, vm, users.length ? users : null);
        return `Granted VM ${vm}.`;
      }
      if (parts[0] === 'vm' && parts[2] === 'revoke' && parts.length === 3) {
        await deps.identities.revokeVm(p, id, parts[1]!);
        return 'VM permission revoked.';
      }
      throw invalid('Unknown action');
    });
    return identityPage(req, reply, p, id, flash);
  });

  const keysPage = async (req: FastifyRequest, reply: FastifyReply, p: Principal, flash?: Flash) =>
    html(reply.status(flash?.kind === 'error' ? 400 : 200), h(SshKeysPage, { ctx: ctxOf(req, reply), keys: (await deps.sshKeys.listOwn(p)).keys, flash }));
  app.get('/-/settings/ssh-keys', { schema: hide }, async (req, reply) => {
    const p = user(req, reply);
    return p ? keysPage(req, reply, p) : reply;
  });
  app.post('/-/settings/ssh-keys', { schema: { ...hide, body: S.SshKeyBody } }, async (req, reply) => {
    const p = user(req, reply);
    if (!p) return reply;
    const b = req.body as { publicKey: string; title?: string };
    const flash = await attempt(async () => {
      const k = await deps.sshKeys.addOwn(p, { publicKey: b.publicKey.trim(), title: b.title?.trim() || null });
      return `Added key ${k.fingerprint}.`;
    });
    return keysPage(req, reply, p, flash);
  });
  app.post('/-/settings/ssh-keys/:key/delete', { schema: { ...hide, params: S.KeyParams, body: S.CsrfOnly } }, async (req, reply) => {
    const p = user(req, reply);
    if (!p) return reply;
    const flash = await attempt(async () => {
      await deps.sshKeys.deleteOwn(p, (req.params as { key: string }).key);
      return 'Key deleted.';
    });
    return keysPage(req, reply, p, flash);
  });

  const vmsPage = async (req: FastifyRequest, reply: FastifyReply, p: Principal, flash?: Flash) =>
    html(reply.status(flash?.kind === 'error' ? 400 : 200), h(VmsPage, { ctx: ctxOf(req, reply), vms: (await deps.vms.list(p, { limit: 500, offset: 0 })).vms, flash }));
  app.get('/-/settings/vms', { schema: hide }, async (req, reply) => {
    const p = user(req, reply);
    return p ? vmsPage(req, reply, p) : reply;
  });
  app.post('/-/settings/vms', { schema: { ...hide, body: S.VmBody } }, async (req, reply) => {
    const p = user(req, reply);
    if (!p) return reply;
    const b = req.body as { name?: string; host: string; port?: string; defaultUser?: string; hostKey: string };
    const flash = await attempt(async () => {
      const port = b.port ? Number(b.port) : 22;
      if (!Number.isInteger(port) || port < 1 || port > 65535) throw invalid('port must be 1-65535');
      const user = b.defaultUser?.trim() || 'root';
      if (!/^[a-z_][a-z0-9_-]{0,31}\$?$/.test(user)) throw invalid('The default user must be a Linux user name');
      const vm = await deps.vms.create(p, { name: b.name?.trim() || null, host: b.host.trim(), port, defaultUser: user, hostKey: b.hostKey.trim() });
      return `Registered VM ${vm.id}.`;
    });
    return vmsPage(req, reply, p, flash);
  });
  app.post('/-/settings/vms/:vm/delete', { schema: { ...hide, params: S.VmParams, body: S.CsrfOnly } }, async (req, reply) => {
    const p = user(req, reply);
    if (!p) return reply;
    const flash = await attempt(async () => {
      await deps.vms.delete(p, (req.params as { vm: string }).vm);
      return 'VM removed.';
    });
    return vmsPage(req, reply, p, flash);
  });

  // ---- `/` and everything under a repository: the `surface: web` catch-all --------------

  const catchAll = async (req: FastifyRequest, reply: FastifyReply) => {
    const q = req.url.indexOf('?');
    const path = q < 0 ? req.url : req.url.slice(0, q);
    if (path === '/' || path === '') {
      if (req.method === 'POST') return messagePage(req, reply, 404, 'There is nothing here.');
      const query = req.query as { q?: string; offset?: number };
      const text = (query.q ?? '').trim();
      const offset = Number(query.offset) || 0;
      const limit = 50;
      const p = webPrincipalOf(req);
      const { rows, total } = await deps.browse.list(p, { text: text || undefined, limit, offset });
      return html(reply, h(RepoListPage, { ctx: ctxOf(req, reply), rows, total, offset, limit, q: text }));
    }
    if (path.startsWith('/-/')) return messagePage(req, reply, 404, 'There is nothing here.');
    const rp = parseRepoPath(path);
    if (!rp) return messagePage(req, reply, 404, 'There is nothing here.');
    return repoRoute(req, reply, deps, () => ctxOf(req, reply), rp);
  };
  app.route({ method: ['GET', 'POST'], url: '/*', constraints: { surface: 'web' }, schema: { ...hide, querystring: S.PageQuery }, handler: catchAll });
}
