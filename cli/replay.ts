// Replay of archived events: a copy with a new id and `kcrreplayof=<original id>`,
// sent in binary mode to a broker or straight to one function.
import { randomUUID } from 'node:crypto';
import { CloudEvent, HTTP } from 'cloudevents';
import { errorMessage } from '../functions/core/runtime/errors.js';
import { DEAD_LETTER_EXTENSIONS, REPLAY_OF_EXTENSION, type StructuredEvent } from '../functions/event-archive/archived-event.js';

/**
 * The event to send again. Everything is kept but the id, and the dead-letter
 * extensions, which Knative added about the original's failed delivery and would
 * make the replay look like a dead letter itself.
 */
export function replayEvent(original: StructuredEvent, newId: string = randomUUID()): CloudEvent<unknown> {
  const attrs: Record<string, unknown> = { ...original };
  for (const ext of DEAD_LETTER_EXTENSIONS) delete attrs[ext];
  return new CloudEvent<unknown>({ ...attrs, id: newId, [REPLAY_OF_EXTENSION]: original.id } as ConstructorParameters<typeof CloudEvent>[0]);
}

interface BinaryMessage {
  headers: Record<string, string>;
  body: string;
}

export function toBinary(event: CloudEvent<unknown>): BinaryMessage {
  const message = HTTP.binary(event);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(message.headers)) if (v !== undefined) headers[k] = String(v);
  const body = message.body;
  return { headers, body: typeof body === 'string' ? body : body === undefined ? '' : Buffer.from(body as Uint8Array).toString('utf8') };
}

type SendResult = { ok: boolean; status?: number; error?: string };

export async function send(target: string, message: BinaryMessage, fetchImpl: typeof fetch, timeoutMs: number): Promise<SendResult> {
  try {
    const res = await fetchImpl(target, { method: 'POST', headers: message.headers, body: message.body, signal: AbortSignal.timeout(timeoutMs) });
    const detail = res.ok ? '' : (await res.text()).slice(0, 500);
    return { ok: res.ok, status: res.status, ...(detail ? { error: detail } : {}) };
  } catch (err) {
    return { ok: false, error: `POST ${target} failed: ${errorMessage(err)}` };
  }
}

interface Destination {
  url: string;
  /** Whether it is the broker (which archives what it receives), not one function. */
  broker: boolean;
}

/** `--to` (a function), else `--broker`, else $KCR_BROKER_URL, else $K_SINK (the local mode's env file sets both). */
export function destinationOf(opts: { to?: string; broker?: string }, env: NodeJS.ProcessEnv): Destination | undefined {
  if (opts.to) return { url: opts.to, broker: false };
  const broker = opts.broker ?? env.KCR_BROKER_URL ?? env.K_SINK;
  return broker ? { url: broker, broker: true } : undefined;
}
