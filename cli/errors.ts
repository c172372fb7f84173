// `kcr` exits 1 on a failure and 2 on a usage error (bad flags or arguments).

/** The command line itself is wrong: exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
