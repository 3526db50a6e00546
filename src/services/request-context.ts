import { AsyncLocalStorage } from 'node:async_hooks';

/** What the services may know about the request they run for, beyond its principal. */
export interface RequestContext {
  /** the peer address of the connection (the client of an anonymous request) */
  readonly clientAddress: string;
}

const storage = new AsyncLocalStorage<RequestContext>();

/** Runs `fn` (and everything it starts) as part of the request described by `ctx`; surfaces call this first. */
export function runInRequestContext<T>(ctx: RequestContext, fn: () => T): T {
  return storage.run(ctx, fn);
}

/** The context of the request being served, or undefined outside one (background work, the CLI). */
export function currentRequest(): RequestContext | undefined {
  return storage.getStore();
}
