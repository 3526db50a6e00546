import { rateLimited } from '../domain/errors.ts';

export interface AuthLimits {
  /** failed attempts allowed per key within the window */
  failures: number;
  windowMs: number;
}

/** One attempt in flight: counted as a failure until it proves otherwise. */
export interface Attempt {
  /** the credentials were right: the attempt is taken back, the account's count cleared */
  succeed(): void;
  /** the credentials were wrong: the attempt stays counted */
  fail(): void;
}

/**
 * Counts authentication attempts per key in a sliding window: the client's address, and the
 * username or the presented key's prefix. An attempt is counted when it starts (so that a
 * burst of parallel guesses cannot all pass the check before the first failure is recorded)
 * and taken back when it succeeds; once a key has `failures` attempts in the window, every
 * attempt under it is refused without checking the credentials (no scrypt, no look-up) until
 * the oldest one leaves the window.
 *
 * A username's count does not lock out the addresses that recently signed in as that user
 * ("familiar" addresses): otherwise anyone could keep any named account locked. An attacker
 * guessing from new addresses is limited per username and per address; the owner signing in
 * from where it did before is not.
 *
 * The counts live in this process (bounded: the least recently touched keys go first past
 * `maxKeys`): with several nodes each counts its own, so the budget is per node.
 */
export class AuthLimiter {
  private readonly attempts = new Map<string, number[]>();
  /** account key -> addresses that signed in as it, with when */
  private readonly familiar = new Map<string, Map<string, number>>();

  constructor(
    private readonly limits: AuthLimits,
    private readonly maxKeys = 100_000,
    private readonly now: () => number = Date.now,
    /** how long a successful sign-in keeps an address familiar */
    private readonly familiarMs = 30 * 24 * 3600 * 1000,
  ) {}

  private recent(key: string, t: number): number[] {
    const list = this.attempts.get(key);
    if (!list) return [];
    while (list.length && list[0]! <= t - this.limits.windowMs) list.shift();
    if (list.length === 0) this.attempts.delete(key);
    return list;
  }

  private isFamiliar(account: string, address: string, t: number): boolean {
    const seen = this.familiar.get(account)?.get(address);
    return seen !== undefined && t - seen < this.familiarMs;
  }

  /**
   * Starts an attempt by `address` for `account` (a username or key prefix): throws
   * RateLimited when a key has no attempts left, else counts it under both keys.
   */
  begin(address: string, account: string): Attempt {
    const t = this.now();
    const keys = this.isFamiliar(account, address, t) ? [address] : [address, account];
    let wait = 0;
    for (const k of keys) {
      const list = this.recent(k, t);
      if (list.length >= this.limits.failures) wait = Math.max(wait, list[0]! + this.limits.windowMs - t);
    }
    if (wait > 0) throw rateLimited('Too many failed authentication attempts; try again later', Math.max(1, Math.ceil(wait / 1000)));
    for (const k of keys) this.push(k, t);
    let done = false;
    return {
      succeed: () => {
        if (done) return;
        done = true;
        for (const k of keys) this.remove(k, t);
        this.attempts.delete(account);
        this.remember(account, address, this.now());
      },
      fail: () => {
        done = true;
      },
    };
  }

  private push(key: string, t: number): void {
    const list = this.recent(key, t);
    list.push(t);
    if (list.length > this.limits.failures * 2) list.shift();
    this.attempts.delete(key); // re-insert: the map's order is least recently touched first
    this.attempts.set(key, list);
    if (this.attempts.size > this.maxKeys) this.attempts.delete(this.attempts.keys().next().value as string);
  }

  private remove(key: string, t: number): void {
    const list = this.attempts.get(key);
    const i = list?.lastIndexOf(t) ?? -1;
    if (list && i >= 0) list.splice(i, 1);
  }

  private remember(account: string, address: string, t: number): void {
    let m = this.familiar.get(account);
    if (!m) {
      m = new Map();
      this.familiar.set(account, m);
      if (this.familiar.size > this.maxKeys) this.familiar.delete(this.familiar.keys().next().value as string);
    }
    m.delete(address);
    m.set(address, t);
    if (m.size > 32) m.delete(m.keys().next().value as string);
  }
}
