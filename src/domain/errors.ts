/** The kinds of failure a service may report; each surface maps them once. */
export type ErrorKind = 'invalid' | 'unauthenticated' | 'forbidden' | 'notFound' | 'conflict' | 'tooLarge' | 'unavailable';

/**
 * A failure whose message is safe to show to the caller. `code` is the
 * Freestyle error code (SCREAMING_SNAKE_CASE) the REST surfaces put in `code`;
 * `retryAfterSeconds` (kind `unavailable`) tells the caller when to try again.
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
