// The web pages in a real browser: Debian's chromium driven by playwright-core (no browser is
// downloaded). One person's session from sign-in to sign-out: browse a tree, a file, a commit
// and its diff, follow a feed with ?api_key=, create a user and a group, grant a permission
// and see git obey it, create an identity and a token, sign out; then a stranger, script in a
// repository that must not run, and a form posted without its CSRF token. Screenshots of the
// main pages go to test/.artifacts/ (ignored by git, kept by CI).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { git, makeWorkTree, repoUrl, tmpDir } from '../helpers/git.ts';
import { api, startServer, type TestServer } from '../helpers/server.ts';

const ARTIFACTS = path.resolve(import.meta.dirname, '../.artifacts');
const CHROMIUM = process.env.PALISADE_TEST_CHROMIUM ?? '/usr/bin/chromium';

let server: TestServer;
let ctx: BrowserContext;
let page: Page;
let profile: string;
let repoId: string;

async function rpc(method: string, args: Record<string, unknown>) {
  const r = await api(server, 'POST', '/_admin/api', { body: { id: 1, api_key: server.adminKey, method, args } });
  assert.equal(r.body.error, null, JSON.stringify(r.body.error));
  return r.body.result;
}

const shot = (name: string) => page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });

before(async () => {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  server = await startServer();
  await rpc('create_user', { username: 'alice', password: 'alice-password-1', email: 'alice@example.com', admin: true });
  const created = await api(server, 'POST', '/git/v1/repo', {
    key: server.adminKey,
    body: {
      name: 'acme/app',
      import: {
        type: 'files',
        commitMessage: 'Initial import',
        files: {
          'README.md': '# Acme app\n\nThe **app**. See [the docs](docs/guide.md).\n\n<img src="nope.png" onerror="window.__xss = \'readme\'">\n\n<a href="javascript:window.__xss=\'link\'">click</a>\n',
          'src/main.ts': 'export function greet(name: string): string {\n  /* a comment\n     over two lines */\n  return `hello ${name}`;\n}\n',
          'docs/guide.md': '# Guide\n',
          'evil.html': '<script>window.__xss = "file"</script><img src=x onerror="window.__xss=\'file-img\'">\n',
        },
      },
    },
  });
  assert.equal(created.status, 200, JSON.stringify(created.body));
  repoId = created.body.repoId;
  const c = await api(server, 'POST', `/git/v1/repo/${repoId}/commits`, { key: server.adminKey, body: { message: 'Greet loudly', files: [{ path: 'src/main.ts', content: 'export function greet(name: string): string {\n  return `HELLO ${name}!`;\n}\n' }] } });
  assert.equal(c.status, 200, JSON.stringify(c.body));
  profile = fs.mkdtempSync(path.join(os.tmpdir(), 'palisade-chromium-'));
  ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  page = ctx.pages()[0] ?? (await ctx.newPage());
});

after(async () => {
  await ctx?.close();
  await server?.stop();
  if (profile) fs.rmSync(profile, { recursive: true, force: true });
});

test('a person browses, administers and signs out in chromium', async () => {
  // GET / in a browser lands on the repository list; a private repository is not in it
  await page.goto(server.url);
  assert.equal(await page.title(), 'Repositories · Palisade');
  assert.equal(await page.locator('#repo-list').count(), 0);

  // sign in
  await page.click('text=Sign in');
  await shot('login');
  await page.fill('#username', 'alice');
  await page.fill('#password', 'alice-password-1');
  await Promise.all([page.waitForURL(`${server.url}/`), page.click('#login button[type=submit]')]);
  await page.locator('#repo-list a', { hasText: 'acme/app' }).waitFor();
  await shot('repositories');

  // the summary: README rendered, its onerror and javascript: link inert
  await page.click('#repo-list a:has-text("acme/app")');
  await page.locator('#readme h1', { hasText: 'Acme app' }).waitFor();
  assert.equal(await page.locator('#readme img').getAttribute('onerror'), null);
  assert.equal(await page.locator('#readme a', { hasText: 'click' }).getAttribute('href'), null, 'a javascript: link keeps no target');
  await page.locator('#readme a', { hasText: 'click' }).click();
  assert.equal(await page.evaluate(() => (window as { __xss?: string }).__xss), undefined);
  assert.match(await page.inputValue('#clone-http'), /\/acme\/app\.git$/);
  await shot('summary');

  // a tree, a file with highlighting and line anchors
  await page.click('#tree a:has-text("src")');
  await page.waitForURL(/\/acme\/app\/-\/tree\/main\/src$/);
  await shot('tree');
  await page.click('#tree a:has-text("main.ts")');
  await page.waitForURL(/\/-\/blob\/main\/src\/main\.ts$/);
  assert.ok((await page.locator('#code .hljs-keyword').count()) > 0, 'highlighted');
  await page.click('a#L2');
  assert.match(page.url(), /#L2$/);
  assert.equal(await page.evaluate(() => document.querySelector(':target')?.id), 'L2');
  await shot('blob');

  // a file holding script: shown as text, never run, raw as text/plain
  await page.goto(`${server.url}/acme/app/-/blob/main/evil.html`);
  assert.match(await page.locator('#code').innerText(), /<script>window.__xss = "file"<\/script>/);
  const raw = await page.goto(`${server.url}/acme/app/-/raw/main/evil.html`);
  assert.match(raw!.headers()['content-type']!, /^text\/plain/);
  assert.equal(await page.evaluate(() => document.contentType), 'text/plain');
  assert.equal(await page.evaluate(() => (window as { __xss?: string }).__xss), undefined);

  // history, a commit and its diff
  await page.goto(`${server.url}/acme/app`);
  await page.click('nav.tabs a:has-text("Commits")');
  await page.locator('#commits a', { hasText: 'Greet loudly' }).click();
  await page.locator('#commit-subject', { hasText: 'Greet loudly' }).waitFor();
  assert.equal(await page.locator('table.diff tr.add').count(), 1);
  assert.equal(await page.locator('table.diff tr.del').count(), 3);
  assert.match(await page.locator('table.diff tr.add').first().innerText(), /HELLO/);
  await shot('commit');

  // a feed with ?api_key=, in a browser without the session: the key opens the feed only
  const bobKey = (await rpc('create_user', { username: 'feedreader', password: 'feed-password-1', email: 'feed@example.com' })).api_key as string;
  await rpc('grant_user_permission', { repo_name: 'acme/app', username: 'feedreader', perm: 'repository.read' });
  const feedRes = await fetch(`${server.url}/acme/app/-/feed.atom?api_key=${encodeURIComponent(bobKey)}`);
  assert.equal(feedRes.status, 200);
  const xml = await feedRes.text();
  assert.match(xml, /<title>Greet loudly<\/title>/);
  assert.match(xml, /<title>Initial import<\/title>/);
  const ignored = await fetch(`${server.url}/acme/app/-/commits/main?api_key=${encodeURIComponent(bobKey)}`);
  assert.equal(ignored.status, 404, 'any other page ignores api_key');
  await page.goto(`${server.url}/acme/app/-/feed.atom`);
  assert.match(await page.content(), /Greet loudly/);

  // administration: a user and a group, the group granted read; git obeys
  await page.goto(`${server.url}/-/admin/users`);
  await page.fill('#new-user input[name=username]', 'bob');
  await page.fill('#new-user input[name=password]', 'bob-password-1');
  await page.click('#new-user button[type=submit]');
  await page.locator('#secret-value').waitFor();
  assert.match(await page.locator('#secret-value').innerText(), /^pal_/);
  await shot('admin-users');
  await page.goto(`${server.url}/-/admin/groups`);
  await page.fill('#new-group input[name=name]', 'devs');
  await page.click('#new-group button[type=submit]');
  await page.locator('.group', { hasText: 'devs' }).locator('input[name=username]').fill('bob');
  await page.locator('.group', { hasText: 'devs' }).locator('button:has-text("Add member")').click();
  await page.locator('#flash', { hasText: 'Added bob to devs' }).waitFor();
  await shot('admin-groups');

  const work = tmpDir();
  const clone = () => git(['clone', '-q', repoUrl(server.url, 'acme/app.git', 'bob', 'bob-password-1'), path.join(work, `c${Date.now()}`)]);
  assert.notEqual((await clone()).code, 0, 'bob reads nothing yet');
  await page.goto(`${server.url}/acme/app/-/settings/permissions`);
  await page.fill('#grant-group input[name=group]', 'devs');
  await page.selectOption('#grant-group select[name=perm]', 'repository.read');
  await page.click('#grant-group button[type=submit]');
  await page.locator('#group-grants td', { hasText: 'repository.read' }).waitFor();
  await shot('permissions');
  assert.equal((await clone()).code, 0, 'the group grant lets bob clone');
  await page.fill('#grant-user input[name=username]', 'bob');
  await page.selectOption('#grant-user select[name=perm]', 'repository.none');
  await page.click('#grant-user button[type=submit]');
  await page.locator('#user-grants td', { hasText: 'repository.none' }).waitFor();
  assert.notEqual((await clone()).code, 0, "bob's own repository.none overrides the group");

  // an identity and a token, granted read: git clones with it
  await page.goto(`${server.url}/-/settings/identities`);
  await page.click('#new-identity button');
  await page.waitForURL(/\/-\/settings\/identities\/[0-9a-f-]{36}$/);
  await page.click('#new-token button');
  const token = await page.locator('#secret-value').innerText();
  assert.match(token, /^pal_/);
  await page.fill('#grant-git input[name=repo]', 'acme/app');
  await page.click('#grant-git button[type=submit]');
  await page.locator('#git-grants td', { hasText: 'acme/app' }).waitFor();
  await shot('identity');
  assert.equal((await git(['clone', '-q', repoUrl(server.url, `${repoId}.git`, 'x-access-token', token), path.join(work, 'by-token')])).code, 0);

  // sign out: the session is gone, the account pages ask for a sign-in again
  await page.click('#sign-out');
  await page.waitForURL(`${server.url}/`);
  await page.goto(`${server.url}/-/settings/identities`);
  assert.match(page.url(), /\/-\/login\?next=/);
});

test('a stranger sees a private repository as a 404 page', async () => {
  const res = await page.goto(`${server.url}/acme/app`);
  assert.equal(res!.status(), 404);
  const missing = await page.goto(`${server.url}/acme/does-not-exist`);
  assert.equal(missing!.status(), 404);
  assert.equal(await page.locator('h1').innerText(), await (async () => {
    await page.goto(`${server.url}/acme/app`);
    return page.locator('h1').innerText();
  })());
  // bob, signed in, is refused by his own repository.none: the same page
  await page.goto(`${server.url}/-/login`);
  await page.fill('#username', 'bob');
  await page.fill('#password', 'bob-password-1');
  await Promise.all([page.waitForURL(`${server.url}/`), page.click('#login button[type=submit]')]);
  const asBob = await page.goto(`${server.url}/acme/app/-/tree/main`);
  assert.equal(asBob!.status(), 404);
  await shot('not-found');
});

test('a form posted without its CSRF token is refused', async () => {
  // bob is signed in (previous test); as alice would, but bob is no admin: use his own identities page
  await page.goto(`${server.url}/-/settings/identities`);
  const before = await page.locator('#identities a').count();
  await page.evaluate(() => document.querySelector('#new-identity input[name=_csrf]')!.remove());
  const [res] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), page.click('#new-identity button')]);
  assert.equal(res.status(), 403);
  await page.goto(`${server.url}/-/settings/identities`);
  assert.equal(await page.locator('#identities a').count(), before, 'nothing was created');
});
