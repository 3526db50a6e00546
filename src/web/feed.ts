import { h, type VNode } from 'preact';
import { render } from 'preact-render-to-string/jsx';
import type { LogEntry } from '../services/browse.ts';

/**
 * Atom and RSS of a branch's recent commits (seed 002's feed views), rendered by the same
 * template engine as the pages in its XML mode: every value is escaped by it. Characters XML
 * 1.0 cannot carry (control characters) are dropped first.
 */

export interface FeedInput {
  /** absolute URL of the repository's page */
  repoUrl: string;
  /** absolute URL of this feed (without api_key) */
  selfUrl: string;
  title: string;
  branch: string;
  entries: LogEntry[];
}

const clean = (s: string) => s.replace(/[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]/g, '');
const iso = (t: number) => new Date(t * 1000).toISOString();
const xml = (v: VNode<any>) => `<?xml version="1.0" encoding="utf-8"?>\n${render(v as VNode, {}, { xml: true, pretty: false, jsx: false })}`;

export function atom(f: FeedInput): string {
  const updated = f.entries[0] ? iso(f.entries[0].authorTime) : new Date(0).toISOString();
  return xml(
    h(
      'feed',
      { xmlns: 'http://www.w3.org/2005/Atom' },
      h('title', null, clean(`${f.title}: ${f.branch}`)),
      h('id', null, clean(f.selfUrl)),
      h('link', { href: f.repoUrl, rel: 'alternate', type: 'text/html' }),
      h('link', { href: f.selfUrl, rel: 'self', type: 'application/atom+xml' }),
      h('updated', null, updated),
      ...f.entries.map((e) =>
        h(
          'entry',
          null,
          h('title', null, clean(e.subject || '(no message)')),
          h('id', null, `${f.repoUrl}/-/commit/${e.sha}`),
          h('link', { href: `${f.repoUrl}/-/commit/${e.sha}`, rel: 'alternate', type: 'text/html' }),
          h('updated', null, iso(e.authorTime)),
          h('author', null, h('name', null, clean(e.authorName))),
          h('content', { type: 'text' }, clean([e.subject, e.body].filter(Boolean).join('\n\n'))),
        ),
      ),
    ),
  );
}

export function rss(f: FeedInput): string {
  return xml(
    h(
      'rss',
      { version: '2.0' },
      h(
        'channel',
        null,
        h('title', null, clean(`${f.title}: ${f.branch}`)),
        h('link', null, f.repoUrl),
        h('description', null, clean(`Recent commits on ${f.branch}`)),
        ...f.entries.map((e) =>
          h(
            'item',
            null,
            h('title', null, clean(e.subject || '(no message)')),
            h('link', null, `${f.repoUrl}/-/commit/${e.sha}`),
            h('guid', { isPermaLink: 'false' }, e.sha),
            h('pubDate', null, new Date(e.authorTime * 1000).toUTCString()),
            h('author', null, clean(e.authorName)),
            h('description', null, clean([e.subject, e.body].filter(Boolean).join('\n\n'))),
          ),
        ),
      ),
    ),
  );
}
