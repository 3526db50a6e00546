import { main } from './cli/index.ts';

main(process.argv.slice(2)).catch((e: unknown) => {
  process.stderr.write(`palisade: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
