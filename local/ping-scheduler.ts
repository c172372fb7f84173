// The local mode's stand-in for Knative's mt-ping adapter: watches PingSources
// (sources.knative.dev/v1) in a Kubernetes API through client-node and sends
// each one's CloudEvent on its cron schedule, as the real adapter builds it:
//   type dev.knative.sources.ping
//   source /apis/v1/namespaces/<ns>/pingsources/<name>
//   id a new UUID per tick, time the send time,
//   datacontenttype spec.contentType, data spec.data (JSON re-marshalled with
//   sorted top-level keys when the content type is application/json, as Go's
//   encoding/json does) or the bytes of spec.dataBase64,
//   plus spec.ceOverrides.extensions.
// Schedules are what the webhook lets through and the adapter runs (robfig/cron
// with optional seconds, spec.timezone as CRON_TZ=; functions/schedule-sync/
// ping-validation.ts), and fire when robfig/cron would fire them; a schedule
// without a time zone runs in UTC, the adapter's. Create/update/delete
// reschedule or cancel.
//
// This file holds the state (one entry per PingSource) and reconciles it; the
// parts are:
//   ping-watch.ts   the PingSource list-watch and the parsing of one object
//   ping-event.ts   the event a PingSource sends and the schedule it runs (pure)
//   ping-ticks.ts   the timer that fires at the next tick
//   ping-send.ts    sending one tick's event to the sink
//   ping-status.ts  the status written back to the PingSource
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { nextTime, type CronSchedule } from '../functions/core/knative/cron.js';
import { PING_DEFAULT_SCHEDULE } from '../functions/core/knative/ping-validation.js';
import type { WireEvent } from '../functions/core/runtime/cloudevents-http.js';
import type { WatchedObject } from './kube-watch.js';
import { checkPingSpec } from './ping-event.js';
import { sendPing, type PingSendObservation } from './ping-send.js';
import { pingSourceStatus, writePingStatus } from './ping-status.js';
import { waitUntil } from './ping-ticks.js';
import { parsePingSource, pingSourceKey, watchPingSources } from './ping-watch.js';
import { resolveSink, type PingSourceResource, type SinkResolver } from './sources.js';

export { makePingEvent, pingSchedule } from './ping-event.js';

interface PingSchedulerOptions {
  kubeConfig: KubeConfig;
  /** Watch one namespace; default all. */
  namespace?: string;
  /** Resolves `spec.sink.ref` (e.g. brokerSinkResolver(broker.url)). */
  resolveSink?: SinkResolver;
  /** Write status (Ready, SinkProvided, sinkUri, observedGeneration) back to each PingSource (default true). */
  updateStatus?: boolean;
  /** Send retries after the first attempt (default 5, as the mt-ping adapter). */
  sendRetries?: number;
  /** First send backoff in ms (default 50, doubling). */
  sendBackoffMs?: number;
  /** Watch/list retry delay (default 1000 ms). */
  retryDelayMs?: number;
}

export type PingObservation =
  | { kind: 'scheduled'; namespace: string; name: string; schedule: string; next: Date }
  | { kind: 'unscheduled'; namespace: string; name: string }
  | { kind: 'invalid'; namespace: string; name: string; reason: string }
  | PingSendObservation
  | { kind: 'error'; error: string };

interface ScheduledPing {
  namespace: string;
  name: string;
  schedule: string;
  next: Date;
}

export interface PingScheduler {
  /** Resolves once the existing PingSources have been listed and scheduled. */
  readonly synced: Promise<void>;
  scheduled(): ScheduledPing[];
  /** Sends the PingSource's event now, outside its schedule (tests, `--once`). */
  fireNow(namespace: string, name: string): Promise<WireEvent>;
  onPing(observer: (o: PingObservation) => void): () => void;
  /** Cancels every schedule and the watch; waits for sends in flight. */
  stop(): Promise<void>;
}

interface Entry {
  source: PingSourceResource;
  specKey: string;
  /** spec.schedule as written, and what it parses to. */
  schedule?: string;
  cron?: CronSchedule;
  timer?: NodeJS.Timeout;
  next?: Date;
}

export function startPingScheduler(options: PingSchedulerOptions): PingScheduler {
  const entries = new Map<string, Entry>();
  const observers = new Set<(o: PingObservation) => void>();
  const inFlight = new Set<Promise<unknown>>();
  const customApi = options.kubeConfig.makeApiClient(CustomObjectsApi);
  let stopped = false;

  const observe = (o: PingObservation): void => {
    for (const cb of observers) cb(o);
  };

  const track = (p: Promise<unknown>): void => {
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  };

  // Tick scheduling: each tick sends, then arms the one after it.
  const cancel = (entry: Entry): void => {
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = undefined;
    entry.next = undefined;
  };

  const arm = (key: string, entry: Entry, after: Date): void => {
    const { namespace, name } = entry.source.metadata as { namespace: string; name: string };
    const next = nextTime(entry.cron!, after);
    if (!next) {
      // robfig/cron's Next gives the zero time: the adapter never fires it.
      observe({ kind: 'invalid', namespace, name, reason: `schedule ${JSON.stringify(entry.schedule)} matches no time in the next five years` });
      return;
    }
    entry.next = next;
    waitUntil(
      next,
      () => !stopped && entries.get(key) === entry,
      () => {
        track(fire(entry).catch(() => undefined));
        arm(key, entry, next);
      },
      (timer) => {
        entry.timer = timer;
      },
    );
    observe({ kind: 'scheduled', namespace, name, schedule: entry.schedule!, next });
  };

  const fire = (entry: Entry): Promise<WireEvent> => sendPing(entry.source, options, observe);

  const writeStatus = async (source: PingSourceResource, ready: boolean, reason: string, message: string, sinkUri?: string): Promise<void> => {
    if (options.updateStatus === false) return;
    await writePingStatus(customApi, source, pingSourceStatus(source, ready, reason, message, sinkUri), (error) => observe({ kind: 'error', error }));
  };

  // Reconciling what the watch reports.
  const upsert = (obj: WatchedObject): void => {
    const parsed = parsePingSource(obj);
    const key = pingSourceKey(obj);
    if (!parsed.ok) {
      remove(obj, false);
      observe({ kind: 'invalid', namespace: parsed.namespace, name: parsed.name, reason: parsed.reason });
      return;
    }
    const source = parsed.source;
    const namespace = source.metadata.namespace!;
    const name = source.metadata.name;
    const specKey = JSON.stringify(source.spec);
    const existing = entries.get(key);
    // Status writes come back as updates: only a spec change reschedules.
    if (existing && existing.specKey === specKey) {
      existing.source = source;
      return;
    }
    if (existing) cancel(existing);
    const entry: Entry = { source, specKey };
    entries.set(key, entry);
    let cron: CronSchedule;
    let sinkUri: string | undefined;
    try {
      cron = checkPingSpec(source);
    } catch (err) {
      const reason = (err as Error).message;
      observe({ kind: 'invalid', namespace, name, reason });
      void writeStatus(source, false, 'InvalidSpec', reason);
      return;
    }
    try {
      sinkUri = resolveSink(source.spec.sink, namespace, options.resolveSink);
    } catch (err) {
      void writeStatus(source, false, 'NotFound', (err as Error).message);
    }
    entry.schedule = source.spec.schedule || PING_DEFAULT_SCHEDULE;
    entry.cron = cron;
    arm(key, entry, new Date());
    if (sinkUri) void writeStatus(source, true, '', '', sinkUri);
  };

  const remove = (obj: WatchedObject, announce = true): void => {
    const key = pingSourceKey(obj);
    const entry = entries.get(key);
    if (!entry) return;
    cancel(entry);
    entries.delete(key);
    if (announce) observe({ kind: 'unscheduled', namespace: entry.source.metadata.namespace!, name: entry.source.metadata.name });
  };

  const watch = watchPingSources(
    { kubeConfig: options.kubeConfig, namespace: options.namespace, retryDelayMs: options.retryDelayMs ?? 1000 },
    {
      relisted(items) {
        // A relist replaces the state: drop what is gone, (re)schedule the rest.
        const present = new Set(items.map(pingSourceKey));
        for (const [key, entry] of entries) if (!present.has(key)) remove({ metadata: { namespace: entry.source.metadata.namespace!, name: entry.source.metadata.name } });
        for (const o of items) upsert(o);
      },
      changed: upsert,
      deleted: (obj) => remove(obj),
      failed: (error) => observe({ kind: 'error', error: error.message }),
    },
  );
  return {
    synced: watch.synced,
    scheduled: () => [...entries.values()].filter((e) => e.next).map((e) => ({ namespace: e.source.metadata.namespace!, name: e.source.metadata.name, schedule: e.schedule!, next: e.next! })),
    async fireNow(namespace, name) {
      const entry = entries.get(`${namespace}/${name}`);
      if (!entry) throw new Error(`PingSource ${namespace}/${name} is not known to the ping scheduler (known: ${[...entries.keys()].join(', ') || 'none'})`);
      const p = fire(entry);
      track(p.catch(() => undefined));
      return p;
    },
    onPing(observer) {
      observers.add(observer);
      return () => observers.delete(observer);
    },
    async stop() {
      stopped = true;
      watch.stop();
      for (const e of entries.values()) cancel(e);
      await Promise.allSettled([...inFlight]);
    },
  };
}
