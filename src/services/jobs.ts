import { leaseFor, type Store } from '../store/index.ts';

/**
 * Background jobs that belong to no other row (a repository's gc, the pack cache's cleanup),
 * claimed by name through the database with a lease: however many nodes share the database,
 * one runs a job at a time, and a node that dies mid-run loses the claim when the lease
 * expires. The lease is renewed while the job runs.
 */
export class Jobs {
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly running = new Set<Promise<unknown>>();
  private stopped = false;

  constructor(
    private readonly store: Store,
    private readonly opts: { nodeId: string; leaseMs: number },
  ) {}

  private lease() {
    return leaseFor(this.opts.nodeId, this.opts.leaseMs);
  }

  /**
   * Runs `fn` if this node can claim `name` and it did not run within `notWithinMs` (anywhere);
   * false when another node holds it, it ran recently, or the jobs are stopped. `fn`'s error
   * is thrown after the claim is let go.
   */
  async runOnce(name: string, fn: () => Promise<unknown>, notWithinMs?: number): Promise<boolean> {
    if (this.stopped) return false;
    const since = notWithinMs === undefined ? undefined : new Date(Date.now() - notWithinMs).toISOString();
    if (!(await this.store.claimJob(this.store.db, name, this.lease(), since))) return false;
    const renew = setInterval(() => {
      void this.store.renewJob(this.store.db, name, this.lease()).catch(() => undefined);
    }, Math.max(250, Math.floor(this.opts.leaseMs / 3)));
    renew.unref(); // a job left running at shutdown must not hold the process open
    let run: Promise<unknown> | undefined;
    try {
      run = fn();
      this.running.add(run);
      await run;
      return true;
    } finally {
      if (run) this.running.delete(run);
      clearInterval(renew);
      await this.store.finishJob(this.store.db, name, this.opts.nodeId, new Date().toISOString()).catch(() => undefined);
    }
  }

  /**
   * Every node ticks every `intervalMs`; the node that claims the job runs it, at most once per
   * interval across all nodes (a job that ran elsewhere within 90% of it is skipped).
   * Errors go to `onError`.
   */
  every(name: string, intervalMs: number, fn: () => Promise<unknown>, onError: (err: unknown) => void): void {
    const timer = setInterval(() => {
      this.runOnce(name, fn, intervalMs * 0.9).catch(onError);
    }, intervalMs);
    timer.unref();
    this.timers.add(timer);
  }

  /**
   * Stops the timers and waits up to `waitMs` for jobs running here (their leases are let go as
   * each ends). A longer one (a gc may take many minutes) is not waited for: shutdown must not
   * hang on it; its lease expires and git's own lock (gc.pid) keeps a second gc off meanwhile.
   */
  async stop(waitMs = 5000): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.timers.clear();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled([...this.running]), new Promise((r) => (timer = setTimeout(r, waitMs)))]);
    clearTimeout(timer);
  }
}
