// The local mode's stand-in for a Knative MT broker: an HTTP ingress that
// accepts CloudEvents (binary or structured, 202) and routes each one to the
// subscribers of the Triggers whose filters match, with the Trigger's (else the
// Broker's) delivery spec: retries on 5xx/404/408/409/429/network errors with
// exponential or linear backoff, a per-attempt timeout, and a dead-letter sink
// that receives the event with knativeerrordest/-code/-data. A subscriber's
// 2xx reply that carries a CloudEvent is ingested as a new event. Delivery is
// asynchronous, concurrent and at-least-once; nothing is persisted.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { CloudEvent } from 'cloudevents';
import { carriesCloudEvent, decodeHttp, encodeBinary, fromSdkEvent, type WireEvent } from '../functions/core/runtime/cloudevents-http.js';
import { BadInputError } from '../functions/core/runtime/errors.js';
import {
  DEFAULT_DELIVERY,
  backoffMs,
  effectiveDelivery,
  loadEventingDir,
  triggerMatches,
  type BrokerResource,
  type Destination,
  type EffectiveDelivery,
  type EventingConfig,
  type KReference,
  type TriggerResource,
} from './triggers.js';

export const DEFAULT_EVENTING_DIR = fileURLToPath(new URL('../eventing', import.meta.url));

/** Knative's broker hop limit: the ingress sets it, each reply decrements it. */
const DEFAULT_BROKER_TTL = 255;
/** Knative truncates knativeerrordata to this many bytes of the response body. */
const ERROR_DATA_MAX_BYTES = 1024;

interface LocalBrokerOptions {
  /** Brokers and Triggers to serve; default: every Broker/Trigger in `eventingDir`. */
  eventing?: EventingConfig;
  /** Default: the repository's eventing/ directory. */
  eventingDir?: string;
  /** The Broker this process is (default: the only or first Broker in the config). */
  broker?: { namespace: string; name: string };
  /** Knative Service URLs by `name` or `namespace/name`, for `subscriber.ref` and `deadLetterSink.ref`. */
  services?: Record<string, string>;
  /** Resolves other references (tried first); return undefined to fall back to `services`. */
  resolve?: (ref: KReference, namespace: string) => string | undefined;
  /** Port of the ingress, 0 (default) picks a free one. Listens on loopback only. */
  port?: number;
  /** Multiplies every backoff delay; tests use a small factor to keep real timers short. */
  backoffScale?: number;
  /** Delivery when neither the Trigger nor the Broker has one (default: Knative's MT broker defaults). */
  defaultDelivery?: EffectiveDelivery;
  /** Largest accepted request body (default 64 MiB). */
  maxBodyBytes?: number;
}

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

type BrokerObserver = (observation: BrokerObservation) => void;

export interface LocalBroker {
  /** The ingress URL, `http://127.0.0.1:<port>/<namespace>/<broker>` (K_SINK for the functions). */
  readonly url: string;
  readonly namespace: string;
  readonly name: string;
  /** The Triggers of this Broker. */
  readonly triggers: readonly TriggerResource[];
  /** Ingests an event in process (same path as the HTTP ingress); throws BadInputError when invalid. */
  publish(event: CloudEvent<unknown> | WireEvent): Promise<void>;
  /** Registers an observer; returns a function that removes it. */
  onDelivery(observer: BrokerObserver): () => void;
  /** Sets or replaces the URL of a Knative Service (by `name` or `namespace/name`). */
  setService(name: string, url: string): void;
  /** Number of deliveries in flight (including ones waiting for a retry). */
  inFlight(): number;
  /** Resolves when no delivery is in flight, replies included. */
  idle(): Promise<void>;
  /** Stops the ingress; pending retries are abandoned (reported as dropped). */
  close(): Promise<void>;
}

interface Attempt {
  ok: boolean;
  status?: number;
  error?: string;
  body?: Buffer;
  reply?: WireEvent;
  retryable: boolean;
}

const RETRYABLE = new Set([404, 408, 409, 429]);

function isRetryableStatus(status: number): boolean {
  return status >= 500 || RETRYABLE.has(status);
}

export async function startLocalBroker(options: LocalBrokerOptions = {}): Promise<LocalBroker> {
  const config = options.eventing ?? loadEventingDir(options.eventingDir ?? DEFAULT_EVENTING_DIR);
  const brokerResource = pickBroker(config, options.broker);
  const namespace = options.broker?.namespace ?? brokerResource?.metadata.namespace ?? 'default';
  const name = options.broker?.name ?? brokerResource?.metadata.name;
  if (!name) throw new Error('local broker: the eventing config has no Broker and no broker option was given');
  const triggers = config.triggers.filter((t) => t.spec.broker === name && (t.metadata.namespace ?? 'default') === namespace);
  const services = new Map(Object.entries(options.services ?? {}));
  const scale = options.backoffScale ?? 1;
  const defaults = options.defaultDelivery ?? DEFAULT_DELIVERY;
  const maxBody = options.maxBodyBytes ?? 64 * 1024 * 1024;
  const observers = new Set<BrokerObserver>();
  const timers = new Map<NodeJS.Timeout, () => void>();
  let pending = 0;
  let idleWaiters: (() => void)[] = [];
  let closed = false;
  let url = '';

  const observe = (o: BrokerObservation): void => {
    for (const cb of observers) {
      try {
        cb(o);
      } catch (err) {
        console.error(`local broker: an observer threw on ${o.kind}: ${(err as Error).message}`);
      }
    }
  };

  const track = (work: Promise<void>): void => {
    pending++;
    void work
      .catch((err: unknown) => console.error(`local broker: delivery task failed unexpectedly: ${(err as Error).stack ?? String(err)}`))
      .finally(() => {
        pending--;
        if (pending === 0) {
          const waiters = idleWaiters;
          idleWaiters = [];
          for (const w of waiters) w();
        }
      });
  };

  // Resolves false when the broker closes during the wait.
  const sleep = (ms: number): Promise<boolean> =>
    new Promise((resolve) => {
      if (closed) return resolve(false);
      const timer = setTimeout(() => {
        timers.delete(timer);
        resolve(true);
      }, ms);
      timers.set(timer, () => resolve(false));
    });

  const resolveDestination = (dest: Destination, ns: string): string | undefined => {
    let base: string | undefined;
    if (dest.ref) {
      base = options.resolve?.(dest.ref, ns);
      if (base === undefined) {
        const refNs = dest.ref.namespace ?? ns;
        if (dest.ref.kind === 'Broker') base = dest.ref.name === name && refNs === namespace ? url : undefined;
        else if (dest.ref.kind === 'Service') base = services.get(`${refNs}/${dest.ref.name}`) ?? services.get(dest.ref.name);
      }
      if (base === undefined) return undefined;
      // Knative resolves `uri` relative to the ref's address when both are set.
      return dest.uri ? new URL(dest.uri, base.endsWith('/') ? base : `${base}/`).toString() : base;
    }
    return dest.uri;
  };

  const ingest = (event: WireEvent, via: 'http' | 'publish' | 'reply', ttl?: number): void => {
    const attributes = { ...event.attributes };
    const hops = ttl ?? parseTtl(attributes.knativebrokerttl);
    const arrived: WireEvent = { ...event, attributes };
    if (hops <= 0) {
      observe({ kind: 'dropped', event: arrived, reason: 'broker TTL exhausted (knativebrokerttl reached 0): reply loop?' });
      return;
    }
    attributes.knativebrokerttl = String(hops);
    attributes.knativearrivaltime = new Date().toISOString();
    const matched = triggers.filter((t) => triggerMatches(t, attributes));
    observe({ kind: 'received', event: arrived, via, triggers: matched.map((t) => t.metadata.name) });
    for (const trigger of matched) track(deliver(trigger, arrived, hops));
  };

  const deliver = async (trigger: TriggerResource, event: WireEvent, ttl: number): Promise<void> => {
    const triggerNs = trigger.metadata.namespace ?? namespace;
    const subscriber = resolveDestination(trigger.spec.subscriber, triggerNs);
    if (!subscriber) {
      observe({ kind: 'dropped', trigger: trigger.metadata.name, event, reason: `subscriber ${describeDestination(trigger.spec.subscriber)} of Trigger ${trigger.metadata.name} is not resolvable (no URL known for it)` });
      return;
    }
    let delivery: EffectiveDelivery;
    try {
      delivery = effectiveDelivery(trigger, brokerResource, defaults);
    } catch (err) {
      observe({ kind: 'dropped', trigger: trigger.metadata.name, event, reason: (err as Error).message });
      return;
    }
    // The broker's hop counter is its own business; subscribers do not see it.
    const { knativebrokerttl: _ttl, ...visible } = event.attributes;
    const outgoing: WireEvent = { ...event, attributes: visible };
    const base = { trigger: trigger.metadata.name, subscriber, event: outgoing };
    const result = await sendWithRetries(subscriber, outgoing, delivery, (attempt, a, delayMs) =>
      observe({ ...base, kind: 'retrying', attempt, delayMs, ...(a.status !== undefined ? { status: a.status } : {}), ...(a.error ? { error: a.error } : {}) }),
    );
    if (result === 'closed') {
      observe({ kind: 'dropped', trigger: trigger.metadata.name, event: outgoing, reason: 'broker closed during retries' });
      return;
    }
    const { attempt: last, attempts } = result;
    if (last.ok) {
      observe({ ...base, kind: 'delivered', status: last.status!, attempt: attempts, ...(last.reply ? { reply: last.reply } : {}) });
      if (last.reply && !closed) ingest(last.reply, 'reply', ttl - 1);
      return;
    }
    observe({ ...base, kind: 'failed', attempts, ...(last.status !== undefined ? { status: last.status } : {}), ...(last.error ? { error: last.error } : {}) });
    if (!delivery.deadLetterSink) {
      observe({ kind: 'dropped', trigger: trigger.metadata.name, event: outgoing, reason: `delivery to ${subscriber} failed after ${attempts} attempt(s) and Trigger ${trigger.metadata.name} has no dead-letter sink` });
      return;
    }
    const dls = resolveDestination(delivery.deadLetterSink, triggerNs);
    if (!dls) {
      observe({ kind: 'dropped', trigger: trigger.metadata.name, event: outgoing, reason: `dead-letter sink ${describeDestination(delivery.deadLetterSink)} is not resolvable` });
      return;
    }
    const code = last.status ?? 500;
    const errorBody = last.body ?? Buffer.from(`dispatch error: ${last.error ?? 'unknown'}`);
    const dead: WireEvent = {
      ...outgoing,
      attributes: {
        ...outgoing.attributes,
        knativeerrordest: subscriber,
        knativeerrorcode: String(code),
        knativeerrordata: errorBody.subarray(0, ERROR_DATA_MAX_BYTES).toString('base64'),
      },
    };
    const dlsResult = await sendWithRetries(dls, dead, delivery, (attempt, a, delayMs) =>
      observe({ trigger: trigger.metadata.name, subscriber: dls, event: dead, kind: 'retrying', attempt, delayMs, ...(a.status !== undefined ? { status: a.status } : {}), ...(a.error ? { error: a.error } : {}) }),
    );
    if (dlsResult !== 'closed' && dlsResult.attempt.ok) {
      observe({ ...base, event: dead, kind: 'dead-lettered', deadLetterSink: dls, status: dlsResult.attempt.status! });
    } else {
      const why = dlsResult === 'closed' ? 'broker closed' : (dlsResult.attempt.error ?? `HTTP ${dlsResult.attempt.status}`);
      observe({ kind: 'dropped', trigger: trigger.metadata.name, event: dead, reason: `dead-letter sink ${dls} did not accept the event: ${why}` });
    }
  };

  const sendWithRetries = async (
    target: string,
    event: WireEvent,
    delivery: EffectiveDelivery,
    onRetry: (attempt: number, failed: Attempt, delayMs: number) => void,
  ): Promise<{ attempt: Attempt; attempts: number } | 'closed'> => {
    let attempt = await sendOnce(target, event, delivery.timeoutMs);
    let attempts = 1;
    while (!attempt.ok && attempt.retryable && attempts <= delivery.retry) {
      const delayMs = backoffMs(delivery, attempts) * scale;
      onRetry(attempts, attempt, delayMs);
      if (!(await sleep(delayMs))) return 'closed';
      attempt = await sendOnce(target, event, delivery.timeoutMs);
      attempts++;
    }
    return { attempt, attempts };
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      console.error(`local broker: ingress failed on ${req.method} ${req.url}: ${(err as Error).stack ?? String(err)}`);
      if (!res.headersSent) reply(res, 500, { error: (err as Error).message });
    });
  });
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (req.method === 'GET' && (path === '/healthz' || path === '/readyz')) return reply(res, 200, { status: 'ok' });
    if (path !== '/' && path !== `/${namespace}/${name}`) return reply(res, 404, { error: `no broker at ${path} (this is ${namespace}/${name})` });
    if (req.method !== 'POST') return reply(res, 405, { error: `method ${req.method} not allowed: POST a CloudEvent` });
    if (closed) return reply(res, 503, { error: 'broker is shutting down' });
    let body: Buffer;
    try {
      body = await readBody(req, maxBody);
    } catch (err) {
      return reply(res, 413, { error: (err as Error).message });
    }
    let event: WireEvent;
    try {
      event = decodeHttp(req.headers, body);
    } catch (err) {
      if (err instanceof BadInputError) return reply(res, 400, { error: err.message });
      throw err;
    }
    ingest(event, 'http');
    res.writeHead(202).end();
  };

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/${namespace}/${name}`;

  return {
    url,
    namespace,
    name,
    triggers,
    async publish(event) {
      if (closed) throw new Error(`local broker ${namespace}/${name} is closed`);
      ingest(isWireEvent(event) ? (validateWire(event), event) : fromSdkEvent(event), 'publish');
    },
    onDelivery(observer) {
      observers.add(observer);
      return () => observers.delete(observer);
    },
    setService(service, serviceUrl) {
      services.set(service, serviceUrl);
    },
    inFlight: () => pending,
    idle: () => (pending === 0 ? Promise.resolve() : new Promise<void>((resolve) => idleWaiters.push(resolve))),
    async close() {
      if (closed) return;
      closed = true;
      for (const [timer, cancel] of timers) {
        clearTimeout(timer);
        cancel();
      }
      timers.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function sendOnce(target: string, event: WireEvent, timeoutMs: number | undefined): Promise<Attempt> {
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

function pickBroker(config: EventingConfig, wanted: { namespace: string; name: string } | undefined): BrokerResource | undefined {
  if (wanted) return config.brokers.find((b) => b.metadata.name === wanted.name && (b.metadata.namespace ?? 'default') === wanted.namespace);
  return config.brokers[0];
}

function parseTtl(value: string | undefined): number {
  if (value === undefined) return DEFAULT_BROKER_TTL;
  const n = Number(value);
  return Number.isInteger(n) ? n : DEFAULT_BROKER_TTL;
}

function describeDestination(d: Destination): string {
  if (d.ref) return `${d.ref.kind} ${d.ref.namespace ? `${d.ref.namespace}/` : ''}${d.ref.name}${d.uri ? ` + ${d.uri}` : ''}`;
  return d.uri ?? '(empty)';
}

function isWireEvent(e: CloudEvent<unknown> | WireEvent): e is WireEvent {
  return typeof (e as WireEvent).attributes === 'object' && (e as WireEvent).attributes !== null && !('specversion' in e);
}

function validateWire(e: WireEvent): void {
  decodeHttp(encodeBinary(e).headers, e.data ?? Buffer.alloc(0));
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
}

async function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > max) throw new Error(`request body exceeds ${max} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
