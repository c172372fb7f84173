// Delivery of one event to one Trigger's subscriber, as the Knative broker's
// filter does it: POST in binary mode with a per-attempt timeout, retries on
// 5xx/404/408/409/429/network errors after the Trigger's (else the Broker's)
// backoff, then the dead-letter sink with knativeerrordest/-code/-data. A 2xx
// reply that carries a CloudEvent is handed back for the broker to ingest.
// Outcomes are reported as BrokerObservations; the state (timers, in-flight
// count, closing) stays in broker.ts and reaches here as callbacks.
import { carriesCloudEvent, decodeHttp, encodeBinary, type WireEvent } from '../functions/core/runtime/cloudevents-http.js';
import { describeDestination } from './broker-routing.js';
import { backoffMs, effectiveDelivery, type BrokerResource, type Destination, type EffectiveDelivery, type TriggerResource } from './triggers.js';

/** Knative truncates knativeerrordata to this many bytes of the response body. */
const ERROR_DATA_MAX_BYTES = 1024;

interface Delivery {
  trigger: string;
  subscriber: string;
  event: WireEvent;
}

/** What the broker reports to observers, one record per event and per delivery outcome. */
export type BrokerObservation =
  | { kind: 'received'; event: WireEvent; via: 'http' | 'publish' | 'reply'; triggers: string[] }
  | (Delivery & { kind: 'delivered'; status: number; attempt: number; reply?: WireEvent })
  | (Delivery & { kind: 'retrying'; attempt: number; status?: number; error?: string; delayMs: number })
  | (Delivery & { kind: 'failed'; attempts: number; status?: number; error?: string })
  | (Delivery & { kind: 'dead-lettered'; deadLetterSink: string; status: number })
  | { kind: 'dropped'; trigger?: string; event: WireEvent; reason: string };

/** The outcome of one POST to a subscriber or dead-letter sink. */
export interface Attempt {
  ok: boolean;
  status?: number;
  error?: string;
  body?: Buffer;
  reply?: WireEvent;
  retryable: boolean;
}

const RETRYABLE = new Set([404, 408, 409, 429]);

export function isRetryableStatus(status: number): boolean {
  return status >= 500 || RETRYABLE.has(status);
}

/**
 * The wait before retrying after `attempts` attempts ended with `last`
 * (the delivery's backoff times `scale`), or undefined when there is no retry:
 * it succeeded, the failure is not retryable, or the retries are used up.
 */
export function retryDelayMs(delivery: EffectiveDelivery, last: Attempt, attempts: number, scale = 1): number | undefined {
  if (last.ok || !last.retryable || attempts > delivery.retry) return undefined;
  return backoffMs(delivery, attempts) * scale;
}

/** The event as the dead-letter sink receives it: where it failed, the code, and the start of the body. */
export function deadLetterEvent(event: WireEvent, subscriber: string, last: Attempt): WireEvent {
  const code = last.status ?? 500;
  const errorBody = last.body ?? Buffer.from(`dispatch error: ${last.error ?? 'unknown'}`);
  return {
    ...event,
    attributes: {
      ...event.attributes,
      knativeerrordest: subscriber,
      knativeerrorcode: String(code),
      knativeerrordata: errorBody.subarray(0, ERROR_DATA_MAX_BYTES).toString('base64'),
    },
  };
}

/** Waits `ms`; resolves false when the broker closes during the wait. */
export type Sleep = (ms: number) => Promise<boolean>;

/** Sends until an attempt succeeds or no retry is left; 'closed' when the broker closed while waiting. */
export async function sendWithRetries(
  target: string,
  event: WireEvent,
  delivery: EffectiveDelivery,
  timing: { sleep: Sleep; scale: number },
  onRetry: (attempt: number, failed: Attempt, delayMs: number) => void,
): Promise<{ attempt: Attempt; attempts: number } | 'closed'> {
  let attempt = await sendOnce(target, event, delivery.timeoutMs);
  let attempts = 1;
  for (let delayMs = retryDelayMs(delivery, attempt, attempts, timing.scale); delayMs !== undefined; delayMs = retryDelayMs(delivery, attempt, attempts, timing.scale)) {
    onRetry(attempts, attempt, delayMs);
    if (!(await timing.sleep(delayMs))) return 'closed';
    attempt = await sendOnce(target, event, delivery.timeoutMs);
    attempts++;
  }
  return { attempt, attempts };
}

export async function sendOnce(target: string, event: WireEvent, timeoutMs: number | undefined): Promise<Attempt> {
  const { headers, body } = encodeBinary(event);
  let res: Response;
  try {
    res = await fetch(target, {
      method: 'POST',
      headers,
      ...(body ? { body } : {}),
      ...(timeoutMs !== undefined ? { signal: AbortSignal.timeout(timeoutMs) } : {}),
    });
  } catch (err) {
    return { ok: false, retryable: true, error: describeFetchError(err, target) };
  }
  let responseBody: Buffer;
  try {
    responseBody = Buffer.from(await res.arrayBuffer());
  } catch (err) {
    return { ok: false, retryable: true, status: res.status, error: `reading the response of ${target}: ${(err as Error).message}` };
  }
  if (res.status < 200 || res.status >= 300) {
    return { ok: false, status: res.status, body: responseBody, retryable: isRetryableStatus(res.status) };
  }
  const responseHeaders = Object.fromEntries(res.headers.entries());
  if (!carriesCloudEvent(responseHeaders)) return { ok: true, status: res.status, retryable: false };
  try {
    return { ok: true, status: res.status, reply: decodeHttp(responseHeaders, responseBody), retryable: false };
  } catch (err) {
    // Knative's filter answers 502 for an unreadable reply, so the delivery is retried.
    const message = `invalid reply event from ${target}: ${(err as Error).message}`;
    return { ok: false, status: 502, body: Buffer.from(message), error: message, retryable: true };
  }
}

function describeFetchError(err: unknown, target: string): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError') return `timed out sending to ${target}`;
  const cause = e.cause?.code ?? e.cause?.message;
  return `POST ${target}: ${e.message}${cause ? ` (${cause})` : ''}`;
}

/** What delivering needs from the broker that runs it. */
export interface DeliveryContext {
  /** The broker's namespace, for Triggers without one. */
  namespace: string;
  brokerResource: BrokerResource | undefined;
  /** Delivery when neither the Trigger nor the Broker has one. */
  defaults: EffectiveDelivery;
  resolveDestination(dest: Destination, namespace: string): string | undefined;
  observe(observation: BrokerObservation): void;
  sleep: Sleep;
  /** Multiplies every backoff delay. */
  backoffScale: number;
  /** A subscriber's reply event, with the hops it has left. */
  onReply(reply: WireEvent, ttl: number): void;
}

/** Delivers one admitted event (with `ttl` hops left) to one Trigger's subscriber, dead-lettering it if that fails. */
export async function deliverToTrigger(ctx: DeliveryContext, trigger: TriggerResource, event: WireEvent, ttl: number): Promise<void> {
  const { observe } = ctx;
  const timing = { sleep: ctx.sleep, scale: ctx.backoffScale };
  const triggerNs = trigger.metadata.namespace ?? ctx.namespace;
  const subscriber = ctx.resolveDestination(trigger.spec.subscriber, triggerNs);
  if (!subscriber) {
    observe({
      kind: 'dropped',
      trigger: trigger.metadata.name,
      event,
      reason: `subscriber ${describeDestination(trigger.spec.subscriber)} of Trigger ${trigger.metadata.name} is not resolvable (no URL known for it)`,
    });
    return;
  }
  let delivery: EffectiveDelivery;
  try {
    delivery = effectiveDelivery(trigger, ctx.brokerResource, ctx.defaults);
  } catch (err) {
    observe({ kind: 'dropped', trigger: trigger.metadata.name, event, reason: (err as Error).message });
    return;
  }
  // The broker's hop counter is its own business; subscribers do not see it.
  const { knativebrokerttl: _ttl, ...visible } = event.attributes;
  const outgoing: WireEvent = { ...event, attributes: visible };
  const base = { trigger: trigger.metadata.name, subscriber, event: outgoing };
  const result = await sendWithRetries(subscriber, outgoing, delivery, timing, (attempt, a, delayMs) =>
    observe({ ...base, kind: 'retrying', attempt, delayMs, ...(a.status !== undefined ? { status: a.status } : {}), ...(a.error ? { error: a.error } : {}) }),
  );
  if (result === 'closed') {
    observe({ kind: 'dropped', trigger: trigger.metadata.name, event: outgoing, reason: 'broker closed during retries' });
    return;
  }
  const { attempt: last, attempts } = result;
  if (last.ok) {
    observe({ ...base, kind: 'delivered', status: last.status!, attempt: attempts, ...(last.reply ? { reply: last.reply } : {}) });
    if (last.reply) ctx.onReply(last.reply, ttl - 1);
    return;
  }
  observe({ ...base, kind: 'failed', attempts, ...(last.status !== undefined ? { status: last.status } : {}), ...(last.error ? { error: last.error } : {}) });
  if (!delivery.deadLetterSink) {
    observe({
      kind: 'dropped',
      trigger: trigger.metadata.name,
      event: outgoing,
      reason: `delivery to ${subscriber} failed after ${attempts} attempt(s) and Trigger ${trigger.metadata.name} has no dead-letter sink`,
    });
    return;
  }
  await deadLetter(ctx, trigger, delivery, delivery.deadLetterSink, base, last);
}

/** Sends a failed delivery's event to the dead-letter sink, with the same retries. */
async function deadLetter(ctx: DeliveryContext, trigger: TriggerResource, delivery: EffectiveDelivery, sink: Destination, failed: Delivery, last: Attempt): Promise<void> {
  const { observe } = ctx;
  const dls = ctx.resolveDestination(sink, trigger.metadata.namespace ?? ctx.namespace);
  if (!dls) {
    observe({ kind: 'dropped', trigger: trigger.metadata.name, event: failed.event, reason: `dead-letter sink ${describeDestination(sink)} is not resolvable` });
    return;
  }
  const dead = deadLetterEvent(failed.event, failed.subscriber, last);
  const dlsResult = await sendWithRetries(dls, dead, delivery, { sleep: ctx.sleep, scale: ctx.backoffScale }, (attempt, a, delayMs) =>
    observe({
      trigger: trigger.metadata.name,
      subscriber: dls,
      event: dead,
      kind: 'retrying',
      attempt,
      delayMs,
      ...(a.status !== undefined ? { status: a.status } : {}),
      ...(a.error ? { error: a.error } : {}),
    }),
  );
  if (dlsResult !== 'closed' && dlsResult.attempt.ok) {
    observe({ ...failed, event: dead, kind: 'dead-lettered', deadLetterSink: dls, status: dlsResult.attempt.status! });
  } else {
    const why = dlsResult === 'closed' ? 'broker closed' : (dlsResult.attempt.error ?? `HTTP ${dlsResult.attempt.status}`);
    observe({ kind: 'dropped', trigger: trigger.metadata.name, event: dead, reason: `dead-letter sink ${dls} did not accept the event: ${why}` });
  }
}
