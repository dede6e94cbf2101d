/**
 * Errors of OTTL text, found at config time: where in the statement (a 1-based column, so an operator can
 * count to it), and a stable code for callers and tests.
 */
export type OttlErrorCode = 'OTTL_SYNTAX' | 'OTTL_TYPE' | 'OTTL_UNKNOWN_PATH' | 'OTTL_UNKNOWN_FUNCTION' | 'OTTL_CONTEXT';

export class OttlError extends Error {
  override readonly name = 'OttlError';
  constructor(
    readonly code: OttlErrorCode,
    /** What is wrong, without the position. */
    readonly reason: string,
    /** Offset in the statement text. */
    readonly offset: number,
  ) {
    super(`${reason} (at column ${offset + 1})`);
  }
}

/**
 * An error while evaluating a statement against one span (a converter given a value it cannot take, a
 * division by zero, a key of the wrong type): what `error_mode` decides about.
 */
export class OttlRuntimeError extends Error {
  override readonly name = 'OttlRuntimeError';
}
