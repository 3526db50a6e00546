// Keeps the layering of STYLE.md: dependencies point down the list, nothing imports http/,
// store/ and git/ never import each other, domain/ and config/ import nothing of ours.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

const SRC = path.resolve(import.meta.dirname, '../../src');
const allowed: Record<string, string[]> = {
  cli: ['app', 'config', 'git', 'domain'],
  app: ['access', 'config', 'git', 'hg', 'http', 'ssh', 'web', 'services', 'store', 'domain'],
  http: ['access', 'services', 'git', 'domain', 'config'],
  ssh: ['access', 'services', 'git', 'domain', 'config'],
  web: ['access', 'services', 'git', 'domain', 'config'],
  services: ['access', 'store', 'git', 'hg', 'domain'],
  access: ['store', 'domain'],
  store: ['domain'],
  git: ['domain'],
  // hg runs its children with git's process primitives (process group kill, bounded output)
  hg: ['git', 'domain'],
  config: [],
  domain: [],
  main: ['cli'],
};

function files(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(path.join(dir, e.name)) : /\.tsx?$/.test(e.name) ? [path.join(dir, e.name)] : []));
}
const layerOf = (file: string) => path.relative(SRC, file).split(path.sep)[0]!.replace(/\.tsx?$/, '');

test('imports follow the layer order', () => {
  const violations: string[] = [];
  let seen = 0;
  for (const f of files(SRC)) {
    const from = layerOf(f);
    for (const m of fs.readFileSync(f, 'utf8').matchAll(/from '(\.[^']+)'/g)) {
      seen++;
      const target = layerOf(path.resolve(path.dirname(f), m[1]!));
      if (target === from) continue;
      if (!(allowed[from] ?? []).includes(target)) violations.push(`${path.relative(SRC, f)} imports ${m[1]}`);
    }
  }
  assert.ok(seen > 30, `scanned only ${seen} imports`);
  assert.deepEqual(violations, []);
});

// The console operator's principal exists for the CLI; a network surface that built it would
// hand a remote caller the server's administration.
test('no surface but the CLI names the SYSTEM principal', () => {
  const users = files(SRC).filter((f) => /\bSYSTEM\b/.test(fs.readFileSync(f, 'utf8'))).map((f) => path.relative(SRC, f));
  assert.deepEqual(users.sort(), ['cli/index.ts', 'domain/access.ts']);
});

// Every public service method takes the caller: a method named *Internal, or a service method
// without a Principal, is an entry point a new surface could call unguarded.
test('services export no *Internal methods', () => {
  const offenders = files(path.join(SRC, 'services')).filter((f) => /\b\w+Internal\s*\(/.test(fs.readFileSync(f, 'utf8')));
  assert.deepEqual(offenders, []);
});

// The web's templates escape every value; raw HTML enters a page in one place (`Raw`, for what
// highlight.js and the Markdown sanitizer made), and only render.ts makes such HTML.
test('web pages insert raw HTML only through Raw, made only in render.ts', () => {
  const web = files(path.join(SRC, 'web'));
  const raw = web.filter((f) => /dangerouslySetInnerHTML/.test(fs.readFileSync(f, 'utf8'))).map((f) => path.relative(SRC, f));
  assert.deepEqual(raw, ['web/pages/layout.tsx']);
  const made = web.filter((f) => /__html\s*:/.test(fs.readFileSync(f, 'utf8'))).map((f) => path.relative(SRC, f));
  assert.deepEqual(made, ['web/render.ts']);
});
