// The shape of a kcr function: a pure handler (event in → events out) with its
// dependencies passed in; the runtime does HTTP, CloudEvents, logs and metrics.
import type { Logger } from 'pino';
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
    time?: string;
    /** Extension attributes (kcrcheckpointid, traceparent, kcrreplayof, …). */
    extensions: Readonly<Record<string, string>>;
  };
}[T];

export interface HandlerContext {
  log: Logger;
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
