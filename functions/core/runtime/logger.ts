// JSON-lines logs (pino), one base field naming the function.
import { pino, type Logger } from 'pino';
import { errorMessage } from './errors.js';

export type { Logger };

export function createLogger(name: string, level = 'info', destination?: pino.DestinationStream): Logger {
  const options = { level, base: { function: name }, timestamp: pino.stdTimeFunctions.isoTime };
  return destination ? pino(options, destination) : pino(options);
}

let rejectionsLogged = false;

/**
 * Keeps a serving process up when a promise rejects with nobody handling it:
 * Node's default exits, failing every event in flight for one forgotten
 * promise. The rejection is logged at error level instead. Uncaught exceptions
 * still exit. Installed once per process: a second call changes nothing.
 */
export function logUnhandledRejections(log: Logger): void {
  if (rejectionsLogged) return;
  rejectionsLogged = true;
  process.on('unhandledRejection', (reason: unknown) => {
    const stack = reason instanceof Error ? reason.stack : undefined;
    log.error({ event: 'unhandled-rejection', err: errorMessage(reason), stack }, `unhandled promise rejection: ${errorMessage(reason)}`);
  });
}
