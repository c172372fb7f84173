// What an update or patch may change: a write to the status subresource changes only status,
// a write to the main resource keeps the stored status (when the kind has a status
// subresource); the server-owned metadata (name, namespace, uid, creationTimestamp,
// deletion fields) always comes from the stored object, and generation moves with the spec.

import type { ResourceType } from '../resources.js';
import { clone, type KubeObject } from '../types.js';
import { deepEqual } from './object-meta.js';

/** The object an update would store, before defaulting and validation. */
export function mergeUpdate(t: ResourceType, current: KubeObject, incoming: KubeObject, subresource: string | undefined): KubeObject {
  const hasStatus = t.subresources.includes('status');
  let next: KubeObject;
  if (subresource === 'status') {
    // Status writes change only status (and never metadata beyond what the server owns).
    next = clone(current);
    if (incoming.status !== undefined) next.status = clone(incoming.status);
    else delete next.status;
  } else {
    next = clone(incoming);
    if (hasStatus) {
      if (current.status !== undefined) next.status = clone(current.status);
      else delete next.status;
    }
  }
  const m = next.metadata;
  const c = current.metadata;
  m.name = c.name;
  if (t.namespaced) m.namespace = c.namespace;
  else delete m.namespace;
  m.uid = c.uid;
  m.creationTimestamp = c.creationTimestamp;
  if (c.deletionTimestamp) {
    m.deletionTimestamp = c.deletionTimestamp;
    if (c.deletionGracePeriodSeconds !== undefined) m.deletionGracePeriodSeconds = c.deletionGracePeriodSeconds;
  } else {
    delete m.deletionTimestamp;
    delete m.deletionGracePeriodSeconds;
  }
  if (c.generation !== undefined) {
    m.generation = !deepEqual(current.spec, next.spec) ? c.generation + 1 : c.generation;
  }
  return next;
}

/** No-op writes keep the resourceVersion, as the real server does: equal but for it and type meta. */
export function sameExceptResourceVersion(current: KubeObject, next: KubeObject): boolean {
  const strip = (o: KubeObject): KubeObject => {
    const x = clone(o);
    delete x.metadata.resourceVersion;
    delete x.apiVersion;
    delete x.kind;
    return x;
  };
  return deepEqual(strip(current), strip(next));
}
