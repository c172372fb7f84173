// Simulated kube-controller-manager and scheduler: Deployment → ReplicaSet → Pods,
// StatefulSet → ordered pods, and round-robin scheduling onto Ready nodes. Level-based, and
// driven like the real controllers by work queues of changed keys: a store change queues the
// object's own controller key (a pod's owner, a ReplicaSet's Deployment), and a pass syncs
// only what is queued, so one change costs the same whatever the size of the cluster.

import { createHash } from 'node:crypto';
import { ApiError } from './errors.js';
import { randomSuffix, type ObjectApi } from './api.js';
import type { EventRecorder } from './events.js';
import { resourceKey, type ResourceType } from './resources.js';
import { matchesLabelSelectorObject } from './selectors.js';
import { clone, conditionsOf, isRecord, nowRfc3339, num, rec, withCondition, type KubeObject, type OwnerReference } from './types.js';

/** Like the real controller's hash: short, lowercase alphanumeric, stable for a template. */
function templateHash(template: unknown): string {
  const h = createHash('sha256').update(JSON.stringify(template)).digest();
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  let s = '';
  for (let i = 0; i < 10; i++) s += alphabet[h[i]! % alphabet.length];
  return s;
}

function ownerRef(t: ResourceType, o: KubeObject): OwnerReference {
  return {
    apiVersion: t.group ? `${t.group}/${t.version}` : t.version,
    kind: t.kind,
    name: o.metadata.name!,
    uid: o.metadata.uid!,
    controller: true,
    blockOwnerDeletion: true,
  };
}

function controllerOf(o: KubeObject): OwnerReference | undefined {
  return (o.metadata.ownerReferences ?? []).find((r) => r.controller === true);
}

function keyOf(o: KubeObject): string {
  return `${o.metadata.namespace ?? ''}/${o.metadata.name}`;
}

function splitKey(key: string): [string, string] {
  const i = key.indexOf('/');
  return [key.slice(0, i), key.slice(i + 1)];
}

function isActive(pod: KubeObject): boolean {
  const phase = rec(pod.status).phase;
  return !pod.metadata.deletionTimestamp && phase !== 'Failed' && phase !== 'Succeeded';
}

function isReady(pod: KubeObject): boolean {
  return conditionsOf(pod.status).some((c) => c.type === 'Ready' && c.status === 'True');
}

type Queue = 'deploy' | 'rs' | 'sts';

export class Controllers {
  private scheduled = false;
  private stopped = false;
  private rrIndex = 0;
  private readonly t: Record<'pods' | 'rs' | 'deploy' | 'sts' | 'nodes', ResourceType>;
  /** Keys (`namespace/name`) waiting for a sync, per controller. */
  private readonly queues: Record<Queue, Set<string>> = { deploy: new Set(), rs: new Set(), sts: new Set() };
  /** Whether unscheduled pods (or the nodes) changed since the scheduler last ran. */
  private schedulerDirty = false;

  constructor(
    private readonly api: ObjectApi,
    private readonly recorder: EventRecorder,
  ) {
    const r = api.registry;
    this.t = {
      pods: r.find('', 'v1', 'pods')!,
      rs: r.find('apps', 'v1', 'replicasets')!,
      deploy: r.find('apps', 'v1', 'deployments')!,
      sts: r.find('apps', 'v1', 'statefulsets')!,
      nodes: r.find('', 'v1', 'nodes')!,
    };
  }

  stop(): void {
    this.stopped = true;
  }

  /** Queues every workload and the scheduler, as a controller's start-up list does. */
  resyncAll(): void {
    for (const [q, t] of [
      ['deploy', this.t.deploy],
      ['rs', this.t.rs],
      ['sts', this.t.sts],
    ] as const) {
      for (const o of this.api.list(t, undefined)) this.queues[q].add(keyOf(o));
    }
    this.schedulerDirty = true;
    this.schedule();
  }

  /** A store change: queues the controllers that own the object's state. */
  observe(resource: string, o: KubeObject): void {
    const owner = controllerOf(o);
    const ns = o.metadata.namespace ?? '';
    if (resource === resourceKey(this.t.deploy)) this.queues.deploy.add(keyOf(o));
    else if (resource === resourceKey(this.t.sts)) this.queues.sts.add(keyOf(o));
    else if (resource === resourceKey(this.t.rs)) {
      this.queues.rs.add(keyOf(o));
      if (owner?.kind === 'Deployment') this.queues.deploy.add(`${ns}/${owner.name}`);
    } else if (resource === resourceKey(this.t.pods)) {
      if (owner?.kind === 'ReplicaSet') this.queues.rs.add(`${ns}/${owner.name}`);
      else if (owner?.kind === 'StatefulSet') this.queues.sts.add(`${ns}/${owner.name}`);
      // An orphan may be adopted by any ReplicaSet of its namespace whose selector matches.
      else if (!owner) for (const rs of this.api.list(this.t.rs, ns)) this.queues.rs.add(keyOf(rs));
      if (!rec(o.spec).nodeName) this.schedulerDirty = true;
    } else if (resource === resourceKey(this.t.nodes)) this.schedulerDirty = true;
    else return;
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (!this.stopped) this.reconcile();
    });
  }

  private reconcile(): void {
    const syncs: [Queue, ResourceType, (o: KubeObject) => void][] = [
      ['deploy', this.t.deploy, (o) => this.syncDeployment(o)],
      ['rs', this.t.rs, (o) => this.syncReplicaSet(o)],
      ['sts', this.t.sts, (o) => this.syncStatefulSet(o)],
    ];
    for (const [q, t, sync] of syncs) {
      const keys = [...this.queues[q]];
      this.queues[q].clear();
      for (const key of keys) {
        const [ns, name] = splitKey(key);
        const o = this.api.tryGet(t, ns, name);
        if (o)
          this.attempt(
            () => sync(o),
            () => this.queues[q].add(key),
          );
      }
    }
    if (this.schedulerDirty) {
      this.schedulerDirty = false;
      this.attempt(
        () => this.schedulePods(),
        () => (this.schedulerDirty = true),
      );
    }
  }

  /** Runs one sync; a conflict or a vanished object requeues its key for the next pass. */
  private attempt(sync: () => void, requeue: () => void): void {
    try {
      sync();
    } catch (err) {
      if (!(err instanceof ApiError)) console.error('simulator: controller sync failed:', err);
      requeue();
      this.schedule();
    }
  }

  readyNodes(): string[] {
    return this.api
      .list(this.t.nodes, undefined)
      .filter((n) => rec(n.spec).unschedulable !== true)
      .filter((n) => (Array.isArray(rec(n.status).conditions) ? (rec(n.status).conditions as unknown[]) : []).some((c) => isRecord(c) && c.type === 'Ready' && c.status === 'True'))
      .map((n) => n.metadata.name!);
  }

  // ---------- scheduler ----------

  private schedulePods(): void {
    const nodes = this.readyNodes();
    for (const pod of this.api.list(this.t.pods, undefined, { where: (p) => !rec(p.spec).nodeName && isActive(p) })) {
      if (rec(pod.spec).schedulerName !== undefined && rec(pod.spec).schedulerName !== 'default-scheduler') continue;
      const ns = pod.metadata.namespace!;
      const name = pod.metadata.name!;
      if (nodes.length === 0) {
        this.api.mutate(
          this.t.pods,
          ns,
          name,
          (o) => {
            const conditions = withCondition(o.status, { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/0 nodes are available: no Ready nodes.' });
            o.status = { ...rec(o.status), phase: 'Pending', conditions };
          },
          'status',
        );
        continue;
      }
      const node = nodes[this.rrIndex++ % nodes.length]!;
      const bound = this.api.mutate(this.t.pods, ns, name, (o) => {
        o.spec = { ...(o.spec ?? {}), nodeName: node };
      });
      if (!bound) continue;
      this.api.mutate(
        this.t.pods,
        ns,
        name,
        (o) => {
          o.status = { ...rec(o.status), conditions: withCondition(o.status, { type: 'PodScheduled', status: 'True' }) };
        },
        'status',
      );
      this.recorder.record(bound, 'Normal', 'Scheduled', `Successfully assigned ${ns}/${name} to ${node}`, 'default-scheduler');
    }
  }

  // ---------- Deployment ----------

  private syncDeployment(d: KubeObject): void {
    if (d.metadata.deletionTimestamp) return;
    const ns = d.metadata.namespace!;
    const spec = rec(d.spec);
    const desired = num(spec.replicas, 1);
    const template = clone(rec(spec.template));
    const hash = templateHash(template);
    const owned = this.api.list(this.t.rs, ns, { where: (rs) => controllerOf(rs)?.uid === d.metadata.uid });
    let current = owned.find((rs) => rs.metadata.labels?.['pod-template-hash'] === hash);
    const maxRevision = Math.max(0, ...owned.map((rs) => Number(rs.metadata.annotations?.['deployment.kubernetes.io/revision'] ?? '0')));
    if (!current) {
      const tplMeta = rec(template.metadata);
      const labels = { ...((tplMeta.labels as Record<string, string> | undefined) ?? {}), 'pod-template-hash': hash };
      const selector = clone(rec(spec.selector));
      selector.matchLabels = { ...rec(selector.matchLabels), 'pod-template-hash': hash };
      const revision = String(maxRevision + 1);
      try {
        current = this.api.create(this.t.rs, ns, {
          metadata: {
            name: `${d.metadata.name}-${hash}`,
            namespace: ns,
            labels,
            annotations: {
              'deployment.kubernetes.io/desired-replicas': String(desired),
              'deployment.kubernetes.io/max-replicas': String(desired + 1),
              'deployment.kubernetes.io/revision': revision,
            },
            ownerReferences: [ownerRef(this.t.deploy, d)],
          },
          spec: {
            replicas: owned.length === 0 ? desired : 0,
            selector,
            template: { ...template, metadata: { ...tplMeta, labels } },
          },
        });
      } catch (err) {
        if (err instanceof ApiError && err.code === 409) return;
        throw err;
      }
      this.recorder.record(d, 'Normal', 'ScalingReplicaSet', `Scaled up replica set ${current.metadata.name} from 0 to ${owned.length === 0 ? desired : 0}`, 'deployment-controller');
      this.api.mutate(this.t.deploy, ns, d.metadata.name!, (o) => {
        o.metadata.annotations = { ...(o.metadata.annotations ?? {}), 'deployment.kubernetes.io/revision': revision };
      });
    }
    const old = owned.filter((rs) => rs.metadata.uid !== current.metadata.uid);
    // A simple rolling update: the new ReplicaSet goes to full size at once; old ones shrink
    // as the new pods become ready.
    const newReady = num(rec(current.status).readyReplicas);
    if (num(rec(current.spec).replicas) !== desired) this.setReplicas(this.t.rs, current, desired, d);
    for (const rs of old) {
      const target = Math.max(0, Math.min(num(rec(rs.spec).replicas), desired - newReady));
      if (num(rec(rs.spec).replicas) !== target) this.setReplicas(this.t.rs, rs, target, d);
    }
    const all = [current, ...old].map((rs) => this.api.tryGet(this.t.rs, ns, rs.metadata.name!) ?? rs);
    const sum = (f: string): number => all.reduce((n, rs) => n + num(rec(rs.status)[f]), 0);
    const updated = num(rec(all[0]!.status).replicas);
    const ready = sum('readyReplicas');
    const replicas = sum('replicas');
    const available = sum('availableReplicas');
    this.api.mutate(
      this.t.deploy,
      ns,
      d.metadata.name!,
      (o) => {
        const prev = rec(o.status);
        const prevConds = Array.isArray(prev.conditions) ? prev.conditions.filter(isRecord) : [];
        const cond = (type: string, ok: boolean, reason: string, message: string): Record<string, unknown> => {
          const p = prevConds.find((c) => c.type === type);
          const status = ok ? 'True' : 'False';
          const same = p && p.status === status && p.reason === reason;
          const ts = same ? (p.lastTransitionTime as string) : nowRfc3339();
          return { type, status, lastUpdateTime: same ? p.lastUpdateTime : ts, lastTransitionTime: ts, reason, message };
        };
        const complete = updated === desired && available >= desired && replicas === desired;
        const status: Record<string, unknown> = {
          observedGeneration: o.metadata.generation,
          replicas,
          updatedReplicas: updated,
          readyReplicas: ready,
          availableReplicas: available,
          conditions: [
            cond(
              'Available',
              available >= desired,
              available >= desired ? 'MinimumReplicasAvailable' : 'MinimumReplicasUnavailable',
              available >= desired ? 'Deployment has minimum availability.' : 'Deployment does not have minimum availability.',
            ),
            cond(
              'Progressing',
              true,
              complete ? 'NewReplicaSetAvailable' : 'ReplicaSetUpdated',
              complete ? `ReplicaSet "${current.metadata.name}" has successfully progressed.` : `ReplicaSet "${current.metadata.name}" is progressing.`,
            ),
          ],
        };
        if (replicas - available > 0) status.unavailableReplicas = replicas - available;
        o.status = status;
      },
      'status',
    );
  }

  private setReplicas(t: ResourceType, o: KubeObject, n: number, owner: KubeObject): void {
    const before = num(rec(o.spec).replicas);
    this.api.mutate(t, o.metadata.namespace, o.metadata.name!, (x) => {
      x.spec = { ...(x.spec ?? {}), replicas: n };
      x.metadata.annotations = { ...(x.metadata.annotations ?? {}), 'deployment.kubernetes.io/desired-replicas': String(num(rec(owner.spec).replicas, 1)) };
    });
    this.recorder.record(owner, 'Normal', 'ScalingReplicaSet', `Scaled ${n > before ? 'up' : 'down'} replica set ${o.metadata.name} from ${before} to ${n}`, 'deployment-controller');
  }

  // ---------- ReplicaSet ----------

  private podFromTemplate(owner: KubeObject, ownerType: ResourceType, name: string | undefined, generateName: string | undefined, extraLabels: Record<string, string>): KubeObject {
    const tpl = rec(rec(owner.spec).template);
    const tplMeta = rec(tpl.metadata);
    const meta: Record<string, unknown> = {
      namespace: owner.metadata.namespace,
      labels: { ...((tplMeta.labels as Record<string, string> | undefined) ?? {}), ...extraLabels },
      ownerReferences: [ownerRef(ownerType, owner)],
    };
    if (isRecord(tplMeta.annotations)) meta.annotations = clone(tplMeta.annotations);
    if (name) meta.name = name;
    if (generateName) meta.generateName = generateName;
    return { apiVersion: 'v1', kind: 'Pod', metadata: meta, spec: clone(rec(tpl.spec)) } as KubeObject;
  }

  private syncReplicaSet(rs: KubeObject): void {
    if (rs.metadata.deletionTimestamp) return;
    const ns = rs.metadata.namespace!;
    const spec = rec(rs.spec);
    const desired = num(spec.replicas, 1);
    const ownedByRs = (p: KubeObject) => controllerOf(p)?.uid === rs.metadata.uid;
    const pods = this.api.list(this.t.pods, ns, { where: ownedByRs });
    // Adopt orphans matching the selector, as the real controller does.
    for (const p of this.api.list(this.t.pods, ns, { where: (o) => !controllerOf(o) })) {
      if (!isActive(p) || !matchesLabelSelectorObject(spec.selector, p.metadata.labels)) continue;
      const adopted = this.api.mutate(this.t.pods, ns, p.metadata.name!, (o) => {
        o.metadata.ownerReferences = [...(o.metadata.ownerReferences ?? []), ownerRef(this.t.rs, rs)];
      });
      if (adopted) pods.push(adopted);
    }
    const active = pods.filter(isActive);
    if (active.length < desired) {
      for (let i = active.length; i < desired; i++) {
        const pod = this.api.create(this.t.pods, ns, this.podFromTemplate(rs, this.t.rs, undefined, `${rs.metadata.name}-`, {}));
        this.recorder.record(rs, 'Normal', 'SuccessfulCreate', `Created pod: ${pod.metadata.name}`, 'replicaset-controller');
      }
    } else if (active.length > desired) {
      const victims = [...active].sort((a, b) => Number(isReady(a)) - Number(isReady(b)) || (b.metadata.creationTimestamp ?? '').localeCompare(a.metadata.creationTimestamp ?? ''));
      for (const v of victims.slice(0, active.length - desired)) {
        this.api.delete(this.t.pods, ns, v.metadata.name!, {});
        this.recorder.record(rs, 'Normal', 'SuccessfulDelete', `Deleted pod: ${v.metadata.name}`, 'replicaset-controller');
      }
    }
    const now = this.api.list(this.t.pods, ns, { where: (p) => ownedByRs(p) && isActive(p) });
    const ready = now.filter(isReady).length;
    this.api.mutate(
      this.t.rs,
      ns,
      rs.metadata.name!,
      (o) => {
        o.status = { replicas: now.length, fullyLabeledReplicas: now.length, readyReplicas: ready, availableReplicas: ready, observedGeneration: o.metadata.generation };
      },
      'status',
    );
  }

  // ---------- StatefulSet ----------

  private syncStatefulSet(s: KubeObject): void {
    if (s.metadata.deletionTimestamp) return;
    const ns = s.metadata.namespace!;
    const name = s.metadata.name!;
    const spec = rec(s.spec);
    const desired = num(spec.replicas, 1);
    const revision = `${name}-${templateHash(spec.template)}`;
    const ordered = spec.podManagementPolicy !== 'Parallel';
    const ownedBySts = (p: KubeObject) => controllerOf(p)?.uid === s.metadata.uid;
    const pods = this.api.list(this.t.pods, ns, { where: ownedBySts });
    const byName = new Map(pods.map((p) => [p.metadata.name!, p]));
    for (let i = 0; i < desired; i++) {
      const podName = `${name}-${i}`;
      const p = byName.get(podName);
      if (!p) {
        if (this.api.tryGet(this.t.pods, ns, podName)) break;
        this.api.create(
          this.t.pods,
          ns,
          this.podFromTemplate(s, this.t.sts, podName, undefined, {
            'statefulset.kubernetes.io/pod-name': podName,
            'controller-revision-hash': revision,
            'apps.kubernetes.io/pod-index': String(i),
          }),
        );
        this.recorder.record(s, 'Normal', 'SuccessfulCreate', `create Pod ${podName} in StatefulSet ${name} successful`, 'statefulset-controller');
        if (ordered) break;
        continue;
      }
      const phase = rec(p.status).phase;
      if ((phase === 'Failed' || phase === 'Succeeded') && !p.metadata.deletionTimestamp) {
        // A failed (e.g. evicted) pod is deleted and recreated with the same name.
        this.api.delete(this.t.pods, ns, podName, { gracePeriodSeconds: 0 });
        this.recorder.record(s, 'Warning', 'RecreatingFailedPod', `StatefulSet ${ns}/${name} is recreating failed Pod ${podName}`, 'statefulset-controller');
        if (ordered) break;
        continue;
      }
      if (ordered && (!isReady(p) || p.metadata.deletionTimestamp)) break;
    }
    // Scale down from the highest ordinal.
    const extra = pods
      .filter((p) => {
        const idx = Number(p.metadata.name!.slice(name.length + 1));
        return Number.isInteger(idx) && idx >= desired && !p.metadata.deletionTimestamp;
      })
      .sort((a, b) => b.metadata.name!.localeCompare(a.metadata.name!, undefined, { numeric: true }));
    for (const p of ordered ? extra.slice(0, 1) : extra) {
      this.api.delete(this.t.pods, ns, p.metadata.name!, {});
      this.recorder.record(s, 'Normal', 'SuccessfulDelete', `delete Pod ${p.metadata.name} in StatefulSet ${name} successful`, 'statefulset-controller');
    }
    // Rolling update: replace the highest-ordinal outdated pod once all pods are ready.
    const live = this.api.list(this.t.pods, ns, { where: ownedBySts });
    const rollingUpdate = rec(spec.updateStrategy).type !== 'OnDelete';
    if (rollingUpdate && live.length === desired && live.every((p) => isReady(p) && !p.metadata.deletionTimestamp)) {
      const outdated = live.filter((p) => p.metadata.labels?.['controller-revision-hash'] !== revision).sort((a, b) => b.metadata.name!.localeCompare(a.metadata.name!, undefined, { numeric: true }));
      if (outdated[0]) this.api.delete(this.t.pods, ns, outdated[0].metadata.name!, {});
    }
    const active = live.filter(isActive);
    const ready = active.filter(isReady).length;
    const updated = active.filter((p) => p.metadata.labels?.['controller-revision-hash'] === revision).length;
    this.api.mutate(
      this.t.sts,
      ns,
      name,
      (o) => {
        const prev = rec(o.status);
        o.status = {
          observedGeneration: o.metadata.generation,
          replicas: active.length,
          readyReplicas: ready,
          currentReplicas: updated,
          updatedReplicas: updated,
          availableReplicas: ready,
          currentRevision: updated === active.length ? revision : (prev.currentRevision ?? revision),
          updateRevision: revision,
          collisionCount: 0,
        };
      },
      'status',
    );
  }
}

export { randomSuffix };
