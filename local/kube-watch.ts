// List-then-watch of one resource type through @kubernetes/client-node, the way
// a client-go reflector does it: list for a resourceVersion, watch from there,
// resume from the last seen resourceVersion when the stream ends, relist on
// 410 Gone (Expired). The caller decides what a (re)list means: the ping
// scheduler syncs its schedules, the ApiServerSource adapter ignores it.
import { KubernetesObjectApi, Watch, type KubeConfig, type V1ObjectMeta } from '@kubernetes/client-node';

/** A Kubernetes object as a list or watch delivers it: plain JSON, not client-node's deserialized models (timestamps stay strings). */
export interface WatchedObject {
  apiVersion?: string;
  kind?: string;
  /** The metadata fields that are JSON as they are (no timestamps). */
  metadata?: Pick<V1ObjectMeta, 'name' | 'namespace' | 'uid' | 'resourceVersion' | 'generation' | 'labels' | 'annotations'>;
  [key: string]: unknown;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

interface ListWatchOptions {
  kubeConfig: KubeConfig;
  apiVersion: string;
  kind: string;
  /** Watch one namespace; undefined watches all namespaces. */
  namespace?: string;
  labelSelector?: string;
  /** Called after every list (the first one and each relist after 410 Gone). */
  onList?(items: WatchedObject[], resourceVersion: string): void | Promise<void>;
  onEvent(type: WatchEventType, object: WatchedObject): void | Promise<void>;
  /** Transient failures (list errors, broken streams); the loop retries after retryDelayMs. */
  onError?(error: Error): void;
  /** Default 1000 ms. */
  retryDelayMs?: number;
}

export interface ListWatch {
  /** Resolves after the first successful list. */
  readonly synced: Promise<void>;
  /** Number of lists done (1 after start; more after 410 Gone). */
  lists(): number;
  stop(): void;
}

/** KubernetesObjectApi with its discovery lookup made public, to build watch paths for any kind. */
class DiscoveryApi extends KubernetesObjectApi {
  describe(apiVersion: string, kind: string): ReturnType<KubernetesObjectApi['resource']> {
    return this.resource(apiVersion, kind);
  }
}

export function startListWatch(options: ListWatchOptions): ListWatch {
  const api = options.kubeConfig.makeApiClient(DiscoveryApi);
  const watch = new Watch(options.kubeConfig);
  const retryDelayMs = options.retryDelayMs ?? 1000;
  const what = `${options.kind} (${options.apiVersion}) in ${options.namespace ? `namespace ${options.namespace}` : 'all namespaces'}`;
  let stopped = false;
  let listCount = 0;
  let abort: AbortController | undefined;
  let wake: (() => void) | undefined;
  let markSynced: () => void = () => undefined;
  const synced = new Promise<void>((resolve) => (markSynced = resolve));

  const report = (err: unknown, context: string): void => {
    const e = err instanceof Error ? err : new Error(String(err));
    options.onError?.(new Error(`${context} ${what}: ${e.message}`, { cause: e }));
  };

  const pause = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(t);
        resolve();
      };
    });

  const pathFor = async (): Promise<string> => {
    const resource = await api.describe(options.apiVersion, options.kind);
    if (!resource) throw new Error(`the API server does not serve kind ${options.kind} in ${options.apiVersion}`);
    const prefix = options.apiVersion.includes('/') ? `/apis/${options.apiVersion}` : `/api/${options.apiVersion}`;
    const ns = options.namespace && resource.namespaced ? `/namespaces/${encodeURIComponent(options.namespace)}` : '';
    return `${prefix}${ns}/${resource.name}`;
  };

  // One watch stream; resolves with the resourceVersion to resume from, or 'gone'.
  const watchOnce = (path: string, resourceVersion: string): Promise<{ resume: string; gone: boolean; error?: Error }> =>
    new Promise((resolve) => {
      let resume = resourceVersion;
      let gone = false;
      let streamError: Error | undefined;
      let queue: Promise<void> = Promise.resolve();
      const query: Record<string, string | boolean> = { resourceVersion, allowWatchBookmarks: true };
      if (options.labelSelector) query.labelSelector = options.labelSelector;
      const onEvent = (phase: string, obj: WatchedObject): void => {
        if (stopped) return;
        if (phase === 'ERROR') {
          const status = obj as { code?: number; message?: string; reason?: string };
          if (status.code === 410) gone = true;
          else streamError = new Error(`watch error ${status.code ?? '?'} ${status.reason ?? ''}: ${status.message ?? ''}`);
          return;
        }
        const rv = obj.metadata?.resourceVersion;
        if (rv) resume = rv;
        if (phase === 'ADDED' || phase === 'MODIFIED' || phase === 'DELETED') {
          // Keep the stream's order even when a handler is async.
          queue = queue.then(() => options.onEvent(phase, obj)).catch((err: unknown) => report(err, `handling a ${phase} event of`));
        }
      };
      const done = (err: unknown): void => {
        void queue.then(() => resolve({ resume, gone, ...(err ? { error: err instanceof Error ? err : new Error(String(err)) } : streamError ? { error: streamError } : {}) }));
      };
      watch.watch(path, query, onEvent, done).then(
        (controller) => {
          abort = controller;
          if (stopped) controller.abort();
        },
        (err: unknown) => resolve({ resume, gone, error: err instanceof Error ? err : new Error(String(err)) }),
      );
    });

  const run = async (): Promise<void> => {
    while (!stopped) {
      let path: string;
      let resourceVersion: string;
      try {
        path = await pathFor();
        const list = await api.list(options.apiVersion, options.kind, options.namespace, undefined, undefined, undefined, undefined, options.labelSelector);
        resourceVersion = list.metadata?.resourceVersion ?? '';
        listCount++;
        await options.onList?.(JSON.parse(JSON.stringify(list.items)) as WatchedObject[], resourceVersion);
        markSynced();
      } catch (err) {
        if (stopped) return;
        report(err, 'listing');
        await pause(retryDelayMs);
        continue;
      }
      while (!stopped) {
        const outcome = await watchOnce(path, resourceVersion);
        if (stopped) return;
        if (outcome.gone) break;
        resourceVersion = outcome.resume;
        if (outcome.error) {
          report(outcome.error, 'watching');
          await pause(retryDelayMs);
        }
      }
    }
  };
  void run();

  return {
    synced,
    lists: () => listCount,
    stop() {
      stopped = true;
      abort?.abort();
      wake?.();
    },
  };
}
