// The env file of the local mode (`.state/run/env`) and what the CLI makes of it.
// While the local mode runs, the file exports its S3, broker and cluster settings;
// when it stops, the file is rewritten as stale (the settings unset, the stop
// time set), because the ports it named are dead and may be reused. Both carry
// KCR_LOCAL_ENV_FILE, so a shell that sourced either, before or after the stop,
// gets "local mode is not running" from the CLI instead of a connection error.
import { readFileSync } from 'node:fs';
import { errorMessage } from '../functions/core/runtime/errors.js';

const ENV_FILE_VAR = 'KCR_LOCAL_ENV_FILE';
const STOPPED_VAR = 'KCR_LOCAL_STOPPED';

/** The local mode is not running, though the environment says it was used: exit 1. */
class LocalModeNotRunning extends Error {
  override readonly name = 'LocalModeNotRunning';
}

const quote = (v: string) => `'${v.replaceAll("'", `'\\''`)}'`;

/** The file a running local mode writes: `source` it to point the CLI at it. */
export function liveEnvFile(file: string, env: Record<string, string>): string {
  return `${Object.entries({ ...env, [ENV_FILE_VAR]: file })
    .map(([k, v]) => `export ${k}=${quote(v)}`)
    .join('\n')}\n`;
}

/** What the file becomes once the local mode stopped. */
export function staleEnvFile(file: string, env: Record<string, string>, stoppedAt: Date): string {
  return [
    `# kcr local mode is not running (it stopped at ${stoppedAt.toISOString()}); \`npm start\` writes a live file here.`,
    `unset ${Object.keys(env).join(' ')}`,
    `export ${ENV_FILE_VAR}=${quote(file)}`,
    `export ${STOPPED_VAR}=${quote(stoppedAt.toISOString())}`,
    '',
  ].join('\n');
}

const restart = (file: string) => `start it with \`npm start\`, then \`source ${file}\` again`;

/** Throws LocalModeNotRunning when the environment comes from a local mode that stopped. */
export function checkLocalEnv(env: NodeJS.ProcessEnv): void {
  const file = env[ENV_FILE_VAR];
  if (!file) return;
  if (env[STOPPED_VAR]) throw new LocalModeNotRunning(`local mode is not running: it stopped at ${env[STOPPED_VAR]}; ${restart(file)}`);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new LocalModeNotRunning(`local mode is not running: its env file ${file} cannot be read (${errorMessage(err)}); ${restart(file)}`);
  }
  const stopped = new RegExp(`^export ${STOPPED_VAR}='([^']*)'$`, 'm').exec(text);
  if (stopped) throw new LocalModeNotRunning(`local mode is not running: it stopped at ${stopped[1]} (${file} says so); ${restart(file)}`);
}

/**
 * A failure to connect to the endpoints a local-mode environment names means
 * the local mode is gone (killed without its cleanup, or restarted on other ports).
 */
export function localModeGone(err: unknown, env: NodeJS.ProcessEnv): LocalModeNotRunning | undefined {
  const file = env[ENV_FILE_VAR];
  if (!file || !refused(err)) return undefined;
  return new LocalModeNotRunning(`local mode is not running: ${errorMessage(err)}; ${restart(file)}`);
}

function refused(err: unknown, depth = 0): boolean {
  if (!(err instanceof Error) || depth > 5) return false;
  if ((err as NodeJS.ErrnoException).code === 'ECONNREFUSED' || err.message.includes('ECONNREFUSED')) return true;
  if (err instanceof AggregateError && err.errors.some((e) => refused(e, depth + 1))) return true;
  return refused(err.cause, depth + 1);
}
