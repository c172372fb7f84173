// The three outcomes docs/architecture.md gives a function besides success: each
// error class maps to one HTTP status in the runtime.

/** Bad input (beyond what the schema checks): 400, no side effects. */
export class BadInputError extends Error {
  override readonly name = 'BadInputError';
}

/** Transient failure (API 5xx/429, S3 or registry unreachable, timeout): 503 so the broker retries. */
export class TransientError extends Error {
  override readonly name = 'TransientError';
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
