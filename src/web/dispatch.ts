import type { IncomingMessage } from 'node:http';

/**
 * Which requests the web surface answers, among those no fixed route took (the API prefixes
 * are static routes and win before this). Git's smart HTTP keeps its catch-all `/*`; the web
 * registers its own `/*` under the `surface: web` route constraint, which this strategy derives
 * per request. What it classifies as not web goes exactly where it went before (git, or the
 * JSON 404):
 * - git's URLs (`…/info/refs`, `…/git-upload-pack`, `…/git-receive-pack`): never web;
 * - a `cmd=` query (Mercurial's wire protocol at the same `/<repo>` URLs): never web;
 * - paths under the APIs' prefixes (`/git/v1/…`, `/identity/v1/…`, …): never web;
 * - `/-/…` and `/<repo>/-/…`: the web's own namespace (no repository segment can be `-`);
 * - `/` and `/<repo>` (a summary): web only for a client that asks for HTML (`Accept:
 *   text/html`, as browsers do); an API client keeps its JSON 404.
 */

const GIT_RE = /\/(info\/refs|git-upload-pack|git-receive-pack)$/;
/** The paths of the APIs and the server's own documents (smart HTTP's fast path leaves them to the routes too). */
export const API_RE = /^\/(identity|git\/v1|_admin|v5|user\/v1|vm\/v1|admin\/v1|openapi\.json|docs|\.well-known|healthz)(\/|$)/;
/** The web's own namespace: a `-` segment (`/-/…`, `/<repo>/-/…`). */
const WEB_NAMESPACE = /(^|\/)-(\/|$)/;
/** Paths the routes own whatever they look like: the APIs' and the web's namespace (smart HTTP's fast path leaves them to the routes). */
export const routesOwn = (path: string): boolean => API_RE.test(path) || WEB_NAMESPACE.test(path);

export function isWebRequest(req: IncomingMessage): boolean {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  if (GIT_RE.test(path)) return false;
  if (q >= 0 && /(^|&)cmd=/.test(url.slice(q + 1))) return false;
  if (API_RE.test(path)) return false;
  if (WEB_NAMESPACE.test(path)) return true;
  const accept = req.headers.accept ?? '';
  return /\btext\/html\b/i.test(accept);
}

/** The find-my-way constraint strategy behind `constraints: { surface: 'web' }`. */
export const surfaceConstraint = {
  name: 'surface',
  storage() {
    const handlers = new Map<string, any>();
    return {
      get: (value: string) => handlers.get(value) ?? null,
      set: (value: string, store: any) => {
        handlers.set(value, store);
      },
    };
  },
  deriveConstraint: (req: IncomingMessage): string | undefined => (isWebRequest(req) ? 'web' : undefined),
  mustMatchWhenDerived: false,
};
