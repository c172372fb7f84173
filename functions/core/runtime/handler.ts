// The shape of a kcr function: a pure handler (event in → events out) with its
// dependencies passed in; the runtime does HTTP, CloudEvents, logs and metrics.
import type { Logger } from 'pino';
import type { DomainMetric } from './metrics.js';
import type { EventData, EventType } from '../contract/events.js';
import type { KcrEvent } from '../contract/build.js';

/** An incoming event whose `data` already passed the contract for its `type`. */
export type IncomingEvent<T extends EventType = EventType> = {
  [K in T]: {
    type: K;
    data: EventData<K>;
    id: string;
    source: string;
    subject?: string;
    /** Only when the sender set it. */
    time?: string;
    datacontenttype?: string;
    dataschema?: string;
    /** Extension attributes (kcrcheckpointid, traceparent, kcrreplayof, …). */
    extensions: Readonly<Record<string, string>>;
  };
}[T];

export interface HandlerContext {
  log: Logger;
  /** Records a measurement of the work into the function's /metrics (absent in unit tests). */
  observe?: (metric: DomainMetric, value: number, labels?: Record<string, string>) => void;
  /** W3C traceparent of the incoming event, to propagate to what it emits. */
  traceparent?: string;
}

export interface FunctionHandler<T extends EventType = EventType> {
  /** The Knative Service name, e.g. `store-artifact`; events it emits have source `/kcr/<name>`. */
  readonly name: string;
  readonly accepts: readonly T[];
  /** Whether `application/cloudevents-batch+json` is accepted (each event handled in turn). */
  readonly acceptsBatch?: boolean;
  /** Whether the function emits at all; one that does not needs no K_SINK. */
  readonly emits: boolean;
  handle(event: IncomingEvent<T>, ctx: HandlerContext): Promise<KcrEvent[]>;
}

/** A CloudEvent as received, for a handler that takes any valid event whatever its type or data. */
export interface RawEvent {
  id: string;
  type: string;
  source: string;
  /** The structured-mode form: every attribute and extension as sent (no invented time), and `data`. */
  attributes: Readonly<Record<string, unknown>>;
}

/** A function that takes every CloudEvent (the archive): no contract check, so nothing is refused for its data. */
export interface RawFunctionHandler {
  readonly name: string;
  readonly raw: true;
  readonly acceptsBatch?: boolean;
  readonly emits: boolean;
  handle(event: RawEvent, ctx: HandlerContext): Promise<KcrEvent[]>;
}
