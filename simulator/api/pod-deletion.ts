// Graceful pod deletion: a pod on a node gets a deletionTimestamp and a grace period, and is
// removed when its kubelet confirms termination (finish) or when the grace period, scaled to
// real time, runs out; unscheduled and finished pods go at once.

import { resourceKey, type ResourceType } from '../resources.js';
import { clone, nowRfc3339, type KubeObject } from '../types.js';
import type { ApiContext, DeleteOptions } from './context.js';
import { withTypeMeta } from './object-meta.js';

export interface ApiServerTiming {
  /** Simulated seconds → real milliseconds for pod termination grace periods. */
  gracePeriodScaleMs: number;
  /** Upper bound on a pod's real termination delay, whatever its grace period. */
  maxGraceMs: number;
}

export class PodDeletion {
  /** Pending timers for graceful pod deletion, keyed by uid. */
  private readonly graceTimers = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly api: ApiContext,
    private readonly timing: ApiServerTiming,
  ) {}

  stop(): void {
    for (const t of this.graceTimers.values()) clearTimeout(t);
    this.graceTimers.clear();
  }

  delete(t: ResourceType, current: KubeObject, opts: DeleteOptions, finalizers: string[]): { object: KubeObject; removed: boolean } {
    const spec = current.spec ?? {};
    const status = current.status ?? {};
    const defaultGrace = typeof spec.terminationGracePeriodSeconds === 'number' ? spec.terminationGracePeriodSeconds : 30;
    let grace = opts.gracePeriodSeconds ?? defaultGrace;
    // Unscheduled and finished pods have nothing to stop: the real server deletes them at once.
    if (!spec.nodeName || status.phase === 'Succeeded' || status.phase === 'Failed') grace = 0;
    if (current.metadata.deletionTimestamp && current.metadata.deletionGracePeriodSeconds !== undefined) {
      grace = Math.min(grace, current.metadata.deletionGracePeriodSeconds);
    }
    if (grace === 0 && finalizers.length === 0) {
      const gone = this.api.store.remove(resourceKey(t), current.metadata.namespace, current.metadata.name!)!;
      this.clearGraceTimer(current.metadata.uid);
      this.api.scheduleGc();
      return { object: withTypeMeta(t, gone), removed: true };
    }
    const next = clone(current);
    next.metadata.deletionTimestamp = nowRfc3339(new Date(Date.now() + grace * 1000));
    next.metadata.deletionGracePeriodSeconds = grace;
    if (finalizers.length > 0) next.metadata.finalizers = finalizers;
    const stored = this.api.store.put(resourceKey(t), next);
    this.armGraceTimer(t, stored, grace);
    this.api.scheduleGc();
    return { object: withTypeMeta(t, stored), removed: false };
  }

  private armGraceTimer(t: ResourceType, pod: KubeObject, graceSeconds: number): void {
    const uid = pod.metadata.uid!;
    this.clearGraceTimer(uid);
    const ms = Math.min(this.timing.maxGraceMs, graceSeconds * this.timing.gracePeriodScaleMs);
    const timer = setTimeout(() => {
      this.graceTimers.delete(uid);
      if (this.api.isStopped()) return;
      this.finish(t, pod.metadata.namespace!, pod.metadata.name!, uid);
    }, ms);
    timer.unref();
    this.graceTimers.set(uid, timer);
  }

  private clearGraceTimer(uid: string | undefined): void {
    if (!uid) return;
    const timer = this.graceTimers.get(uid);
    if (timer) clearTimeout(timer);
    this.graceTimers.delete(uid);
  }

  /** The kubelet confirmed termination (or the grace period ran out): remove the pod. */
  finish(t: ResourceType, namespace: string, name: string, uid: string): void {
    const cur = this.api.store.get(resourceKey(t), namespace, name);
    if (!cur || cur.metadata.uid !== uid || !cur.metadata.deletionTimestamp) return;
    if ((cur.metadata.finalizers ?? []).filter((f) => f !== 'foregroundDeletion').length > 0) return;
    this.api.store.remove(resourceKey(t), namespace, name);
    this.clearGraceTimer(uid);
    this.api.scheduleGc();
  }

  /** After an update of a pod being deleted: its last finalizer gone and no timer left, it goes. */
  maybeFinish(t: ResourceType, pod: KubeObject): void {
    if ((pod.metadata.finalizers ?? []).length === 0 && !this.graceTimers.has(pod.metadata.uid!)) {
      this.finish(t, pod.metadata.namespace!, pod.metadata.name!, pod.metadata.uid!);
    }
  }
}
