// The three outcomes docs/architecture.md gives a function besides success: bad
// input and transient failures map to an HTTP status in the runtime, a permanent
// failure to a *.failed event from the handler.

/** Bad input (beyond what the schema checks): 400, no side effects. */
export class BadInputError extends Error {
  override readonly name = 'BadInputError';
}

/** Transient failure (API 5xx/429, S3 or registry unreachable, timeout): 503 so the broker retries. */
export class TransientError extends Error {
  override readonly name = 'TransientError';
}

/**
 * A permanent failure of the checkpoint being handled (a gone or invalid
 * archive, a deleted manifest): the handler reports it as checkpoint.failed at
 * its own stage and answers 2xx, since retrying cannot help.
 */
export class PermanentFailure extends Error {
  override readonly name = 'PermanentFailure';
}

/** A configuration value that cannot be used: start-up fails with the variable's name. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) {
    const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
    return `${err.message}${cause && !err.message.includes(cause.slice(2)) ? cause : ''}`;
  }
  return String(err);
}

/** A server's answer (its HTTP status) that retrying the same request cannot change: a 4xx other than those with a meaning of their own. */
export class RefusedError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}
