/** The kinds of failure a service may report; each surface maps them once. */
export type ErrorKind = 'invalid' | 'unauthenticated' | 'forbidden' | 'notFound' | 'conflict' | 'tooLarge' | 'unavailable' | 'rateLimited';

/**
 * A failure whose message is safe to show to the caller. `code` is the
 * Freestyle error code (SCREAMING_SNAKE_CASE) the REST surfaces put in `code`;
 * `retryAfterSeconds` (kinds `unavailable`, `rateLimited`) tells the caller when to try again.
 */
export class DomainError extends Error {
  constructor(
    readonly kind: ErrorKind,
    message: string,
    readonly code?: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = 'DomainError';
  }
}

export const invalid = (message: string, code = 'BAD_REQUEST') => new DomainError('invalid', message, code);
export const unauthenticated = (message = 'Authentication required', code = 'UNAUTHORIZED') =>
  new DomainError('unauthenticated', message, code);
export const forbidden = (message = 'Forbidden', code = 'FORBIDDEN') => new DomainError('forbidden', message, code);
export const notFound = (message: string, code = 'NOT_FOUND') => new DomainError('notFound', message, code);
export const conflict = (message: string, code = 'CONFLICT') => new DomainError('conflict', message, code);
export const tooLarge = (message: string, code = 'PAYLOAD_TOO_LARGE') => new DomainError('tooLarge', message, code);

export const unavailable = (message: string, retryAfterSeconds: number, code = 'SERVICE_UNAVAILABLE') =>
  new DomainError('unavailable', message, code, retryAfterSeconds);

export const isDomainError = (e: unknown): e is DomainError => e instanceof DomainError;

/** Too many failed attempts: refused without looking, until `retryAfterSeconds` have passed. */
export const rateLimited = (message: string, retryAfterSeconds: number) => new DomainError('rateLimited', message, 'TOO_MANY_REQUESTS', retryAfterSeconds);

export const isRateLimited = (e: unknown): e is DomainError & { retryAfterSeconds: number } => e instanceof DomainError && e.kind === 'rateLimited';

/** What a refused decision was about; each surface's mapper names it in its own terms. */
export type DeniedResource = 'repo' | 'identity' | 'vm' | 'server';

/**
 * A decision the decision point refused, raised in one place (`Access`). It carries what was
 * asked and about what, never a surface's code: REST maps it to REPO_NOT_FOUND and friends,
 * smart HTTP to 401/404/403, JSON-RPC to its messages. `notFound` means the resource must look
 * as if it did not exist.
 */
export class AccessDenied extends DomainError {
  readonly resource: DeniedResource;
  readonly action: string;
  /** the resource as the caller named it (for messages) */
  readonly subject: string;

  constructor(kind: 'unauthenticated' | 'notFound' | 'forbidden', resource: DeniedResource, action: string, subject: string, message: string) {
    // a refusal is an answer, not a fault: no stack to capture (every git client's first request is one)
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      super(kind, message);
    } finally {
      Error.stackTraceLimit = limit;
    }
    this.resource = resource;
    this.action = action;
    this.subject = subject;
    this.name = 'AccessDenied';
  }
}

export const isAccessDenied = (e: unknown): e is AccessDenied => e instanceof AccessDenied;
