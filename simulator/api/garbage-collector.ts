// Owner-reference garbage collection: dependents whose owners are all gone are deleted
// (background propagation), an owner with the foregroundDeletion finalizer goes once its
// dependents are gone, and orphaning strips the owner's references from its dependents.

import { ApiError } from '../errors.js';
import { resourceKey, type ResourceType } from '../resources.js';
import { clone, type KubeObject, type OwnerReference } from '../types.js';
import type { ApiContext, DeleteOptions } from './context.js';

/** ObjectApi.delete, through which the collector deletes. */
type DeleteObject = (t: ResourceType, namespace: string | undefined, name: string, opts: DeleteOptions) => unknown;

export class GarbageCollector {
  private scheduled = false;

  constructor(
    private readonly api: Omit<ApiContext, 'scheduleGc'>,
    private readonly deleteObject: DeleteObject,
  ) {}

  schedule(): void {
    if (this.scheduled || this.api.isStopped()) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (!this.api.isStopped()) this.collect();
    });
  }

  private ownerAlive(ns: string | undefined, ref: OwnerReference): boolean {
    const rt = this.api.registry.byKind(ref.apiVersion, ref.kind);
    if (!rt) return false;
    const o = this.api.store.get(resourceKey(rt), rt.namespaced ? ns : undefined, ref.name);
    return !!o && o.metadata.uid === ref.uid;
  }

  private dependentsOf(owner: KubeObject): { t: ResourceType; o: KubeObject }[] {
    const out: { t: ResourceType; o: KubeObject }[] = [];
    for (const rt of this.api.registry.all()) {
      for (const o of this.api.store.list(resourceKey(rt))) {
        if ((o.metadata.ownerReferences ?? []).some((r) => r.uid === owner.metadata.uid)) out.push({ t: rt, o });
      }
    }
    return out;
  }

  orphanDependents(owner: KubeObject): void {
    for (const { t, o } of this.dependentsOf(owner)) {
      const next = clone(o);
      next.metadata.ownerReferences = (o.metadata.ownerReferences ?? []).filter((r) => r.uid !== owner.metadata.uid);
      if (next.metadata.ownerReferences.length === 0) delete next.metadata.ownerReferences;
      this.api.store.put(resourceKey(t), next);
    }
  }

  /** One pass of the garbage collector (background propagation, plus foreground finalizers). */
  collect(): void {
    for (const rt of this.api.registry.all()) {
      for (const o of this.api.store.list(resourceKey(rt))) {
        const refs = o.metadata.ownerReferences ?? [];
        if (refs.length > 0 && !o.metadata.deletionTimestamp && refs.every((r) => !this.ownerAlive(o.metadata.namespace, r))) {
          try {
            this.deleteObject(rt, o.metadata.namespace, o.metadata.name!, { propagationPolicy: 'Background' });
          } catch (err) {
            if (!(err instanceof ApiError && err.code === 404)) throw err;
          }
        }
        // Foreground deletion: the owner goes once its dependents are gone.
        if (o.metadata.deletionTimestamp && (o.metadata.finalizers ?? []).includes('foregroundDeletion')) {
          const deps = this.dependentsOf(o);
          for (const d of deps) {
            if (!d.o.metadata.deletionTimestamp) {
              this.deleteObject(d.t, d.o.metadata.namespace, d.o.metadata.name!, { propagationPolicy: 'Foreground' });
            }
          }
          if (this.dependentsOf(o).length === 0) {
            const next = clone(o);
            next.metadata.finalizers = (o.metadata.finalizers ?? []).filter((f) => f !== 'foregroundDeletion');
            if (next.metadata.finalizers.length === 0) {
              this.api.store.remove(resourceKey(rt), o.metadata.namespace, o.metadata.name!);
              this.schedule();
            } else this.api.store.put(resourceKey(rt), next);
          }
        }
      }
    }
  }
}
