import type { ComponentChildren } from 'preact';
import type { Principal } from '../../domain/access.ts';
import { CSS_URL, JS_URL } from '../assets.ts';
import type { SafeHtml } from '../render.ts';

/** What every page knows about its request. */
export interface Ctx {
  principal: Principal;
  /** the CSRF token the page's forms carry */
  csrf: string;
  /** the request's path and query (the sign-in link's `next`) */
  here: string;
}

/** Encodes a path of segments for a URL, keeping its slashes. */
export const enc = (path: string) => path.split('/').map(encodeURIComponent).join('/');

/** The URL of a repository (by name, or id when it has none). */
export const repoHref = (r: { name: string | null; id: string }) => `/${enc(r.name ?? r.id)}`;

/** Inserts HTML that came from highlight.js or the Markdown sanitizer (see render.ts). */
export const Raw = ({ html, tag = 'div', class: cls, id }: { html: SafeHtml; tag?: 'div' | 'span' | 'td' | 'pre'; class?: string; id?: string }) => {
  const Tag = tag;
  return <Tag class={cls} id={id} dangerouslySetInnerHTML={html} />;
};

/** The hidden CSRF field every form carries. */
export const Csrf = ({ ctx }: { ctx: Ctx }) => <input type="hidden" name="_csrf" value={ctx.csrf} />;

/** The page frame: header with the user's links, the content, the one stylesheet and script. */
export function Layout({ ctx, title, children }: { ctx: Ctx; title: string; children: ComponentChildren }) {
  const p = ctx.principal;
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{title} · Palisade</title>
        <link rel="stylesheet" href={CSS_URL} />
        <script src={JS_URL} defer />
      </head>
      <body>
        <header class="top">
          <a href="/">Palisade</a>
          <a href="/">Repositories</a>
          {p.kind === 'user' && <a href="/-/new">New repository</a>}
          {p.kind === 'user' && <a href="/-/settings/identities">Identities</a>}
          {p.kind === 'user' && <a href="/-/settings/ssh-keys">SSH keys</a>}
          {p.kind === 'user' && <a href="/-/settings/vms">VMs</a>}
          {p.kind === 'user' && p.admin && <a href="/-/admin/users">Admin</a>}
          <span class="sp" />
          {p.kind === 'user' ? (
            <>
              <span>{p.username}</span>
              <form method="post" action="/-/logout">
                <Csrf ctx={ctx} />
                <button type="submit" id="sign-out">Sign out</button>
              </form>
            </>
          ) : (
            <a href={`/-/login?next=${encodeURIComponent(ctx.here)}`}>Sign in</a>
          )}
        </header>
        <main>{children}</main>
      </body>
    </html>
  );
}

/** "Previous / next" links of a paged listing. */
export function Pager({ base, offset, limit, total, more }: { base: string; offset: number; limit: number; total?: number; more?: boolean }) {
  const sep = base.includes('?') ? '&' : '?';
  const hasNext = total !== undefined ? offset + limit < total : !!more;
  if (offset === 0 && !hasNext) return null;
  return (
    <div class="pager">
      {offset > 0 && <a href={`${base}${sep}offset=${Math.max(0, offset - limit)}`}>← Newer / previous</a>}
      {total !== undefined && (
        <span class="muted">
          {offset + 1}–{Math.min(total, offset + limit)} of {total.toLocaleString('en')}
        </span>
      )}
      {hasNext && (
        <a href={`${base}${sep}offset=${offset + limit}`} rel="next">
          Next →
        </a>
      )}
    </div>
  );
}

/** A message page (errors, sign-in needed). */
export function MessagePage({ ctx, title, status, message, children }: { ctx: Ctx; title: string; status: number; message: string; children?: ComponentChildren }) {
  return (
    <Layout ctx={ctx} title={title}>
      <h1>
        {status} · {title}
      </h1>
      <p>{message}</p>
      {children}
      <p>
        <a href="/">Back to the repositories</a>
      </p>
    </Layout>
  );
}
