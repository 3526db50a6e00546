import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';

/**
 * The web surface's only stylesheet and script, served from `/-/static/` under a name that
 * carries their hash (cached for a year, never stale). Kept here as text so the build has no
 * files to copy; highlight.js's GitHub theme is read from its package at start.
 */

const CSS = `
:root{--fg:#1f2328;--muted:#59636e;--border:#d1d9e0;--bg:#fff;--bg2:#f6f8fa;--link:#0969da;--add:#dafbe1;--del:#ffebe9;--hunk:#ddf4ff;--warn:#fff8c5;--danger:#cf222e}
*{box-sizing:border-box}
body{margin:0;font:14px/1.5 -apple-system,BlinkMacSystemFont,"Segoe UI","Noto Sans",Helvetica,Arial,sans-serif;color:var(--fg);background:var(--bg)}
a{color:var(--link);text-decoration:none}a:hover{text-decoration:underline}
header.top{display:flex;gap:16px;align-items:center;padding:10px 24px;background:#1f2328;color:#fff}
header.top a{color:#fff;font-weight:600}header.top .sp{flex:1}header.top form{display:inline;margin:0}
header.top button{background:none;border:1px solid #59636e;color:#fff;border-radius:6px;padding:2px 10px;cursor:pointer}
main{max-width:1200px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:22px;margin:8px 0 16px;font-weight:500}h1 .vis{font-size:12px;border:1px solid var(--border);border-radius:12px;padding:0 8px;vertical-align:middle;color:var(--muted)}
h2{font-size:18px;margin:24px 0 8px}
nav.tabs{display:flex;gap:4px;border-bottom:1px solid var(--border);margin-bottom:16px;flex-wrap:wrap}
nav.tabs a{padding:8px 12px;color:var(--fg);border-bottom:2px solid transparent}nav.tabs a.on{border-color:#fd8c73;font-weight:600}
.box{border:1px solid var(--border);border-radius:6px;margin-bottom:16px;overflow:hidden}
.box>.hd{background:var(--bg2);padding:8px 16px;border-bottom:1px solid var(--border);display:flex;gap:12px;align-items:center;flex-wrap:wrap}
.box>.hd .sp{flex:1}
table.list{width:100%;border-collapse:collapse}table.list td,table.list th{padding:6px 16px;border-top:1px solid var(--border);text-align:left;vertical-align:top}
table.list tr:first-child td{border-top:none}table.list th{background:var(--bg2);font-weight:600;border-top:none}
td.num,.muted{color:var(--muted)}td.num{text-align:right;white-space:nowrap}
code,pre,.mono{font-family:ui-monospace,SFMono-Regular,"SF Mono",Menlo,Consolas,monospace;font-size:12px}
.crumbs{margin:0 0 12px;font-size:16px}.crumbs a{font-weight:600}
.blob{display:flex;overflow:auto}
.blob pre{margin:0;padding:8px 0;line-height:20px;font-size:12px}
.blob .ln{text-align:right;color:var(--muted);user-select:none;padding:8px 8px 8px 16px;border-right:1px solid var(--border);background:var(--bg)}
.blob .ln a{color:var(--muted);display:block}.blob .ln a:target,.blob .ln a.on{background:var(--warn);color:var(--fg)}
.blob .code{padding-left:12px;white-space:pre;flex:1}
.notice{background:var(--warn);border:1px solid #d4a72c66;border-radius:6px;padding:8px 16px;margin-bottom:16px}
.error{background:var(--del);border:1px solid #ff818266;border-radius:6px;padding:8px 16px;margin-bottom:16px}
.secret{background:var(--add);border:1px solid #4ac26b66;border-radius:6px;padding:8px 16px;margin-bottom:16px;word-break:break-all}
table.diff{width:100%;border-collapse:collapse;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
table.diff td{padding:0 8px;white-space:pre-wrap;word-break:break-all;vertical-align:top;line-height:20px}
table.diff td.o,table.diff td.n{width:1%;min-width:40px;text-align:right;color:var(--muted);user-select:none;white-space:nowrap}
table.diff tr.add td{background:var(--add)}table.diff tr.del td{background:var(--del)}table.diff tr.hunk td{background:var(--hunk);color:var(--muted)}
.stat{font-size:12px}.stat .a{color:#1a7f37}.stat .d{color:var(--danger)}
.markdown{padding:16px 32px;line-height:1.6;overflow-wrap:break-word}.markdown img{max-width:100%}
.markdown pre{background:var(--bg2);padding:12px;border-radius:6px;overflow:auto}
.markdown table{border-collapse:collapse}.markdown td,.markdown th{border:1px solid var(--border);padding:4px 12px}
form.inline{display:inline}
form.stack label{display:block;margin:8px 0 4px;font-weight:600}
input[type=text],input[type=password],input[type=search],input[type=email],select,textarea{font:inherit;padding:5px 10px;border:1px solid var(--border);border-radius:6px;background:var(--bg);min-width:260px}
textarea{width:100%;min-height:60px}
button,.btn{font:inherit;padding:5px 14px;border:1px solid var(--border);border-radius:6px;background:var(--bg2);cursor:pointer;color:var(--fg)}
button.primary{background:#1f883d;color:#fff;border-color:#1f883d}button.danger{color:var(--danger)}
.clone{display:flex;gap:8px;align-items:center;margin:4px 0}.clone input{flex:1;font-family:ui-monospace,Menlo,monospace;font-size:12px}
.pager{display:flex;gap:12px;justify-content:center;margin:16px 0}
.login{max-width:340px;margin:48px auto}.login input{width:100%;min-width:0}.login button{width:100%;margin-top:16px}
.sha{font-family:ui-monospace,Menlo,monospace;font-size:12px}
.pad{padding:0 16px}.pad4{padding:4px 16px}.pad8{padding:8px 16px}.pad16{padding:16px}img.full{max-width:100%}.m8{margin:8px}pre.msg{padding:0 16px;white-space:pre-wrap;font-size:13px}
.ico{display:inline-block;margin-right:8px;vertical-align:-1px}.ico.d{width:14px;height:11px;background:#54aeff;border-radius:2px}.ico.f{width:10px;height:13px;border:1px solid #8c959f;border-radius:1px;margin-left:2px;margin-right:10px}.ico.s{width:12px;height:12px;background:#8c959f;border-radius:6px}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:16px}
@media (max-width:800px){.pad{padding:0 16px}.pad4{padding:4px 16px}.pad8{padding:8px 16px}.pad16{padding:16px}img.full{max-width:100%}.m8{margin:8px}pre.msg{padding:0 16px;white-space:pre-wrap;font-size:13px}
.grid2{grid-template-columns:1fr}}
`;

const JS = `
// Progressive enhancement only: every page works without it.
document.addEventListener('click', function (ev) {
  var b = ev.target.closest && ev.target.closest('button[data-copy]');
  if (!b) return;
  ev.preventDefault();
  var input = document.getElementById(b.getAttribute('data-copy'));
  if (!input) return;
  var done = function () { var t = b.textContent; b.textContent = 'Copied'; setTimeout(function () { b.textContent = t; }, 1500); };
  if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(input.value).then(done, function () {});
  else { input.select(); try { document.execCommand('copy'); done(); } catch (e) {} }
});
document.addEventListener('submit', function (ev) {
  var f = ev.target;
  var msg = f.getAttribute && f.getAttribute('data-confirm');
  if (msg && !window.confirm(msg)) ev.preventDefault();
});
`;

const require = createRequire(import.meta.url);
const HLJS_CSS = fs.readFileSync(require.resolve('highlight.js/styles/github.css'), 'utf8');

const hash = (s: string) => crypto.createHash('sha256').update(s).digest('hex').slice(0, 12);

export interface Asset {
  body: string;
  type: string;
}

const css = CSS + HLJS_CSS;
/** Served files by their hashed name. */
export const ASSETS: ReadonlyMap<string, Asset> = new Map([
  [`app-${hash(css)}.css`, { body: css, type: 'text/css; charset=utf-8' }],
  [`app-${hash(JS)}.js`, { body: JS, type: 'text/javascript; charset=utf-8' }],
]);

/** The URLs pages link to. */
export const CSS_URL = `/-/static/app-${hash(css)}.css`;
export const JS_URL = `/-/static/app-${hash(JS)}.js`;
