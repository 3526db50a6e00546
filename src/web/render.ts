import hljs from 'highlight.js/lib/common';
import MarkdownIt from 'markdown-it';
import sanitizeHtml from 'sanitize-html';

/**
 * The two places where the web surface produces HTML outside the template engine, each from
 * a library that escapes what it copies: highlight.js (code, escaped by it) and markdown-it
 * (READMEs), whose output then passes sanitize-html's allow-list before a page takes it. The
 * templates insert these strings and nothing else unescaped (a test keeps it so).
 */

/** HTML that came out of highlight.js or the Markdown sanitizer: the only kind a template inserts raw. */
export interface SafeHtml {
  readonly __html: string;
}

const escapeHtml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** The highlight.js language for a file name, by extension or well-known name; undefined: plain text. */
export function languageOf(fileName: string): string | undefined {
  const base = fileName.toLowerCase();
  const special: Record<string, string> = { makefile: 'makefile', dockerfile: 'dockerfile', 'cmakelists.txt': 'cmake', gemfile: 'ruby', rakefile: 'ruby' };
  if (special[base]) return hljs.getLanguage(special[base]) ? special[base] : undefined;
  const dot = base.lastIndexOf('.');
  if (dot < 0) return undefined;
  const ext = base.slice(dot + 1);
  const alias: Record<string, string> = { mjs: 'javascript', cjs: 'javascript', mts: 'typescript', cts: 'typescript', tsx: 'typescript', jsx: 'javascript', h: 'c', hpp: 'cpp', cc: 'cpp', yml: 'yaml', md: 'markdown', htm: 'xml', html: 'xml', svg: 'xml', vue: 'xml', toml: 'ini', conf: 'ini', sh: 'bash', zsh: 'bash' };
  const lang = alias[ext] ?? ext;
  return hljs.getLanguage(lang) ? lang : undefined;
}

/** A file's text as HTML: the code (one line per line, spans closed at each line end) and its gutter of line anchors. */
export interface CodeHtml {
  code: SafeHtml;
  gutter: SafeHtml;
  lines: number;
  highlighted: boolean;
}

/**
 * A file's text as HTML: highlighted when a language is known and the text is at most
 * `maxHighlight` characters (highlighting is the slow part), else escaped. Spans that cross a
 * line end are closed and reopened, so every line stands alone. Built as two strings, not one
 * template node per line: a 1 MB file has tens of thousands of lines.
 */
export function codeHtml(text: string, lang: string | undefined, maxHighlight: number): CodeHtml {
  let html: string;
  let highlighted = false;
  if (lang && text.length <= maxHighlight) {
    html = hljs.highlight(text, { language: lang, ignoreIllegals: true }).value;
    highlighted = true;
  } else html = escapeHtml(text);
  const raw = html.split('\n');
  if (raw.length > 1 && raw[raw.length - 1] === '') raw.pop();
  let out = raw;
  if (highlighted) {
    out = [];
    let open: string[] = [];
    for (const line of raw) {
      const prefix = open.join('');
      // the spans still open at the end of this line
      for (const m of line.matchAll(/<span[^>]*>|<\/span>/g)) {
        if (m[0] === '</span>') open.pop();
        else open.push(m[0]);
      }
      out.push(prefix + line + '</span>'.repeat(open.length));
    }
  }
  const gutter: string[] = new Array(out.length);
  for (let i = 1; i <= out.length; i++) gutter[i - 1] = `<a id="L${i}" href="#L${i}">${i}</a>`;
  return { code: { __html: out.join('\n') }, gutter: { __html: gutter.join('') }, lines: out.length, highlighted };
}

const md = new MarkdownIt({
  html: true,
  linkify: true,
  highlight(code, lang) {
    const l = lang && hljs.getLanguage(lang) ? lang : undefined;
    return l && code.length <= 100_000 ? hljs.highlight(code, { language: l, ignoreIllegals: true }).value : '';
  },
});

/** Where relative links and images of a README point: its folder at a revision. */
export interface MarkdownBase {
  /** `/<repo>/-/blob/<rev>/<dir>` for links */
  blob: string;
  /** `/<repo>/-/raw/<rev>/<dir>` for images */
  raw: string;
}

/** Resolves a relative reference against a base path; undefined when it climbs above it. */
function join(base: string, ref: string): string {
  const [pathPart, ...frag] = ref.split('#');
  const parts = base.split('/');
  for (const seg of (pathPart ?? '').split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      // never above the repository's root (the base's first three parts are `/<repo>/-/...`)
      if (parts.length > 4) parts.pop();
    } else parts.push(encodeURIComponent(decodeSafe(seg)));
  }
  return parts.join('/') + (frag.length ? `#${frag.join('#')}` : '');
}

const decodeSafe = (s: string) => {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
};

const isRelative = (u: string) => !/^[a-z][a-z0-9+.-]*:/i.test(u) && !u.startsWith('//') && !u.startsWith('#') && !u.startsWith('/');

/**
 * Markdown to HTML that may be inserted into a page: markdown-it's output through
 * sanitize-html's allow-list. No script, style, iframe, form or event-handler attribute
 * survives; links keep only http(s), mailto and relative targets (no `javascript:`); relative
 * links and images are made to point into the repository.
 */
export function renderMarkdown(source: string, base: MarkdownBase | undefined): SafeHtml {
  const html = md.render(source);
  const clean = sanitizeHtml(html, {
    allowedTags: [
      ...sanitizeHtml.defaults.allowedTags.filter((t) => t !== 'style'),
      'img', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'details', 'summary', 'del', 'ins', 'kbd', 'sup', 'sub', 'input', 'picture', 'source',
    ],
    allowedAttributes: {
      a: ['href', 'name', 'title', 'id', 'rel'],
      img: ['src', 'alt', 'title', 'width', 'height', 'align'],
      source: ['srcset', 'media', 'type'],
      code: ['class'],
      span: ['class'],
      th: ['align'],
      td: ['align'],
      p: ['align'],
      div: ['align'],
      h1: ['id', 'align'], h2: ['id'], h3: ['id'], h4: ['id'], h5: ['id'], h6: ['id'],
      input: ['type', 'checked', 'disabled'],
      ol: ['start'],
      details: ['open'],
    },
    allowedClasses: { code: [/^language-[\w+-]+$/], span: [/^hljs[\w-]*$/, /^language_$/] },
    allowedSchemes: ['http', 'https', 'mailto'],
    allowedSchemesByTag: { img: ['http', 'https', 'data'] },
    allowProtocolRelative: false,
    disallowedTagsMode: 'discard',
    transformTags: {
      a: (tag, attribs) => {
        const href = attribs.href;
        if (href && base && isRelative(href)) attribs.href = join(base.blob, href);
        return { tagName: tag, attribs: { ...attribs, rel: 'nofollow noopener noreferrer' } };
      },
      img: (tag, attribs) => {
        const src = attribs.src;
        if (src && base && isRelative(src)) attribs.src = join(base.raw, src);
        return { tagName: tag, attribs };
      },
      input: (tag, attribs) => (attribs.type === 'checkbox' ? { tagName: tag, attribs: { ...attribs, disabled: 'disabled' } } : { tagName: 'span', attribs: {} }),
    },
  });
  return { __html: clean };
}

/** True when the bytes look binary (a NUL in the first 8000 bytes, as git decides). */
export const looksBinary = (b: Buffer): boolean => b.subarray(0, 8000).includes(0);

/** Bytes in a short human form. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(1)} GiB`;
}

/** A date as `2026-11-22 14:03 UTC`. */
export function formatDate(d: Date | string | number): string {
  const x = new Date(typeof d === 'number' ? d * 1000 : d);
  return Number.isNaN(x.getTime()) ? '' : `${x.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}
