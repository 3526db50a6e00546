#!/usr/bin/env node
// Launcher: runs the compiled build (dist/, made by `npm run build`, which `npm start` and
// `npm test` run first) when present; otherwise registers tsx and runs the TypeScript
// sources directly. The build matters for speed: without tsx's loader thread the server's
// memory is about half, and every git process it forks starts faster.
import fs from 'node:fs';

const dist = new URL('../dist/main.js', import.meta.url);
if (fs.existsSync(dist)) {
  await import(dist.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/main.ts');
}
