// Sends result events to the broker at K_SINK (binary mode), retrying with
// exponential backoff. When every try fails the caller answers 503, so the
// broker redelivers the input and nothing is lost.
import { HTTP, type CloudEvent } from 'cloudevents';
import { TransientError, errorMessage } from './errors.js';

export interface EmitterOptions {
  sink: string;
  retries: number;
  backoffMs: number;
  timeoutMs: number;
}

export type Emit = (event: CloudEvent<unknown>) => Promise<void>;

export function createEmitter({ sink, retries, backoffMs, timeoutMs }: EmitterOptions): Emit {
  return async (event) => {
    const message = HTTP.binary(event);
    const headers = Object.fromEntries(Object.entries(message.headers).map(([k, v]) => [k, String(v)]));
    const body = typeof message.body === 'string' || message.body instanceof Uint8Array ? message.body : JSON.stringify(message.body);
    let lastError = '';
    for (let attempt = 0; attempt <= retries; attempt++) {
      if (attempt > 0) await sleep(backoffMs * 2 ** (attempt - 1));
      try {
        const res = await fetch(sink, { method: 'POST', headers, body, signal: AbortSignal.timeout(timeoutMs) });
        await res.arrayBuffer();
        if (res.ok) return;
        lastError = `HTTP ${res.status}`;
      } catch (err) {
        lastError = errorMessage(err);
      }
    }
    throw new TransientError(`could not send ${event.type} ${event.id} to ${sink} after ${retries + 1} tries: ${lastError}`);
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
