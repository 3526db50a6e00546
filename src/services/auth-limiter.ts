import { rateLimited } from '../domain/errors.ts';

export interface AuthLimits {
  /** failed attempts allowed per key within the window */
  failures: number;
  windowMs: number;
}

/**
 * Counts failed authentications per key (the client's address, and the username or the
 * presented key's prefix) in a sliding window. Once a key has used its budget, every attempt
 * under it is refused without checking the credentials (no scrypt, no look-up) until the
 * oldest failure leaves the window. Successes are never counted; a success clears the
 * username's or key's count (not the address's).
 *
 * The counts live in this process (bounded: the least recently touched keys go first past
 * `maxKeys`): with several nodes each counts its own, so the budget is per node.
 */
export class AuthLimiter {
  private readonly fails = new Map<string, number[]>();

  constructor(
    private readonly limits: AuthLimits,
    private readonly maxKeys = 100_000,
    private readonly now: () => number = Date.now,
  ) {}

  private recent(key: string, t: number): number[] {
    const list = this.fails.get(key);
    if (!list) return [];
    while (list.length && list[0]! <= t - this.limits.windowMs) list.shift();
    if (list.length === 0) this.fails.delete(key);
    return list;
  }

  /** Throws RateLimited when any key has no attempts left. */
  check(keys: string[]): void {
    const t = this.now();
    let wait = 0;
    for (const k of keys) {
      const list = this.recent(k, t);
      if (list.length >= this.limits.failures) wait = Math.max(wait, list[0]! + this.limits.windowMs - t);
    }
    if (wait > 0) throw rateLimited('Too many failed authentication attempts; try again later', Math.max(1, Math.ceil(wait / 1000)));
  }

  /** Records one failed attempt under every key. */
  fail(keys: string[]): void {
    const t = this.now();
    for (const k of keys) {
      const list = this.recent(k, t);
      list.push(t);
      if (list.length > this.limits.failures) list.shift();
      this.fails.delete(k); // re-insert: the map's order is least recently touched first
      this.fails.set(k, list);
      if (this.fails.size > this.maxKeys) this.fails.delete(this.fails.keys().next().value as string);
    }
  }

  /** A success: the account's (or key's) count starts again; the address keeps its count. */
  succeed(key: string): void {
    this.fails.delete(key);
  }
}
