// JSON-lines logs (pino), one base field naming the function.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(name: string, level = 'info', destination?: pino.DestinationStream): Logger {
  const options = { level, base: { function: name }, timestamp: pino.stdTimeFunctions.isoTime };
  return destination ? pino(options, destination) : pino(options);
}
