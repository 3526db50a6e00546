// SSRF regression: URLs the server fetches (clone_uri, source, import, webhooks, github-sync) must
// not reach loopback, private, link-local or metadata addresses, nor file://, unless the operator
// sets PALISADE_ALLOW_PRIVATE_URLS=1.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { checkOutboundUrl, isPrivateAddress } from '../../src/services/outbound-url.ts';
import { api, startServer, type TestServer } from '../helpers/server.ts';

describe('SSRF guard', () => {
  test('address table', () => {
    const rows: [string, boolean][] = [
      ['127.0.0.1', true],
      ['127.1.2.3', true],
      ['10.1.2.3', true],
      ['172.16.0.1', true],
      ['172.31.255.255', true],
      ['172.32.0.1', false],
      ['192.168.1.1', true],
      ['169.254.169.254', true],
      ['100.64.0.1', true],
      ['0.0.0.0', true],
      ['224.0.0.1', true],
      ['::1', true],
      ['::', true],
      ['fe80::1', true],
      ['fd00::1', true],
      ['::ffff:127.0.0.1', true],
      ['93.184.216.34', false],
      ['2606:4700::1111', false],
    ];
    for (const [addr, blocked] of rows) assert.equal(isPrivateAddress(addr), blocked, addr);
  });

  test('URLs refused by default, allowed when the operator says so', async () => {
    for (const url of ['http://127.0.0.1:9/x.git', 'http://[::1]/x', 'http://169.254.169.254/latest/meta-data', 'http://10.0.0.1/', 'file:///etc/passwd', 'ext::sh -c id', 'ftp://example.com/x', 'http://0x7f000001/']) {
      await assert.rejects(checkOutboundUrl(url, false), /not allowed|private or local|Invalid URL|scheme/, url);
    }
    assert.equal((await checkOutboundUrl('http://93.184.216.34/x.git', false)).hostname, '93.184.216.34');
    assert.equal((await checkOutboundUrl('http://127.0.0.1:9/x.git', true)).hostname, '127.0.0.1');
    await assert.rejects(checkOutboundUrl('file://host/etc/passwd', true));
  });
});

describe('SSRF guard on a server with the default setting', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer();
  });
  after(() => s.stop());

  test('clone_uri, source, import and webhook endpoints on loopback are refused and nothing is created', async () => {
    const target = `${s.url}/whatever.git`;
    const rpc = await fetch(`${s.url}/_admin/api`, { method: 'POST', body: JSON.stringify({ id: 1, api_key: s.adminKey, method: 'create_repo', args: { repo_name: 'ssrf/rpc', clone_uri: target } }) });
    assert.match(((await rpc.json()) as { error: string }).error, /private or local address/);
    const src = await api(s, 'POST', '/git/v1/repo', { key: s.adminKey, body: { name: 'ssrf/source', source: { url: target } } });
    assert.equal(src.status, 400);
    const imp = await api(s, 'POST', '/git/v1/repo', { key: s.adminKey, body: { name: 'ssrf/import', import: { type: 'tar', url: `${s.url}/x.tar`, commitMessage: 'x' } } });
    assert.equal(imp.status, 400);
    const list = await api(s, 'GET', '/git/v1/repo?limit=1000', { key: s.adminKey });
    assert.ok(!list.body.repositories.some((r: { name: string }) => r.name?.startsWith('ssrf/')), 'no repository was left behind');
    const { repoId } = (await api(s, 'POST', '/git/v1/repo', { key: s.adminKey, body: {} })).body;
    const hook = await api(s, 'POST', `/git/v1/repo/${repoId}/trigger`, { key: s.adminKey, body: { trigger: { event: 'push' }, action: { action: 'webhook', endpoint: 'http://169.254.169.254/' } } });
    assert.equal(hook.status, 400);
    const sync = await api(s, 'POST', `/git/v1/repo/${repoId}/github-sync`, { key: s.adminKey, body: { githubRepoName: 'file:///etc' } });
    assert.equal(sync.status, 400);
  });
});
