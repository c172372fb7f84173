// Where an event goes in the local broker, as pure decisions: which Broker
// this process is and its Triggers, the hop counter (knativebrokerttl) and
// arrival time an ingested event is stamped with, the Triggers whose filters
// match it, and the URL a Destination (subscriber or dead-letter sink)
// resolves to. No I/O and no state: broker.ts holds the state.
import type { WireEvent } from '../functions/core/runtime/cloudevents-http.js';
import { triggerMatches, type BrokerResource, type Destination, type EventAttributes, type EventingConfig, type KReference, type TriggerResource } from './triggers.js';

/** Knative's broker hop limit: the ingress sets it, each reply decrements it. */
const DEFAULT_BROKER_TTL = 255;

export function pickBroker(config: EventingConfig, wanted: { namespace: string; name: string } | undefined): BrokerResource | undefined {
  if (wanted) return config.brokers.find((b) => b.metadata.name === wanted.name && (b.metadata.namespace ?? 'default') === wanted.namespace);
  return config.brokers[0];
}

/** The Triggers that subscribe to the Broker `namespace/name`. */
export function triggersOf(config: EventingConfig, namespace: string, name: string): TriggerResource[] {
  return config.triggers.filter((t) => t.spec.broker === name && (t.metadata.namespace ?? 'default') === namespace);
}

export function parseTtl(value: string | undefined): number {
  if (value === undefined) return DEFAULT_BROKER_TTL;
  const n = Number(value);
  return Number.isInteger(n) ? n : DEFAULT_BROKER_TTL;
}

export type Admission = { admitted: true; event: WireEvent; hops: number } | { admitted: false; event: WireEvent; reason: string };

/**
 * An event arriving at the broker: admitted with its remaining hops
 * (`ttl`, else its knativebrokerttl, else the default) and arrival time
 * stamped, or refused once the hops are used up.
 */
export function admitEvent(event: WireEvent, ttl: number | undefined, now: Date = new Date()): Admission {
  const hops = ttl ?? parseTtl(event.attributes.knativebrokerttl);
  if (hops <= 0) {
    return { admitted: false, event: { ...event, attributes: { ...event.attributes } }, reason: 'broker TTL exhausted (knativebrokerttl reached 0): reply loop?' };
  }
  const attributes = { ...event.attributes, knativebrokerttl: String(hops), knativearrivaltime: now.toISOString() };
  return { admitted: true, event: { ...event, attributes }, hops };
}

/** The Triggers whose filters accept these attributes, in configuration order. */
export function matchingTriggers(triggers: readonly TriggerResource[], attributes: EventAttributes): TriggerResource[] {
  return triggers.filter((t) => triggerMatches(t, attributes));
}

export interface DestinationResolver {
  /** Tried first for a `ref`; undefined falls back to the broker itself and `services`. */
  resolve?: ((ref: KReference, namespace: string) => string | undefined) | undefined;
  /** Knative Service URLs by `name` or `namespace/name`. */
  services: ReadonlyMap<string, string>;
  /** This broker, so that a Destination can point back at it. */
  self: { namespace: string; name: string; url: string };
}

/** The URL a Destination resolves to in namespace `ns`, or undefined when nothing is known for its ref. */
export function resolveDestination(dest: Destination, ns: string, resolver: DestinationResolver): string | undefined {
  let base: string | undefined;
  if (dest.ref) {
    base = resolver.resolve?.(dest.ref, ns);
    if (base === undefined) {
      const refNs = dest.ref.namespace ?? ns;
      const { self, services } = resolver;
      if (dest.ref.kind === 'Broker') base = dest.ref.name === self.name && refNs === self.namespace ? self.url : undefined;
      else if (dest.ref.kind === 'Service') base = services.get(`${refNs}/${dest.ref.name}`) ?? services.get(dest.ref.name);
    }
    if (base === undefined) return undefined;
    // Knative resolves `uri` relative to the ref's address when both are set.
    return dest.uri ? new URL(dest.uri, base.endsWith('/') ? base : `${base}/`).toString() : base;
  }
  return dest.uri;
}

export function describeDestination(d: Destination): string {
  if (d.ref) return `${d.ref.kind} ${d.ref.namespace ? `${d.ref.namespace}/` : ''}${d.ref.name}${d.uri ? ` + ${d.uri}` : ''}`;
  return d.uri ?? '(empty)';
}
