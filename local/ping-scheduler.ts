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
import { randomUUID } from 'node:crypto';
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { nextTime, type CronSchedule } from '../functions/core/knative/cron.js';
import { checkPingSchedule, fieldErrorsText, PING_DEFAULT_SCHEDULE } from '../functions/core/knative/ping-validation.js';
import type { WireEvent } from '../functions/core/runtime/cloudevents-http.js';
import { startListWatch, type KubeObject, type ListWatch } from './kube-watch.js';
import { pingSourceSchema, resolveSink, sendCloudEvent, type PingSourceResource, type SinkResolver } from './sources.js';

const PING_EVENT_TYPE = 'dev.knative.sources.ping';

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
  | { kind: 'fired'; namespace: string; name: string; sink: string; event: WireEvent; status: number }
  | { kind: 'send-failed'; namespace: string; name: string; sink: string; event: WireEvent; error: string }
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

const MAX_TIMER_MS = 2 ** 31 - 1;

export function startPingScheduler(options: PingSchedulerOptions): PingScheduler {
  const entries = new Map<string, Entry>();
  const observers = new Set<(o: PingObservation) => void>();
  const inFlight = new Set<Promise<unknown>>();
  const customApi = options.kubeConfig.makeApiClient(CustomObjectsApi);
  let stopped = false;

  const observe = (o: PingObservation): void => {
    for (const cb of observers) cb(o);
  };

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
    const wait = (): void => {
      const delay = next.getTime() - Date.now();
      entry.timer = setTimeout(
        () => {
          if (stopped || entries.get(key) !== entry) return;
          if (next.getTime() > Date.now()) return wait();
          track(fire(entry).catch(() => undefined));
          arm(key, entry, next);
        },
        Math.max(0, Math.min(delay, MAX_TIMER_MS)),
      );
      entry.timer.unref?.();
    };
    wait();
    observe({ kind: 'scheduled', namespace, name, schedule: entry.schedule!, next });
  };

  const track = (p: Promise<unknown>): void => {
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  };

  const fire = async (entry: Entry): Promise<WireEvent> => {
    const source = entry.source;
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
  };

  const writeStatus = async (source: PingSourceResource, ready: boolean, reason: string, message: string, sinkUri?: string): Promise<void> => {
    if (options.updateStatus === false) return;
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const condition = (type: string, ok: boolean) => ({ type, status: ok ? 'True' : 'False', lastTransitionTime: now, ...(ok ? {} : { reason, message }) });
    const status = {
      observedGeneration: source.metadata.generation ?? 1,
      conditions: [condition('Ready', ready), condition('SinkProvided', sinkUri !== undefined)],
      ...(sinkUri ? { sinkUri } : {}),
    };
    try {
      await customApi.patchNamespacedCustomObjectStatus({
        group: 'sources.knative.dev',
        version: 'v1',
        plural: 'pingsources',
        namespace: source.metadata.namespace!,
        name: source.metadata.name,
        body: [{ op: 'add', path: '/status', value: status }],
      });
    } catch (err) {
      // The source may have been deleted meanwhile; status is informative only.
      observe({ kind: 'error', error: `updating status of PingSource ${source.metadata.namespace}/${source.metadata.name}: ${(err as Error).message}` });
    }
  };

  const upsert = (obj: KubeObject): void => {
    const parsed = pingSourceSchema.safeParse(obj);
    const namespace = obj.metadata?.namespace ?? 'default';
    const name = obj.metadata?.name ?? '?';
    const key = `${namespace}/${name}`;
    if (!parsed.success) {
      remove(obj, false);
      const issue = parsed.error.issues[0]!;
      observe({ kind: 'invalid', namespace, name, reason: `${issue.path.join('.')}: ${issue.message}` });
      return;
    }
    const source = parsed.data;
    source.metadata.namespace = namespace;
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
      cron = pingSchedule(source.spec);
      if (source.spec.data !== undefined && source.spec.dataBase64 !== undefined) throw new Error('spec.data and spec.dataBase64 are mutually exclusive');
      makePingEvent(source);
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

  const remove = (obj: KubeObject, announce = true): void => {
    const key = `${obj.metadata?.namespace ?? 'default'}/${obj.metadata?.name ?? '?'}`;
    const entry = entries.get(key);
    if (!entry) return;
    cancel(entry);
    entries.delete(key);
    if (announce) observe({ kind: 'unscheduled', namespace: entry.source.metadata.namespace!, name: entry.source.metadata.name });
  };

  const watch: ListWatch = startListWatch({
    kubeConfig: options.kubeConfig,
    apiVersion: 'sources.knative.dev/v1',
    kind: 'PingSource',
    ...(options.namespace ? { namespace: options.namespace } : {}),
    retryDelayMs: options.retryDelayMs ?? 1000,
    onList(items) {
      // A relist replaces the state: drop what is gone, (re)schedule the rest.
      const present = new Set(items.map((o) => `${o.metadata?.namespace ?? 'default'}/${o.metadata?.name ?? '?'}`));
      for (const [key, entry] of entries) if (!present.has(key)) remove({ metadata: { namespace: entry.source.metadata.namespace!, name: entry.source.metadata.name } });
      for (const o of items) upsert(o);
    },
    onEvent(type, obj) {
      if (type === 'DELETED') remove(obj);
      else upsert(obj);
    },
    onError(error) {
      observe({ kind: 'error', error: error.message });
    },
  });

  return {
    synced: watch.synced,
    scheduled: () =>
      [...entries.values()]
        .filter((e) => e.next)
        .map((e) => ({ namespace: e.source.metadata.namespace!, name: e.source.metadata.name, schedule: e.schedule!, next: e.next! })),
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

/** The CloudEvent a PingSource sends (a new id and time on every call). */
export function makePingEvent(source: PingSourceResource, now: Date = new Date()): WireEvent {
  const namespace = source.metadata.namespace ?? 'default';
  const attributes: Record<string, string> = {
    specversion: '1.0',
    id: randomUUID(),
    source: `/apis/v1/namespaces/${namespace}/pingsources/${source.metadata.name}`,
    type: PING_EVENT_TYPE,
    time: now.toISOString(),
  };
  for (const [k, v] of Object.entries(source.spec.ceOverrides?.extensions ?? {})) attributes[k] = v;
  const contentType = source.spec.contentType;
  if (contentType) attributes.datacontenttype = contentType;
  let data: Buffer | undefined;
  if (source.spec.dataBase64) {
    data = Buffer.from(source.spec.dataBase64, 'base64');
  } else if (source.spec.data) {
    if (contentType === 'application/json') {
      let parsed: unknown;
      try {
        parsed = JSON.parse(source.spec.data);
      } catch (err) {
        throw new Error(`spec.data of PingSource ${namespace}/${source.metadata.name} is not valid JSON: ${(err as Error).message}`, { cause: err });
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
        throw new Error(`spec.data of PingSource ${namespace}/${source.metadata.name} must be a JSON object for application/json`);
      }
      const sorted = Object.fromEntries(Object.entries(parsed as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
      data = Buffer.from(JSON.stringify(sorted), 'utf8');
    } else {
      data = Buffer.from(source.spec.data, 'utf8');
    }
  }
  return data ? { attributes, data } : { attributes };
}

/**
 * What the adapter runs for a PingSource: its schedule (defaulted) with
 * spec.timezone; throws what the webhook would answer when it refuses them.
 */
export function pingSchedule(spec: { schedule?: string; timezone?: string }): CronSchedule {
  const check = checkPingSchedule(spec.schedule || PING_DEFAULT_SCHEDULE, spec.timezone || undefined);
  if (!check.ok) throw new Error(`Knative's webhook refuses this PingSource: ${fieldErrorsText(check.errors)}`);
  return check.schedule;
}
