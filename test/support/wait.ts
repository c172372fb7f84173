// Polling for tests, on vi.waitFor: it retries only while its callback throws
// (a returned undefined or false counts as done), so "not yet" is a throw here.
import { vi } from 'vitest';

export interface UntilOptions {
  /** ms; default 15 s. */
  timeout?: number;
  /** ms between probes; default 50. */
  interval?: number;
  /** Said after what was awaited when it times out (e.g. the last events seen). */
  context?: () => string;
}

class NotYet extends Error {}

/** Probes until `probe` gives something other than undefined or false, and returns it; on timeout the error names `what`. */
export async function until<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, options: UntilOptions = {}): Promise<T> {
  const { timeout = 15_000, interval = 50, context } = options;
  try {
    return await vi.waitFor(
      async () => {
        const v = await probe();
        if (v === undefined || v === false) throw new NotYet();
        return v;
      },
      { timeout, interval },
    );
  } catch (err) {
    // A probe that threw is retried like one that found nothing; its last error is kept as the cause.
    const last = err instanceof NotYet ? '' : ` (last probe failed: ${err instanceof Error ? err.message : String(err)})`;
    throw new Error(`timed out after ${timeout} ms waiting for ${what}${last}${context ? `; ${context()}` : ''}`, { cause: err });
  }
}
