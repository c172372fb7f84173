// The node lifecycle controller: a node going down (Ready Unknown, unreachable taints,
// then the taint manager marks and deletes its pods after the eviction timeout) and
// coming back up (Ready again, its kubelet resyncs the pods bound to it).

import type { ObjectApi } from '../api.js';
import { ApiError } from '../errors.js';
import type { EventRecorder } from '../events.js';
import type { ResourceType } from '../resources.js';
import { nowRfc3339, withCondition } from '../types.js';
import type { NodeKubelets } from './kubelets.js';

export class NodeLifecycle {
  private readonly timers = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly api: ObjectApi,
    private readonly nodeType: ResourceType,
    private readonly podType: ResourceType,
    private readonly recorder: EventRecorder,
    private readonly kubelets: NodeKubelets,
    private readonly evictionTimeoutMs: number,
    private readonly stopped: () => boolean,
  ) {}

  down(node: string): void {
    const kl = this.kubelets.of(node);
    kl.down = true;
    this.setNodeReady(node, false);
    clearTimeout(this.timers.get(node));
    // The node lifecycle controller evicts the pods of an unreachable node after a timeout.
    const t = setTimeout(() => {
      if (this.stopped() || !kl.down) return;
      for (const p of this.api.list(this.podType, undefined, { fieldSelector: [{ path: 'spec.nodeName', op: 'eq', value: node }] })) {
        this.recorder.record(p, 'Normal', 'TaintManagerEviction', `Marking for deletion Pod ${p.metadata.namespace}/${p.metadata.name}`, 'taint-eviction-controller');
        try {
          // Since Kubernetes 1.26 the controller marks the pod before deleting it.
          this.api.mutate(
            this.podType,
            p.metadata.namespace,
            p.metadata.name!,
            (o) => {
              const conditions = withCondition(o.status, { type: 'DisruptionTarget', status: 'True', reason: 'DeletionByTaintManager', message: 'Taint manager: deleting due to NoExecute taint' });
              o.status = { ...o.status, conditions };
            },
            'status',
          );
          this.api.delete(this.podType, p.metadata.namespace, p.metadata.name!, { gracePeriodSeconds: 0 });
        } catch (err) {
          if (!(err instanceof ApiError && err.code === 404)) throw err;
        }
        kl.forget(p.metadata.uid!);
      }
    }, this.evictionTimeoutMs);
    t.unref();
    this.timers.set(node, t);
  }

  up(node: string): void {
    const kl = this.kubelets.of(node);
    clearTimeout(this.timers.get(node));
    kl.down = false;
    this.setNodeReady(node, true);
    for (const p of this.api.list(this.podType, undefined, { fieldSelector: [{ path: 'spec.nodeName', op: 'eq', value: node }] })) kl.sync(p);
  }

  stop(): void {
    for (const t of this.timers.values()) clearTimeout(t);
  }

  /** The Ready condition and the unreachable taints, as the node lifecycle controller sets them. */
  private setNodeReady(node: string, ready: boolean): void {
    this.api.mutate(
      this.nodeType,
      undefined,
      node,
      (o) => {
        const st = o.status ?? {};
        const now = nowRfc3339();
        const conds = Array.isArray(st.conditions) ? (st.conditions as Record<string, unknown>[]) : [];
        st.conditions = conds.map((c) => {
          if (c.type === 'Ready') {
            return ready
              ? { ...c, status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status', lastHeartbeatTime: now, lastTransitionTime: now }
              : { ...c, status: 'Unknown', reason: 'NodeStatusUnknown', message: 'Kubelet stopped posting node status.', lastTransitionTime: now };
          }
          return ready
            ? { ...c, status: 'False', lastHeartbeatTime: now, lastTransitionTime: now }
            : { ...c, status: 'Unknown', reason: 'NodeStatusUnknown', message: 'Kubelet stopped posting node status.', lastTransitionTime: now };
        });
        o.status = st;
      },
      'status',
    );
    this.api.mutate(this.nodeType, undefined, node, (o) => {
      const spec = o.spec ?? {};
      const taints = (Array.isArray(spec.taints) ? (spec.taints as Record<string, unknown>[]) : []).filter((t) => t.key !== 'node.kubernetes.io/unreachable');
      if (!ready) {
        taints.push({ key: 'node.kubernetes.io/unreachable', effect: 'NoSchedule', timeAdded: nowRfc3339() });
        taints.push({ key: 'node.kubernetes.io/unreachable', effect: 'NoExecute', timeAdded: nowRfc3339() });
      }
      if (taints.length > 0) spec.taints = taints;
      else delete spec.taints;
      o.spec = spec;
    });
  }
}
