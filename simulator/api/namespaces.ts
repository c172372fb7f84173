// Namespaces as the API server treats them: creating into a namespace needs it to exist and
// not be terminating; deleting one marks it Terminating, then (as the namespace controller
// would) empties it and removes it. The system namespaces may not be deleted.

import { ApiError, notFound } from '../errors.js';
import { resourceKey, type ResourceType } from '../resources.js';
import { clone, nowRfc3339, type KubeObject } from '../types.js';
import type { ApiContext } from './context.js';
import { withTypeMeta } from './object-meta.js';

export function requireNamespace(api: ApiContext, ns: string, t: ResourceType): void {
  const nsType = api.registry.find('', 'v1', 'namespaces')!;
  const nsObj = api.store.get(resourceKey(nsType), undefined, ns);
  if (!nsObj) throw notFound('namespaces', '', ns);
  if (nsObj.metadata.deletionTimestamp) {
    throw new ApiError(403, 'Forbidden', `${t.plural} is forbidden: unable to create new content in namespace ${ns} because it is being terminated`, { kind: t.plural });
  }
}

export function deleteNamespace(api: ApiContext, t: ResourceType, current: KubeObject): { object: KubeObject; removed: boolean } {
  const name = current.metadata.name!;
  if (['default', 'kube-system', 'kube-public', 'kube-node-lease'].includes(name)) {
    throw new ApiError(403, 'Forbidden', `namespaces "${name}" is forbidden: this namespace may not be deleted`, {
      name,
      kind: 'namespaces',
    });
  }
  const next = clone(current);
  next.metadata.deletionTimestamp = nowRfc3339();
  next.status = { ...(next.status ?? {}), phase: 'Terminating' };
  const stored = api.store.put(resourceKey(t), next);
  // The namespace controller empties it, then removes it.
  setImmediate(() => {
    if (api.isStopped()) return;
    for (const rt of api.registry.all()) {
      if (!rt.namespaced) continue;
      for (const o of api.store.list(resourceKey(rt), name)) api.store.remove(resourceKey(rt), name, o.metadata.name!);
    }
    api.store.remove(resourceKey(t), undefined, name);
    api.scheduleGc();
  });
  return { object: withTypeMeta(t, stored), removed: false };
}
