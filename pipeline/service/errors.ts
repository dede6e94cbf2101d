/**
 * Typed errors with stable codes. Callers switch on `code`, never on messages, and a message never
 * carries request data beyond what an operator needs (no token, no attribute values).
 */

export type PipelineErrorCode =
  | 'INVALID_ARGUMENT' // the data itself is bad: permanent
  | 'UNAUTHENTICATED' // the sender could not be authenticated: permanent for this request
  | 'PAYLOAD_TOO_LARGE' // over a configured size limit: permanent
  | 'MEMORY_LIMIT' // memory_limiter is refusing: retryable
  | 'QUEUE_FULL' // a bounded queue is full: retryable
  | 'UNAVAILABLE' // downstream or a dependency is unavailable: retryable
  | 'SHUTTING_DOWN'; // the component is stopping: retryable

const RETRYABLE: ReadonlySet<PipelineErrorCode> = new Set(['MEMORY_LIMIT', 'QUEUE_FULL', 'UNAVAILABLE', 'SHUTTING_DOWN']);

export class PipelineError extends Error {
  readonly code: PipelineErrorCode;
  readonly retryable: boolean;
  /** Suggested delay before the sender retries, when the refusing stage knows one. */
  readonly retryAfterMs: number;

  constructor(code: PipelineErrorCode, message: string, retryAfterMs = 0, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PipelineError';
    this.code = code;
    this.retryable = RETRYABLE.has(code);
    this.retryAfterMs = retryAfterMs;
  }
}

export function invalidArgument(message: string): PipelineError {
  return new PipelineError('INVALID_ARGUMENT', message);
}

/**
 * Any thrown value as a PipelineError; unknown failures are treated as retryable unavailability. A foreign
 * error's message may quote request data or a peer's words, so it never becomes the message (which is
 * answered to senders and logged): that is a fixed 'internal error', with the original kept as `cause`.
 */
export function asPipelineError(err: unknown): PipelineError {
  if (err instanceof PipelineError) return err;
  return new PipelineError('UNAVAILABLE', INTERNAL_ERROR, 0, { cause: err });
}

export const INTERNAL_ERROR = 'internal error';
