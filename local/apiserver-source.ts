// The local mode's stand-in for Knative's ApiServerSource receive adapter in
// Resource mode: watches the listed resources through client-node and sends
//   type   dev.knative.apiserver.resource.add | update | delete
//   source the API server URL (the adapter's rest config host)
//   subject /apis/<apiVersion>/namespaces/<ns>/<lower(kind)>s/<name> (Knative's
//          selfLink-like path, core kinds included: /apis/v1/namespaces/…/pods/…)
//   extensions kind, name, namespace, apiversion (+ ceOverrides.extensions)
//   datacontenttype application/json, data the whole object.
// Like the real adapter (a reflector whose store ignores Replace), it sends
// nothing for objects that exist when it starts, nor after a relist (410 Gone):
// only changes seen on the watch stream become events.
// Not implemented: Reference mode, spec.owner filtering.
import { randomUUID } from 'node:crypto';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { WireEvent } from '../functions/core/runtime/cloudevents-http.js';
import { startListWatch, type WatchedObject, type ListWatch, type WatchEventType } from './kube-watch.js';
import { labelSelectorString, matchesLabelSelector, type LabelSelector } from '../functions/core/kubernetes/label-selector.js';
import { loadSourcesDir, resolveSink, sendCloudEvent, type ApiServerSourceResource, type SinkResolver } from './sources.js';

const EVENT_TYPES: Record<WatchEventType, string> = {
  ADDED: 'dev.knative.apiserver.resource.add',
  MODIFIED: 'dev.knative.apiserver.resource.update',
  DELETED: 'dev.knative.apiserver.resource.delete',
};

interface ApiServerSourceOptions {
  kubeConfig: KubeConfig;
  /** The ApiServerSources to run; default: those in the repository's sources/ directory. */
  sources?: ApiServerSourceResource[];
  /** Resolves `spec.sink.ref` (e.g. brokerSinkResolver(broker.url)). */
  resolveSink?: SinkResolver;
  /** Send retries after the first attempt (default 3). */
  sendRetries?: number;
  /** First send backoff in ms (default 50, doubling). */
  sendBackoffMs?: number;
  /** Watch/list retry delay (default 1000 ms). */
  retryDelayMs?: number;
}

export type ApiServerSourceObservation =
  | { kind: 'sent'; source: string; sink: string; event: WireEvent; status: number }
  | { kind: 'send-failed'; source: string; sink: string; event: WireEvent; error: string }
  | { kind: 'error'; source: string; error: string };

export interface ApiServerSourceAdapter {
  /** Resolves when every watch has done its first list (events flow from then on). */
  readonly synced: Promise<void>;
  onEvent(observer: (o: ApiServerSourceObservation) => void): () => void;
  /** Stops the watches; waits for sends in flight. */
  stop(): Promise<void>;
}

export function startApiServerSources(options: ApiServerSourceOptions): ApiServerSourceAdapter {
  const sources = options.sources ?? loadSourcesDir().apiServerSources;
  const observers = new Set<(o: ApiServerSourceObservation) => void>();
  const inFlight = new Set<Promise<unknown>>();
  const watches: ListWatch[] = [];
  const core = options.kubeConfig.makeApiClient(CoreV1Api);
  const host = options.kubeConfig.getCurrentCluster()?.server ?? '';
  const namespaceLabels = new Map<string, Record<string, string>>();

  const observe = (o: ApiServerSourceObservation): void => {
    for (const cb of observers) cb(o);
  };

  // Namespace labels for namespaceSelector, kept by a watch; a namespace not seen yet is read directly.
  const labelsOf = async (namespace: string): Promise<Record<string, string>> => {
    const known = namespaceLabels.get(namespace);
    if (known) return known;
    try {
      const ns = await core.readNamespace({ name: namespace });
      return withNameLabel(namespace, ns.metadata?.labels);
    } catch {
      return withNameLabel(namespace, undefined);
    }
  };

  const needsNamespaces = sources.some((s) => s.spec.namespaceSelector);
  if (needsNamespaces) {
    watches.push(
      startListWatch({
        kubeConfig: options.kubeConfig,
        apiVersion: 'v1',
        kind: 'Namespace',
        retryDelayMs: options.retryDelayMs ?? 1000,
        onList(items) {
          namespaceLabels.clear();
          for (const ns of items) namespaceLabels.set(ns.metadata?.name ?? '', withNameLabel(ns.metadata?.name ?? '', ns.metadata?.labels));
        },
        onEvent(type, ns) {
          const name = ns.metadata?.name ?? '';
          if (type === 'DELETED') namespaceLabels.delete(name);
          else namespaceLabels.set(name, withNameLabel(name, ns.metadata?.labels));
        },
        onError: (error) => observe({ kind: 'error', source: 'namespaces', error: error.message }),
      }),
    );
  }

  for (const source of sources) {
    const sourceName = `${source.metadata.namespace}/${source.metadata.name}`;
    if (source.spec.mode && source.spec.mode !== 'Resource') {
      observe({ kind: 'error', source: sourceName, error: `mode ${source.spec.mode} is not supported locally (only Resource)` });
      continue;
    }
    const selector: LabelSelector | undefined = source.spec.namespaceSelector;
    for (const resource of source.spec.resources) {
      const labelSelector = labelSelectorString(resource.selector) || undefined;
      watches.push(
        startListWatch({
          kubeConfig: options.kubeConfig,
          apiVersion: resource.apiVersion,
          kind: resource.kind,
          // Without a namespaceSelector the real source watches its own namespace only.
          ...(selector ? {} : { namespace: source.metadata.namespace! }),
          ...(labelSelector ? { labelSelector } : {}),
          retryDelayMs: options.retryDelayMs ?? 1000,
          async onEvent(type, obj) {
            if (selector) {
              const ns = obj.metadata?.namespace;
              if (ns === undefined || !matchesLabelSelector(selector, await labelsOf(ns))) return;
            }
            const event = makeResourceEvent(type, obj, host, source);
            let sink = '';
            try {
              sink = resolveSink(source.spec.sink, source.metadata.namespace!, options.resolveSink);
              const send = sendCloudEvent(sink, event, { retries: options.sendRetries ?? 3, backoffMs: options.sendBackoffMs ?? 50 });
              inFlight.add(send);
              const status = await send.finally(() => inFlight.delete(send));
              observe({ kind: 'sent', source: sourceName, sink, event, status });
            } catch (err) {
              observe({ kind: 'send-failed', source: sourceName, sink, event, error: (err as Error).message });
            }
          },
          onError: (error) => observe({ kind: 'error', source: sourceName, error: error.message }),
        }),
      );
    }
  }

  return {
    synced: Promise.all(watches.map((w) => w.synced)).then(() => undefined),
    onEvent(observer) {
      observers.add(observer);
      return () => observers.delete(observer);
    },
    async stop() {
      for (const w of watches) w.stop();
      await Promise.allSettled([...inFlight]);
    },
  };
}

/** The CloudEvent the ApiServerSource adapter sends in Resource mode for one watch event. */
export function makeResourceEvent(type: WatchEventType, obj: WatchedObject, apiServerUrl: string, source?: Pick<ApiServerSourceResource, 'spec'>): WireEvent {
  const apiVersion = obj.apiVersion ?? '';
  const kind = obj.kind ?? '';
  const name = obj.metadata?.name ?? '';
  const namespace = obj.metadata?.namespace ?? '';
  const attributes: Record<string, string> = {
    specversion: '1.0',
    id: randomUUID(),
    source: apiServerUrl,
    type: EVENT_TYPES[type],
    subject: selfLink(apiVersion, kind, namespace, name),
    time: new Date().toISOString(),
    datacontenttype: 'application/json',
    kind,
    name,
    namespace,
    apiversion: apiVersion,
  };
  for (const [k, v] of Object.entries(source?.spec.ceOverrides?.extensions ?? {})) attributes[k] = v;
  return { attributes, data: Buffer.from(JSON.stringify(obj), 'utf8') };
}

// Knative's createSelfLink: plural by lower-casing the kind and adding "s"; core
// kinds too go under /apis/.
function selfLink(apiVersion: string, kind: string, namespace: string, name: string): string {
  const version = apiVersion.includes('.') && !apiVersion.includes('/') ? `${apiVersion}/versionUnknown` : apiVersion;
  return `/apis/${version}/namespaces/${namespace}/${kind.toLowerCase()}s/${name}`;
}

// The API server sets kubernetes.io/metadata.name on every namespace.
function withNameLabel(name: string, labels: Record<string, string> | undefined): Record<string, string> {
  return { ...(labels ?? {}), 'kubernetes.io/metadata.name': name };
}
