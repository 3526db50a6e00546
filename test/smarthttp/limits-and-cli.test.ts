// The request-size limit on pushes, and the admin CLI's key rotation, through the real binaries.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { git, gitOk, makeWorkTree, repoUrl } from '../helpers/git.ts';
import { api, startServer } from '../helpers/server.ts';

test('a push larger than PALISADE_MAX_PACK_BYTES is refused and moves no ref', async () => {
  const s = await startServer({ PALISADE_MAX_PACK_BYTES: '65536' });
  try {
    const repoId = (await api(s, 'POST', '/git/v1/repo', { key: s.adminKey, body: {} })).body.repoId as string;
    const url = repoUrl(s.url, repoId, 'x-access-token', s.adminKey);
    const small = await makeWorkTree(1);
    await gitOk(['push', url, 'main'], { cwd: small });
    const before = (await gitOk(['ls-remote', url])).trim();
    fs.writeFileSync(path.join(small, 'big.bin'), crypto.randomBytes(512 * 1024));
    await gitOk(['add', '.'], { cwd: small });
    await gitOk(['commit', '-qm', 'big'], { cwd: small });
    const r = await git(['push', url, 'main'], { cwd: small });
    assert.notEqual(r.code, 0, 'the oversized push fails');
    assert.equal((await gitOk(['ls-remote', url])).trim(), before, 'refs unchanged');
  } finally {
    await s.stop();
  }
});

test('palisade user rotate-key: the new key works at once, the old one no longer does', async () => {
  const s = await startServer();
  try {
    const oldKey = await s.createUser('rotator');
    assert.equal((await api(s, 'GET', '/identity/v1/identities', { key: oldKey })).status, 200);
    const out = await s.cli('user', 'rotate-key', 'rotator');
    const newKey = out.trim().split('\n').pop()!;
    assert.ok(newKey.startsWith('pal_') && newKey !== oldKey);
    assert.equal((await api(s, 'GET', '/identity/v1/identities', { key: newKey })).status, 200);
    assert.equal((await api(s, 'GET', '/identity/v1/identities', { key: oldKey })).status, 401);
    await assert.rejects(s.cli('user', 'rotate-key', 'nobody-here'), /nobody-here/);
    assert.match(await s.cli('migrate'), /up to date/);
    assert.match(await s.cli('--help'), /palisade serve[\s\S]*PALISADE_DATA_DIR/);
  } finally {
    await s.stop();
  }
});
