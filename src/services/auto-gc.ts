import type { Jobs } from './jobs.ts';

/**
 * `git gc --auto` after writes, off the answer's path. receive-pack runs it itself before it
 * ends its response, so every pusher waited for a git start and gc's counting (Palisade runs
 * receive-pack with `receive.autogc=false` and asks here once the push is answered); API
 * commits write small packs that must be consolidated the same way. gc keeps unreachable
 * objects younger than two weeks, so it is safe beside writers.
 *
 * Bounded: a request waits `delayMs` (2 s) and every request for that repository meanwhile is
 * the same run, so a burst of pushes costs one gc, and the gc does not take the CPU from the
 * client that just pushed; one run per repository at a time (asked again meanwhile, it runs
 * once more after), at most `concurrency` at once on this node; each run is a job claimed in the database
 * (`gc:<repo id>`), so two nodes never gc one repository at once (git's own gc.pid lock names
 * a host, and would only guess).
 */
/** A gc asked for: the repository's folder, and whether a claim held elsewhere asks once more. */
interface Ask {
  dir: string;
  retry: boolean;
}

export class AutoGc {
  private readonly waiting = new Map<string, Ask>();
  private readonly running = new Set<string>();
  private readonly again = new Map<string, Ask>();
  private readonly scheduled = new Set<string>();

  constructor(
    private readonly gc: (dir: string) => Promise<unknown>,
    private readonly jobs: Jobs | undefined,
    private readonly concurrency = 2,
    private readonly delayMs = 2000,
  ) {}

  /**
   * Asks for a gc of the repository `repoId` stored at `dir`; never throws, never waits. When
   * another node holds the repository's claim (its gc runs), the request is made once more,
   * later, so the pushes it did not see are gc-ed too.
   */
  request(repoId: string, dir: string, delayMs = this.delayMs, retry = true): void {
    if (this.scheduled.has(repoId)) return;
    this.scheduled.add(repoId);
    setTimeout(() => {
      this.scheduled.delete(repoId);
      (this.running.has(repoId) ? this.again : this.waiting).set(repoId, { dir, retry });
      this.pump();
    }, delayMs).unref();
  }

  private pump(): void {
    while (this.running.size < this.concurrency && this.waiting.size > 0) {
      const [repoId, { dir, retry }] = this.waiting.entries().next().value as [string, Ask];
      this.waiting.delete(repoId);
      this.running.add(repoId);
      const run = () => this.gc(dir);
      void (this.jobs ? this.jobs.runOnce(`gc:${repoId}`, run) : run().then(() => true))
        .then((ran) => {
          if (ran === false && retry) this.request(repoId, dir, this.delayMs * 15, false);
        })
        .catch(() => undefined)
        .finally(() => {
          this.running.delete(repoId);
          const next = this.again.get(repoId);
          if (next !== undefined) {
            this.again.delete(repoId);
            this.waiting.set(repoId, next);
          }
          this.pump();
        });
    }
  }
}
