// `npm test`: the whole suite on the embedded SQLite, then, when PALISADE_TEST_DATABASE_URL
// names a PostgreSQL server (CI sets it), the same suite again on PostgreSQL.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname);
const files = fs
  .readdirSync(root, { withFileTypes: true })
  .filter((d) => d.isDirectory() && d.name !== 'helpers')
  .flatMap((d) => fs.readdirSync(path.join(root, d.name)).filter((f) => f.endsWith('.test.ts')).map((f) => path.join('test', d.name, f)))
  .sort();

const run = (label, env) => {
  console.log(`\n# ${label}`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', ...files], { stdio: 'inherit', env });
  return r.status ?? 1;
};

const { PALISADE_TEST_DATABASE_URL: pgUrl, ...rest } = process.env;
let failed = run('SQLite', rest);
if (pgUrl) failed = run('PostgreSQL', { ...rest, PALISADE_TEST_DATABASE_URL: pgUrl }) || failed;
process.exit(failed);
