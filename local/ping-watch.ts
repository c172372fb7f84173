// The ping scheduler's view of the API: a list-watch of PingSources
// (sources.knative.dev/v1) that reports a relist, each change and each
// deletion, and the parsing of one watched object into a PingSourceResource
// keyed by namespace/name.
import type { KubeConfig } from '@kubernetes/client-node';
import { startListWatch, type WatchedObject, type ListWatch } from './kube-watch.js';
import { pingSourceSchema, type PingSourceResource } from './sources.js';

/** `namespace/name` of a watched object (namespace defaulted). */
export function pingSourceKey(obj: WatchedObject): string {
  return `${obj.metadata?.namespace ?? 'default'}/${obj.metadata?.name ?? '?'}`;
}

export type ParsedPingSource = { ok: true; source: PingSourceResource } | { ok: false; namespace: string; name: string; reason: string };

/** A watched object as a PingSource (its namespace filled in), or the first reason it is not one. */
export function parsePingSource(obj: WatchedObject): ParsedPingSource {
  const parsed = pingSourceSchema.safeParse(obj);
  const namespace = obj.metadata?.namespace ?? 'default';
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return { ok: false, namespace, name: obj.metadata?.name ?? '?', reason: `${issue.path.join('.')}: ${issue.message}` };
  }
  const source = parsed.data;
  source.metadata.namespace = namespace;
  return { ok: true, source };
}

export interface PingSourceHandlers {
  /** The full list, at start and after each relist: it replaces what was known. */
  relisted(items: WatchedObject[]): void;
  /** Added or modified. */
  changed(obj: WatchedObject): void;
  deleted(obj: WatchedObject): void;
  failed(error: Error): void;
}

export function watchPingSources(options: { kubeConfig: KubeConfig; namespace?: string | undefined; retryDelayMs: number }, on: PingSourceHandlers): ListWatch {
  return startListWatch({
    kubeConfig: options.kubeConfig,
    apiVersion: 'sources.knative.dev/v1',
    kind: 'PingSource',
    ...(options.namespace ? { namespace: options.namespace } : {}),
    retryDelayMs: options.retryDelayMs,
    onList: (items) => on.relisted(items),
    onEvent(type, obj) {
      if (type === 'DELETED') on.deleted(obj);
      else on.changed(obj);
    },
    onError: (error) => on.failed(error),
  });
}
