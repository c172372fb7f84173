// The local mode's stand-in for a Knative MT broker: an HTTP ingress that
// accepts CloudEvents (binary or structured, 202) and routes each one to the
// subscribers of the Triggers whose filters match, with the Trigger's (else the
// Broker's) delivery spec: retries on 5xx/404/408/409/429/network errors with
// exponential or linear backoff, a per-attempt timeout, and a dead-letter sink
// that receives the event with knativeerrordest/-code/-data. A subscriber's
// 2xx reply that carries a CloudEvent is ingested as a new event. Delivery is
// asynchronous, concurrent and at-least-once; nothing is persisted.
//
// This file wires the parts together and holds the state; the parts are:
//   broker-ingress.ts   the HTTP ingress and the `publish` conversion
//   broker-routing.ts   the Broker's Triggers, hop counter, trigger matching, destination URLs
//   broker-delivery.ts  one event to one subscriber: retries, backoff, dead-letter sink, replies
//   broker-tasks.ts     deliveries in flight, idle(), backoff waits that close() cancels
import { fileURLToPath } from 'node:url';
import type { CloudEvent } from 'cloudevents';
import type { WireEvent } from '../functions/core/runtime/cloudevents-http.js';
import { deliverToTrigger, type BrokerObservation, type DeliveryContext } from './broker-delivery.js';
import { createIngressServer, listenOnLoopback, toWireEvent } from './broker-ingress.js';
import { admitEvent, matchingTriggers, pickBroker, resolveDestination, triggersOf } from './broker-routing.js';
import { createDeliveryTasks } from './broker-tasks.js';
import { DEFAULT_DELIVERY, loadEventingDir, type EffectiveDelivery, type EventingConfig, type KReference, type TriggerResource } from './triggers.js';

export type { BrokerObservation } from './broker-delivery.js';

export const DEFAULT_EVENTING_DIR = fileURLToPath(new URL('../eventing', import.meta.url));

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

export async function startLocalBroker(options: LocalBrokerOptions = {}): Promise<LocalBroker> {
  const config = options.eventing ?? loadEventingDir(options.eventingDir ?? DEFAULT_EVENTING_DIR);
  const brokerResource = pickBroker(config, options.broker);
  const namespace = options.broker?.namespace ?? brokerResource?.metadata.namespace ?? 'default';
  const name = options.broker?.name ?? brokerResource?.metadata.name;
  if (!name) throw new Error('local broker: the eventing config has no Broker and no broker option was given');
  const triggers = triggersOf(config, namespace, name);
  const services = new Map(Object.entries(options.services ?? {}));
  const maxBody = options.maxBodyBytes ?? 64 * 1024 * 1024;
  const observers = new Set<BrokerObserver>();
  const tasks = createDeliveryTasks();
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

  const delivery: DeliveryContext = {
    namespace,
    brokerResource,
    defaults: options.defaultDelivery ?? DEFAULT_DELIVERY,
    resolveDestination: (dest, ns) => resolveDestination(dest, ns, { resolve: options.resolve, services, self: { namespace, name, url } }),
    observe,
    sleep: tasks.sleep,
    backoffScale: options.backoffScale ?? 1,
    // A reply is a new event with one hop less; none once the broker closed.
    onReply: (reply, ttl) => {
      if (!closed) ingest(reply, 'reply', ttl);
    },
  };

  // Every event, from the ingress, publish() or a reply, enters here.
  const ingest = (event: WireEvent, via: 'http' | 'publish' | 'reply', ttl?: number): void => {
    const admission = admitEvent(event, ttl);
    if (!admission.admitted) {
      observe({ kind: 'dropped', event: admission.event, reason: admission.reason });
      return;
    }
    const arrived = admission.event;
    const matched = matchingTriggers(triggers, arrived.attributes);
    observe({ kind: 'received', event: arrived, via, triggers: matched.map((t) => t.metadata.name) });
    for (const trigger of matched) tasks.track(deliverToTrigger(delivery, trigger, arrived, admission.hops));
  };

  const server = createIngressServer({ namespace, name, maxBodyBytes: maxBody, isClosed: () => closed, ingest: (event) => ingest(event, 'http') });
  const port = await listenOnLoopback(server, options.port ?? 0);
  url = `http://127.0.0.1:${port}/${namespace}/${name}`;

  return {
    url,
    namespace,
    name,
    triggers,
    async publish(event) {
      if (closed) throw new Error(`local broker ${namespace}/${name} is closed`);
      ingest(toWireEvent(event), 'publish');
    },
    onDelivery(observer) {
      observers.add(observer);
      return () => observers.delete(observer);
    },
    setService(service, serviceUrl) {
      services.set(service, serviceUrl);
    },
    inFlight: tasks.inFlight,
    idle: tasks.idle,
    async close() {
      if (closed) return;
      closed = true;
      tasks.abandon();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
