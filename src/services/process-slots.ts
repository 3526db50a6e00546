import type { Principal } from '../domain/access.ts';
import { unavailable } from '../domain/errors.ts';
import { clientHost } from './client-host.ts';

export interface ProcessLimits {
  /** git/grep children running for requests, server-wide */
  max: number;
  /** of those, for one client (principal, or address when anonymous) */
  perClient: number;
  /** how long a request may wait for a slot before it is refused; 0 refuses at once */
  queueMs: number;
}

/** How many more requests than slots may wait, per client and in all. */
export const QUEUE_FACTOR = 4;

/** A granted slot; `release` is idempotent. */
export interface Slot {
  release(): void;
}

interface Waiter {
  key: string;
  grant: (s: Slot) => void;
  refuse: (e: unknown) => void;
}

/**
 * Who a request counts against: the account when authenticated (a user, or the account
 * that owns the identity), else the anonymous caller's address (an IPv6 client by its /64,
 * what one host usually holds). Outside a request (no address): one shared key.
 */
export function clientKey(p: Principal): string {
  // An account and every identity it owns share one budget: identities cost nothing to create,
  // so counting each apart would let one account take every process.
  if (p.kind === 'user') return `account:${p.userId}`;
  if (p.kind === 'identity') return `account:${p.accountId}`;
  const address = p.kind === 'anonymous' ? p.address : undefined;
  return address ? `ip:${clientHost(address)}` : 'anonymous';
}

/**
 * The bounded pool of child processes (git, grep) started on behalf of
 * requests: at most `max` at once server-wide and `perClient` for one
 * client, so that no caller can take them all. A request beyond either
 * bound waits in a FIFO queue (at most `QUEUE_FACTOR × perClient` waiting per
 * client and `QUEUE_FACTOR × max` in all) and is refused with `unavailable`
 * (503 + Retry-After) when the queue is full or its wait runs out. A waiting
 * request holds no process, only its connection: the queue is longer than the
 * pool so that a burst (64 CI clients of one account) drains instead of
 * failing, while the processes stay bounded.
 */
export class ProcessSlots {
  private running = 0;
  private readonly byClient = new Map<string, number>();
  private readonly queue: Waiter[] = [];

  constructor(private readonly limits: ProcessLimits) {}

  /** Slots in use and requests waiting, for logs and tests. */
  stats(): { running: number; queued: number } {
    return { running: this.running, queued: this.queue.length };
  }

  /**
   * Waits for a slot for `p`'s client. Throws `unavailable` when none frees
   * up in time, or the abort reason when `signal` fires while waiting.
   */
  acquire(p: Principal, signal?: AbortSignal): Promise<Slot> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    const key = clientKey(p);
    if (this.free(key)) return Promise.resolve(this.take(key));
    const retryAfter = Math.max(1, Math.ceil(this.limits.queueMs / 1000));
    const busy = () => unavailable('Too many git processes are running; try again later', retryAfter);
    const waitingForKey = this.queue.filter((w) => w.key === key).length;
    if (this.limits.queueMs === 0 || waitingForKey >= QUEUE_FACTOR * this.limits.perClient || this.queue.length >= QUEUE_FACTOR * this.limits.max) return Promise.reject(busy());
    return new Promise<Slot>((resolve, reject) => {
      const leave = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        const i = this.queue.indexOf(waiter);
        if (i >= 0) this.queue.splice(i, 1);
      };
      const waiter: Waiter = {
        key,
        grant: (s) => {
          leave();
          resolve(s);
        },
        refuse: (e) => {
          leave();
          reject(e);
        },
      };
      const timer = setTimeout(() => waiter.refuse(busy()), this.limits.queueMs);
      const onAbort = () => waiter.refuse(signal!.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(waiter);
    });
  }

  /** Runs `fn` holding a slot for `p`'s client; the slot is released when `fn` settles. */
  async run<T>(p: Principal, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const slot = await this.acquire(p, signal);
    try {
      return await fn();
    } finally {
      slot.release();
    }
  }

  private free(key: string): boolean {
    return this.running < this.limits.max && (this.byClient.get(key) ?? 0) < this.limits.perClient;
  }

  private take(key: string): Slot {
    this.running++;
    this.byClient.set(key, (this.byClient.get(key) ?? 0) + 1);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.running--;
        const n = (this.byClient.get(key) ?? 1) - 1;
        if (n === 0) this.byClient.delete(key);
        else this.byClient.set(key, n);
        this.pump();
      },
    };
  }

  /** Hands freed slots to the first waiters whose client is under its bound. */
  private pump(): void {
    for (let i = 0; i < this.queue.length && this.running < this.limits.max; ) {
      const w = this.queue[i]!;
      if (this.free(w.key)) w.grant(this.take(w.key));
      else i++;
    }
  }
}
