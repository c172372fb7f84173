// Pod dispatch: every store change reaches the controllers, and a changed pod bound
// to a node is handed (batched, once per tick) to that node's kubelet, whose sync starts,
// restarts, restores or stops its containers (kubelet.ts); a deleted pod is forgotten.

import { ApiError } from '../errors.js';
import type { ObjectApi } from '../api.js';
import type { Controllers } from '../controllers.js';
import { resourceKey, type ResourceType } from '../resources.js';
import type { Store } from '../store.js';
import type { NodeKubelets } from './kubelets.js';

export function dispatchStoreEvents(store: Store, api: ObjectApi, podType: ResourceType, nodes: NodeKubelets, controllers: Controllers, stopped: () => boolean): void {
  const kubelets = nodes.byNode;
  // Kubelets sync pods bound to their node; a change queues the controllers that own it.
  const pendingPods = new Map<string, { namespace: string; name: string }>();
  let podSyncScheduled = false;
  const flushPods = (): void => {
    podSyncScheduled = false;
    if (stopped()) return;
    const batch = [...pendingPods.values()];
    pendingPods.clear();
    for (const { namespace, name } of batch) {
      const pod = api.tryGet(podType, namespace, name);
      const node = pod?.spec?.nodeName;
      if (pod && typeof node === 'string' && kubelets.has(node)) {
        try {
          kubelets.get(node)!.sync(pod);
        } catch (err) {
          if (!(err instanceof ApiError)) console.error(`simulator: kubelet sync of ${namespace}/${name} failed:`, err);
        }
      }
    }
  };
  store.subscribe((ev) => {
    if (stopped()) return;
    if (ev.resource === resourceKey(podType)) {
      const ns = ev.object.metadata.namespace!;
      const name = ev.object.metadata.name!;
      if (ev.type === 'DELETED') {
        const node = ev.object.spec?.nodeName;
        if (typeof node === 'string') kubelets.get(node)?.forget(ev.object.metadata.uid!);
      } else {
        pendingPods.set(`${ns}/${name}`, { namespace: ns, name });
        if (!podSyncScheduled) {
          podSyncScheduled = true;
          setImmediate(flushPods);
        }
      }
    }
    controllers.observe(ev.resource, ev.object);
  });
}
