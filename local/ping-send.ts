// Sending one PingSource tick: build its event, resolve its sink, POST it with
// the adapter's retries, and report the outcome as 'fired' or 'send-failed'.
import type { WireEvent } from '../functions/core/runtime/cloudevents-http.js';
import { makePingEvent } from './ping-event.js';
import { resolveSink, sendCloudEvent, type PingSourceResource, type SinkResolver } from './sources.js';

export type PingSendObservation =
  | { kind: 'fired'; namespace: string; name: string; sink: string; event: WireEvent; status: number }
  | { kind: 'send-failed'; namespace: string; name: string; sink: string; event: WireEvent; error: string };

export interface PingSendOptions {
  resolveSink?: SinkResolver | undefined;
  /** Send retries after the first attempt (default 5, as the mt-ping adapter). */
  sendRetries?: number | undefined;
  /** First send backoff in ms (default 50, doubling). */
  sendBackoffMs?: number | undefined;
}

/** Sends the PingSource's event once; resolves with it, or rejects after reporting why it was not accepted. */
export async function sendPing(source: PingSourceResource, options: PingSendOptions, observe: (o: PingSendObservation) => void): Promise<WireEvent> {
  const namespace = source.metadata.namespace!;
  const name = source.metadata.name;
  const event = makePingEvent(source);
  let sink: string;
  try {
    sink = resolveSink(source.spec.sink, namespace, options.resolveSink);
  } catch (err) {
    observe({ kind: 'send-failed', namespace, name, sink: '', event, error: (err as Error).message });
    throw err;
  }
  try {
    const status = await sendCloudEvent(sink, event, { retries: options.sendRetries ?? 5, backoffMs: options.sendBackoffMs ?? 50 });
    observe({ kind: 'fired', namespace, name, sink, event, status });
    return event;
  } catch (err) {
    observe({ kind: 'send-failed', namespace, name, sink, event, error: (err as Error).message });
    throw err;
  }
}
