// restore-pod: when a container of an opted-in workload fails, patch its image
// to its latest good checkpoint image (by digest); the kubelet recreates the
// container and CRI-O/containerd restore it. A pod that replaces an evicted or
// lost one inherits that pod's checkpoints. A loop guard falls back to older
// checkpoints and finally to a cold start.
import type { V1Pod } from '@kubernetes/client-node';
import { EventTypes } from '../core/contract/events.js';
import { events, type KcrEvent } from '../core/contract/build.js';
import { ConflictError, type Kubernetes } from '../core/kubernetes/kubernetes.js';
import { buildEvent } from '../core/kubernetes/events.js';
import { isOptedIn } from '../core/kubernetes/annotations.js';
import { CheckpointCatalog, type ContainerRef, type DisruptionRecord, type RestorableCheckpoint } from '../core/storage/checkpoint-catalog.js';
import { disruptionOf, recentFailures, type ContainerFailure } from './container-failure.js';
import { podOwner, type PodOwner } from '../core/kubernetes/pods.js';
import { containerImage, hasStarted, readRestoreState, restoredFromKey, restoreStateKey, type RestoreState } from './restore-state.js';
import { TransientError, errorMessage } from '../core/runtime/errors.js';
import { checkpointIdTime } from '../core/contract/checkpoint-id.js';
import { keyName } from '../core/storage/layout.js';
import type { NamespaceExclusion } from '../core/kubernetes/excluded-namespaces.js';
import type { FunctionHandler, HandlerContext } from '../core/runtime/handler.js';
import type { ObjectStore } from '../core/storage/object-store.js';

export const NAME = 'restore-pod';

export interface RestorePodDeps {
  kube: Kubernetes;
  store: ObjectStore;
  /** A restored container that fails again within this window counts against its checkpoint. */
  windowMs: number;
  /** Checkpoints tried per failure before a cold start. */
  maxAttempts: number;
  /** How long a disruption record waits for its replacement pod. */
  replacementTtlMs?: number;
  /** Namespaces never restored (KCR_EXCLUDED_NAMESPACES). */
  excluded?: NamespaceExclusion;
  now?: () => Date;
}

type Accepted = typeof EventTypes.resourceAdd | typeof EventTypes.resourceUpdate | typeof EventTypes.resourceDelete;

interface PodContext {
  deps: RestorePodDeps;
  catalog: CheckpointCatalog;
  ctx: HandlerContext;
  now: Date;
  /** Opt-in of each workload read during this event. */
  optIns: Map<string, Promise<boolean>>;
}

/** One change to one container, ready to patch. */
interface Plan {
  container: string;
  image: string;
  state: RestoreState;
  restoredFrom?: string;
  outcome: KcrEvent;
  kubeEvent: { type: 'Normal' | 'Warning'; reason: string; message: string };
  markBad?: { id: string; reason: string };
}

export function createRestorePod(deps: RestorePodDeps): FunctionHandler<Accepted> {
  // Events of one pod are handled one at a time: each run reads the pod afresh,
  // so an event that arrives while another waits adds nothing and joins it.
  const running = new Map<string, Promise<void>>();
  const waiting = new Map<string, Promise<KcrEvent[]>>();
  const excluded = deps.excluded ?? (() => false);

  function serialize(key: string, work: () => Promise<KcrEvent[]>): Promise<KcrEvent[]> {
    if (waiting.has(key)) return waiting.get(key)!.then(() => []);
    const prev = running.get(key) ?? Promise.resolve();
    const next = prev.then(() => {
      waiting.delete(key);
      return work();
    });
    waiting.set(key, next);
    // The bookkeeping chain swallows the outcome: the caller gets it from `next`.
    const tracked: Promise<void> = next.then(
      () => forget(key, tracked),
      () => forget(key, tracked),
    );
    running.set(key, tracked);
    return next;
  }

  function forget(key: string, tracked: Promise<void>): void {
    if (running.get(key) === tracked) running.delete(key);
  }

  return {
    name: NAME,
    accepts: [EventTypes.resourceAdd, EventTypes.resourceUpdate, EventTypes.resourceDelete],
    emits: true,
    async handle(event, ctx) {
      const obj = event.data;
      if (obj.kind !== 'Pod' || obj.apiVersion !== 'v1') return [];
      // The posted pod only says where to look: everything acted on is read from the API.
      const posted = obj as unknown as V1Pod;
      const namespace = keyName('namespace', posted.metadata?.namespace ?? 'default');
      const name = keyName('pod', posted.metadata?.name);
      if (excluded(namespace)) {
        ctx.log.debug({ namespace }, 'namespace excluded from restores');
        return [];
      }
      const uid = posted.metadata?.uid ?? '';
      // A pod that ends disrupted leaves its checkpoints to its replacement.
      const ending = event.type === EventTypes.resourceDelete || posted.status?.phase === 'Failed' || !!posted.metadata?.deletionTimestamp;
      return serialize(`${ending ? 'end' : 'live'}/${namespace}/${name}/${uid}`, async () => {
        const now = (deps.now ?? (() => new Date()))();
        const pc: PodContext = { deps, catalog: memoized(new CheckpointCatalog(deps.store)), ctx, now, optIns: new Map() };
        const live = await deps.kube.getPod(namespace, name);
        if (!ending) return live ? restoreLivePod(pc, namespace, name, live) : [];
        if (live && uid && live.metadata?.uid === uid) {
          if (live.status?.phase !== 'Failed' && !live.metadata?.deletionTimestamp) {
            ctx.log.warn({ pod: `${namespace}/${name}`, uid, phase: live.status?.phase }, 'the posted pod ended, the API says it runs: event ignored');
            return [];
          }
          return recordDisruption(pc, live, !!live.metadata?.deletionTimestamp);
        }
        // Gone from the API (or never there): the posted object is the only record left of it.
        if (!uid) return [];
        return recordDisruption(pc, posted, true);
      });
    },
  };
}

/** Within one event, a conflict retry re-reads the pod but not S3. */
function memoized(catalog: CheckpointCatalog): CheckpointCatalog {
  const cache = new Map<string, Promise<unknown>>();
  const wrap = <A extends unknown[], R>(name: string, fn: (...args: A) => Promise<R>) =>
    (...args: A): Promise<R> => {
      const key = `${name}:${JSON.stringify(args, (_k, v: unknown) => (v instanceof Set ? [...v].sort() : v))}`;
      if (!cache.has(key)) cache.set(key, fn(...args));
      return cache.get(key) as Promise<R>;
    };
  return Object.assign(Object.create(catalog) as CheckpointCatalog, {
    newestOfPod: wrap('newestOfPod', catalog.newestOfPod.bind(catalog)),
    disruptions: wrap('disruptions', catalog.disruptions.bind(catalog)),
  });
}

/** Opt-in as the API says it now: on the live pod (its template's annotations), else on its live workload. */
async function optedIn(pc: PodContext, pod: V1Pod | undefined, owner: PodOwner, namespace: string): Promise<boolean> {
  if (isOptedIn(pod?.metadata)) return true;
  if (owner.kind === 'Pod') return false;
  const key = `${owner.kind}/${owner.name}`;
  if (!pc.optIns.has(key)) pc.optIns.set(key, pc.deps.kube.getWorkload(namespace, owner.kind, owner.name).then((w) => isOptedIn(w?.metadata, w?.spec?.template?.metadata)));
  return pc.optIns.get(key)!;
}

/**
 * Restores what needs it in the pod as the API has it (`read`, or read now:
 * events arrive late and out of order). Conflicts re-read.
 */
async function restoreLivePod(pc: PodContext, namespace: string, name: string, read?: V1Pod, attempt = 0): Promise<KcrEvent[]> {
  const pod = read ?? (await pc.deps.kube.getPod(namespace, name));
  if (!pod || pod.metadata?.deletionTimestamp || pod.status?.phase === 'Failed' || pod.status?.phase === 'Succeeded') return [];
  const owner = podOwner(pod);
  if (!(await optedIn(pc, pod, owner, namespace))) return [];
  const plans: Plan[] = [];
  for (const failure of recentFailures(pod, pc.now, pc.deps.windowMs)) {
    const plan = await planFailure(pc, pod, owner, failure);
    if (plan) plans.push(plan);
  }
  if (plans.length === 0 && !hasAnyRestoreState(pod) && owner.kind !== 'Pod') plans.push(...(await planReplacement(pc, pod, owner)));
  if (plans.length === 0) return [];
  try {
    return await apply(pc, pod, owner, plans);
  } catch (err) {
    // The pod changed between our read and our patch (status updates are frequent): read again.
    if (err instanceof ConflictError && attempt < 8) return restoreLivePod(pc, namespace, name, undefined, attempt + 1);
    if (err instanceof ConflictError) throw new TransientError(err.message, { cause: err });
    throw err;
  }
}

function hasAnyRestoreState(pod: V1Pod): boolean {
  return Object.keys(pod.metadata?.annotations ?? {}).some((k) => k.startsWith('kcr.io/restore-state-'));
}

function refOf(owner: PodOwner, pod: V1Pod, container: string): ContainerRef {
  return { namespace: pod.metadata?.namespace ?? 'default', workload: { kind: owner.kind, name: owner.name }, container };
}

async function planFailure(pc: PodContext, pod: V1Pod, owner: PodOwner, failure: ContainerFailure): Promise<Plan | undefined> {
  const { container } = failure;
  const state = readRestoreState(pod, container);
  if (state && failure.restartCount <= state.seenRestarts) return undefined; // handled already (a redelivery)
  const podName = pod.metadata?.name ?? '';
  const image = containerImage(pod, container) ?? '';
  const restartsAfterPatch = failure.restartCount + 1;
  if (state?.gaveUpAt && pc.now.getTime() - Date.parse(state.gaveUpAt) < pc.deps.windowMs) {
    // It already fell back to a cold start: keep out of its way until the window passes.
    return undefined;
  }
  // Failing again soon after a restore blames the checkpoint it was restored from.
  const sameCycle = !!state?.current && failure.at.getTime() - Date.parse(state.restoredAt) <= pc.deps.windowMs;
  const tried = sameCycle && state ? state.tried : [];
  const originalImage = state?.originalImage ?? image;
  const markBad = sameCycle && state?.current ? { id: state.current, reason: `container ${container} of ${podName} failed again after restore: ${failure.reason}` } : undefined;
  const ref = refOf(owner, pod, container);

  let candidate: RestorableCheckpoint | undefined;
  if (tried.length < pc.deps.maxAttempts) {
    const source = state?.sourcePod ?? podName;
    candidate = await pc.catalog.newestOfPod(ref, source, new Set([...tried, ...(markBad ? [markBad.id] : [])]));
  }
  const base = { namespace: ref.namespace, pod: podName, container };
  if (!candidate) {
    const why = tried.length >= pc.deps.maxAttempts ? `${tried.length} checkpoints failed to restore (${tried.join(', ')})` : tried.length ? `no older restorable checkpoint after ${tried.join(', ')}` : 'no restorable checkpoint';
    const reason = `${failure.reason}; ${why}${image !== originalImage ? ': cold start from the original image' : ''}`;
    return {
      container,
      image: originalImage,
      state: { tried, restoredAt: pc.now.toISOString(), seenRestarts: image !== originalImage ? restartsAfterPatch : failure.restartCount, originalImage, gaveUpAt: pc.now.toISOString(), ...(state?.sourcePod ? { sourcePod: state.sourcePod } : {}) },
      outcome: events.restoreFailed({ ...base, ...(state?.current ? { checkpointId: state.current } : {}), stage: 'restore', reason }, { source: NAME }),
      kubeEvent: { type: 'Warning', reason: 'RestoreFailed', message: `Container ${container}: ${reason}` },
      ...(markBad ? { markBad } : {}),
    };
  }
  return {
    container,
    image: candidate.image,
    restoredFrom: candidate.id,
    state: { tried: [candidate.id, ...tried], current: candidate.id, restoredAt: pc.now.toISOString(), seenRestarts: restartsAfterPatch, originalImage, ...(state?.sourcePod ? { sourcePod: state.sourcePod } : {}) },
    outcome: events.podRestored({ ...base, checkpointId: candidate.id, image: candidate.image, strategy: 'in-place' }, { source: NAME }),
    kubeEvent: { type: 'Normal', reason: 'Restored', message: `Container ${container} restored from checkpoint ${candidate.id} (${failure.reason})` },
    ...(markBad ? { markBad } : {}),
  };
}

/**
 * A new pod of an opted-in workload that stands in for a disrupted one inherits
 * its checkpoints: those taken of the disrupted pod's uid (what S3 committed,
 * not what an event claimed), by a pod created after the newest of them (the
 * disrupted pod still ran then), and for a Deployment soon after the disruption.
 */
async function planReplacement(pc: PodContext, pod: V1Pod, owner: PodOwner): Promise<Plan[]> {
  const namespace = pod.metadata?.namespace ?? 'default';
  const podName = pod.metadata?.name ?? '';
  const uid = pod.metadata?.uid ?? '';
  const created = Date.parse(String(pod.metadata?.creationTimestamp ?? ''));
  const hash = templateHash(pod);
  const ttl = pc.deps.replacementTtlMs ?? 60 * 60 * 1000;
  const records = await pc.catalog.disruptions(namespace, owner.kind, owner.name);
  const record = records.find(
    (r) =>
      (r.claimedBy === undefined || r.claimedBy.uid === uid) &&
      r.podUid !== uid &&
      r.templateHash === hash &&
      pc.now.getTime() - Date.parse(r.at) <= ttl &&
      // A StatefulSet's replacement has the same name; a Deployment's comes after the loss.
      (owner.kind === 'StatefulSet' ? r.pod === podName : Number.isNaN(created) || created >= Date.parse(r.at) - 60_000),
  );
  if (!record) return [];
  const plans: Plan[] = [];
  for (const c of pod.spec?.containers ?? []) {
    const candidate = await pc.catalog.newestOfPod(refOf(owner, pod, c.name), record.pod, new Set(), record.podUid);
    if (!candidate) continue;
    // Creation times have second precision, like the id's.
    if (Number.isNaN(created) || created < checkpointIdTime(candidate.id).getTime()) {
      pc.ctx.log.warn({ pod: podName, checkpointId: candidate.id, from: record.pod }, 'pod is older than the disrupted pod\'s checkpoint: not its replacement');
      continue;
    }
    plans.push({
      container: c.name,
      image: candidate.image,
      restoredFrom: candidate.id,
      state: {
        tried: [candidate.id],
        current: candidate.id,
        restoredAt: pc.now.toISOString(),
        seenRestarts: hasStarted(pod, c.name) ? (pod.status?.containerStatuses?.find((s) => s.name === c.name)?.restartCount ?? 0) + 1 : 0,
        originalImage: c.image ?? '',
        sourcePod: record.pod,
      },
      outcome: events.podRestored({ namespace, pod: podName, container: c.name, checkpointId: candidate.id, image: candidate.image, strategy: 'replacement' }, { source: NAME }),
      kubeEvent: { type: 'Normal', reason: 'Restored', message: `Container ${c.name} restored from checkpoint ${candidate.id} of ${record.pod} (${record.reason})` },
    });
  }
  if (plans.length) await pc.catalog.putDisruption({ ...record, claimedBy: { pod: podName, uid } });
  return plans;
}

function templateHash(pod: V1Pod): string {
  return pod.metadata?.labels?.['pod-template-hash'] ?? pod.metadata?.labels?.['controller-revision-hash'] ?? '';
}

/** One patch for all the pod's changes, guarded by the resourceVersion read: a concurrent change gives 409. */
async function apply(pc: PodContext, pod: V1Pod, owner: PodOwner, plans: Plan[]): Promise<KcrEvent[]> {
  const namespace = pod.metadata?.namespace ?? 'default';
  const name = pod.metadata?.name ?? '';
  const annotations: Record<string, string> = {};
  for (const p of plans) {
    annotations[restoreStateKey(p.container)] = JSON.stringify(p.state);
    if (p.restoredFrom) annotations[restoredFromKey(p.container)] = p.restoredFrom;
  }
  const changed = plans.filter((p) => p.image !== containerImage(pod, p.container));
  await pc.deps.kube.patchPod(namespace, name, {
    metadata: { resourceVersion: pod.metadata?.resourceVersion, annotations },
    ...(changed.length ? { spec: { containers: changed.map((p) => ({ name: p.container, image: p.image })) } } : {}),
  });
  for (const p of plans) {
    if (p.markBad) await pc.catalog.markBad({ ...refOf(owner, pod, p.container), id: p.markBad.id }, p.markBad.reason, pc.now);
    try {
      await pc.deps.kube.createEvent(buildEvent({ apiVersion: 'v1', kind: 'Pod', metadata: pod.metadata }, { ...p.kubeEvent, fieldPath: `spec.containers{${p.container}}`, component: NAME, now: pc.now }));
    } catch (err) {
      pc.ctx.log.warn({ err: errorMessage(err) }, 'could not record the Kubernetes Event');
    }
    pc.ctx.log.info({ pod: name, container: p.container, image: p.image, checkpointId: p.restoredFrom }, p.kubeEvent.reason);
  }
  return plans.map((p) => p.outcome);
}

/**
 * Records a disruption, then restores a replacement that already exists
 * (events arrive in any order). `pod` is the live object, or for a pod the API
 * no longer has, the posted one: then only its uid's committed checkpoints
 * make it worth a record, and its owner must be a live, opted-in workload.
 */
async function recordDisruption(pc: PodContext, pod: V1Pod, gone: boolean): Promise<KcrEvent[]> {
  const namespace = pod.metadata?.namespace ?? 'default';
  const owner = podOwner(pod);
  if (owner.kind === 'Pod') return [];
  keyName('workload', owner.name);
  if (!(await optedIn(pc, undefined, owner, namespace))) return [];
  const node = pod.spec?.nodeName;
  const reason = disruptionOf(pod, gone && node ? await pc.deps.kube.nodeReady(node) : undefined);
  if (!reason) return [];
  const record: DisruptionRecord = {
    namespace,
    workload: { kind: owner.kind, name: owner.name },
    pod: keyName('pod', pod.metadata?.name),
    podUid: pod.metadata?.uid ?? '',
    templateHash: templateHash(pod),
    reason,
    at: pc.now.toISOString(),
  };
  const existing = (await pc.catalog.disruptions(namespace, owner.kind, owner.name)).find((r) => r.podUid === record.podUid);
  if (existing) return []; // recorded already: a redelivery or a later update of the same pod
  if (!(await hasCheckpointOf(pc, pod, owner))) {
    pc.ctx.log.info({ pod: record.pod, uid: record.podUid, reason }, 'pod disrupted, but no checkpoint of it is committed: nothing to inherit');
    return [];
  }
  await pc.catalog.putDisruption(record);
  pc.ctx.log.info({ pod: record.pod, reason }, 'pod disrupted: its replacement will inherit its checkpoints');
  const out: KcrEvent[] = [];
  // A fresh read-through cache: the one above has not seen the record just written.
  const after: PodContext = { ...pc, catalog: memoized(new CheckpointCatalog(pc.deps.store)) };
  const pods = await pc.deps.kube.listPods(namespace);
  for (const p of pods) {
    const o = podOwner(p);
    if (o.kind !== owner.kind || o.name !== owner.name || p.metadata?.uid === record.podUid) continue;
    out.push(...(await restoreLivePod(after, namespace, p.metadata?.name ?? '', p)));
  }
  return out;
}

/** Whether S3 holds a restorable checkpoint taken of this very pod (by uid) for any of its containers. */
async function hasCheckpointOf(pc: PodContext, pod: V1Pod, owner: PodOwner): Promise<boolean> {
  for (const c of pod.spec?.containers ?? []) {
    if (await pc.catalog.newestOfPod(refOf(owner, pod, keyName('container', c.name)), pod.metadata?.name ?? '', new Set(), pod.metadata?.uid ?? '')) return true;
  }
  return false;
}
