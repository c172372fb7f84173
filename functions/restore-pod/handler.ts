// restore-pod: when a container of an opted-in workload fails, patch its image
// to its latest good checkpoint image (by digest); the kubelet recreates the
// container and CRI-O/containerd restore it. A pod that replaces an evicted or
// lost one inherits that pod's checkpoints. A loop guard falls back to older
// checkpoints and finally to a cold start; on a node whose runtime cannot
// restore, nothing is patched. The decisions are plan.ts's; this file reads
// what they need and applies them.
import type { V1Pod } from '@kubernetes/client-node';
import { EventTypes, type RestoreRequestedData } from '../core/contract/events.js';
import type { KcrEvent } from '../core/contract/build.js';
import { ConflictError, KubeApiError } from '../core/kubernetes/errors.js';
import { buildEvent } from '../core/kubernetes/events.js';
import { isOptedIn } from '../core/kubernetes/annotations.js';
import { CheckpointCatalog, type ContainerRef, type RestorableCheckpoint } from '../core/storage/checkpoint-catalog.js';
import type { DisruptionRecord } from '../core/storage/records.js';
import { disruptionOf, recentFailures, type ContainerFailure } from './container-failure.js';
import { podOwner, type PodOwner } from '../core/kubernetes/pods.js';
import { containerImage, readRestoreState, restoredFromKey, restoreStateKey } from './restore-state.js';
import { candidateSearch, planFailure, refusalOf, replacementPlan, replacementRecord, requestRefusal, requestedPlan, NAME, templateHash, type KubeEventSpec, type Plan, type Refusal } from './plan.js';
import { runtimeSupport } from './runtime-support.js';
import type { RestorePodKube } from './kube-port.js';
import { TransientError, errorMessage } from '../core/runtime/errors.js';
import { keyName } from '../core/storage/layout.js';
import type { NamespaceExclusion } from '../core/kubernetes/excluded-namespaces.js';
import type { FunctionHandler, HandlerContext } from '../core/runtime/handler.js';
import type { ObjectStore } from '../core/storage/object-store.js';

export interface RestorePodDeps {
  kube: RestorePodKube;
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

type Accepted = typeof EventTypes.resourceAdd | typeof EventTypes.resourceUpdate | typeof EventTypes.resourceDelete | typeof EventTypes.restoreRequested;

interface PodContext {
  deps: RestorePodDeps;
  catalog: CheckpointCatalog;
  ctx: HandlerContext;
  now: Date;
  /** Opt-in of each workload read during this event. */
  optIns: Map<string, Promise<boolean>>;
  /** Why each node read during this event cannot restore (undefined: it can, or cannot be told). */
  unsupported: Map<string, Promise<string | undefined>>;
  /** Refusals this instance told of: a pod's updates repeat a failure until it restarts again. */
  reported: Set<string>;
}

/** Refusals remembered per instance, oldest forgotten first. */
const MAX_REPORTED = 1000;

export function createRestorePod(deps: RestorePodDeps): FunctionHandler<Accepted> {
  // Events of one pod are handled one at a time: each run reads the pod afresh,
  // so an event that arrives while another waits adds nothing and joins it.
  const running = new Map<string, Promise<void>>();
  const waiting = new Map<string, Promise<KcrEvent[]>>();
  const excluded = deps.excluded ?? (() => false);
  const reported = new Set<string>();

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
    accepts: [EventTypes.resourceAdd, EventTypes.resourceUpdate, EventTypes.resourceDelete, EventTypes.restoreRequested],
    emits: true,
    async handle(event, ctx) {
      if (event.type === EventTypes.restoreRequested) {
        const data = event.data;
        if (excluded(data.namespace)) return [refused(ctx, data, `namespace ${data.namespace} is excluded from restores (KCR_EXCLUDED_NAMESPACES)`)];
        const target = 'pod' in data ? `pod/${data.pod}` : `${data.kind}/${data.name}`;
        // One request per target at a time; a pod's own events may run alongside: the patch's resourceVersion guards that.
        return serialize(`request/${data.namespace}/${target}/${data.checkpointId}`, async () => {
          const now = (deps.now ?? (() => new Date()))();
          const pc: PodContext = { deps, catalog: memoized(new CheckpointCatalog(deps.store)), ctx, now, optIns: new Map(), unsupported: new Map(), reported };
          return restoreRequested(pc, data);
        });
      }
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
        const pc: PodContext = { deps, catalog: memoized(new CheckpointCatalog(deps.store)), ctx, now, optIns: new Map(), unsupported: new Map(), reported };
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

function refused(ctx: HandlerContext, data: RestoreRequestedData, reason: string): KcrEvent {
  ctx.log.warn({ namespace: data.namespace, checkpointId: data.checkpointId }, `restore request refused: ${reason}`);
  return requestRefusal(data, reason).outcome;
}

/**
 * io.kcr.restore.requested: the pod, or every live pod of the workload, to
 * the chosen checkpoint. Everything is read anew: the pods, their owner and
 * its opt-in, the checkpoint's records under the pod's own workload and
 * container (so a checkpoint of another namespace, workload or container is
 * never found), its image by digest, and the node's runtime.
 */
async function restoreRequested(pc: PodContext, data: RestoreRequestedData): Promise<KcrEvent[]> {
  const namespace = keyName('namespace', data.namespace);
  keyName('id', data.checkpointId);
  let pods: V1Pod[];
  if ('pod' in data) {
    const pod = await pc.deps.kube.getPod(namespace, keyName('pod', data.pod));
    pods = pod ? [pod] : [];
  } else {
    keyName('workload', data.name);
    pods = (await pc.deps.kube.listPods(namespace)).filter((p) => {
      const o = podOwner(p);
      return o.kind === data.kind && o.name === data.name && !p.metadata?.deletionTimestamp && p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed';
    });
  }
  if (pods.length === 0) return [refused(pc.ctx, data, 'pod' in data ? `pod ${namespace}/${data.pod} does not exist` : `${data.kind} ${namespace}/${data.name} has no live pod`)];
  const out: KcrEvent[] = [];
  for (const pod of pods) out.push(...(await restorePodTo(pc, data, pod)));
  return out;
}

async function restorePodTo(pc: PodContext, data: RestoreRequestedData, read: V1Pod, attempt = 0): Promise<KcrEvent[]> {
  const namespace = read.metadata?.namespace ?? 'default';
  const name = read.metadata?.name ?? '';
  const pod = attempt === 0 ? read : await pc.deps.kube.getPod(namespace, name);
  const refuse = async (reason: string, on?: V1Pod) => {
    const refusal = requestRefusal(data, reason, name);
    if (on) await recordEvent(pc, on, undefined, refusal.kubeEvent);
    pc.ctx.log.warn({ pod: `${namespace}/${name}`, checkpointId: data.checkpointId }, `restore request refused: ${reason}`);
    return [refusal.outcome];
  };
  if (!pod || pod.metadata?.deletionTimestamp || pod.status?.phase === 'Failed' || pod.status?.phase === 'Succeeded') return refuse(`pod ${namespace}/${name} is gone or ending`);
  const node = pod.spec?.nodeName;
  if (!node) return refuse(`pod ${namespace}/${name} is not scheduled to a node yet`, pod);
  const owner = podOwner(pod);
  if (!(await optedIn(pc, pod, owner, namespace))) return refuse(`${owner.kind} ${namespace}/${owner.name} is not opted in to checkpoint/restore (kcr.io/checkpoint-restore-schedule)`, pod);
  let found: { container: string; candidate: RestorableCheckpoint } | undefined;
  for (const c of pod.spec?.containers ?? []) {
    const candidate = await pc.catalog.restorable({ ...refOf(owner, pod, keyName('container', c.name)), id: data.checkpointId });
    if (candidate) {
      found = { container: c.name, candidate };
      break;
    }
  }
  if (!found)
    return refuse(
      `checkpoint ${data.checkpointId} is not a restorable checkpoint of ${owner.kind} ${namespace}/${owner.name} (not of its containers, not committed, its image not built, or marked bad)`,
      pod,
    );
  const why = await unsupportedRuntime(pc, node);
  if (why) return refuse(`node ${node} cannot restore: ${why}`, pod);
  const plan = requestedPlan(pod, found.container, readRestoreState(pod, found.container), found.candidate, pc.now);
  if (!plan) {
    pc.ctx.log.info({ pod: `${namespace}/${name}`, checkpointId: data.checkpointId }, 'restore request: the container already runs from that checkpoint');
    return [];
  }
  try {
    return await apply(pc, pod, owner, [plan]);
  } catch (err) {
    if (err instanceof ConflictError && attempt < 8) return restorePodTo(pc, data, read, attempt + 1);
    if (err instanceof ConflictError) throw new TransientError(err.message, { cause: err });
    throw err;
  }
}

/** Within one event, a conflict retry re-reads the pod but not S3. */
function memoized(catalog: CheckpointCatalog): CheckpointCatalog {
  const cache = new Map<string, Promise<unknown>>();
  const wrap =
    <A extends unknown[], R>(name: string, fn: (...args: A) => Promise<R>) =>
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
  if (!pc.optIns.has(key))
    pc.optIns.set(
      key,
      pc.deps.kube.getWorkload(namespace, owner.kind, owner.name).then((w) => isOptedIn(w?.metadata, w?.spec?.template?.metadata)),
    );
  return pc.optIns.get(key)!;
}

/**
 * Restores what needs it in the pod as the API has it (`read`, or read now:
 * events arrive late and out of order). Conflicts re-read.
 */
async function restoreLivePod(pc: PodContext, namespace: string, name: string, read?: V1Pod, attempt = 0): Promise<KcrEvent[]> {
  const pod = read ?? (await pc.deps.kube.getPod(namespace, name));
  if (!pod || pod.metadata?.deletionTimestamp || pod.status?.phase === 'Failed' || pod.status?.phase === 'Succeeded') return [];
  // Whether a restore can work depends on the node's runtime: a pod not bound
  // yet waits for the update that binds it (a container that failed ran, so its pod is bound).
  const node = pod.spec?.nodeName;
  if (!node) return [];
  const owner = podOwner(pod);
  if (!(await optedIn(pc, pod, owner, namespace))) return [];
  let plans: Plan[] = [];
  for (const failure of recentFailures(pod, pc.now, pc.deps.windowMs)) {
    const plan = await planFailureOf(pc, pod, owner, failure);
    if (plan) plans.push(plan);
  }
  let claim: DisruptionRecord | undefined;
  if (plans.length === 0 && !hasAnyRestoreState(pod) && owner.kind !== 'Pod') ({ plans, claim } = await planReplacement(pc, pod, owner));
  if (plans.length === 0) return [];

  // A checkpoint image on a runtime that cannot restore would leave the container failing to start.
  const restoring = plans.filter(isRestore);
  const why = restoring.length ? await unsupportedRuntime(pc, node) : undefined;
  // Told once per failure, and once per replacement pod, however many updates repeat it.
  const occasion = claim ? 'replacement' : undefined;
  const refused = why ? restoring.map((plan) => ({ key: `${pod.metadata?.uid ?? ''}/${plan.container}/${occasion ?? plan.state.seenRestarts}`, plan, refusal: refusalOf(pod, plan, node, why) })) : [];
  // What remains goes ahead (a cold start needs no restore); a replacement's plans all restore, so it claims nothing and another pod may inherit.
  if (why) plans = plans.filter((p) => !isRestore(p));
  const out: KcrEvent[] = [];
  if (plans.length) {
    if (claim) await pc.catalog.putDisruption({ ...claim, claimedBy: { pod: name, uid: pod.metadata?.uid ?? '' } });
    try {
      out.push(...(await apply(pc, pod, owner, plans)));
    } catch (err) {
      // The pod changed between our read and our patch (status updates are frequent): read again.
      if (err instanceof ConflictError && attempt < 8) return restoreLivePod(pc, namespace, name, undefined, attempt + 1);
      if (err instanceof ConflictError) throw new TransientError(err.message, { cause: err });
      throw err;
    }
  }
  return [...out, ...(await report(pc, pod, refused))];
}

function isRestore(plan: Plan): plan is Plan & { restoredFrom: string } {
  return plan.restoredFrom !== undefined;
}

function hasAnyRestoreState(pod: V1Pod): boolean {
  return Object.keys(pod.metadata?.annotations ?? {}).some((k) => k.startsWith('kcr.io/restore-state-'));
}

function refOf(owner: PodOwner, pod: V1Pod, container: string): ContainerRef {
  return { namespace: pod.metadata?.namespace ?? 'default', workload: { kind: owner.kind, name: owner.name }, container };
}

/** Reads the one checkpoint the failure's plan needs, then plans. */
async function planFailureOf(pc: PodContext, pod: V1Pod, owner: PodOwner, failure: ContainerFailure): Promise<Plan | undefined> {
  const snapshot = { pod, failure, state: readRestoreState(pod, failure.container), now: pc.now, windowMs: pc.deps.windowMs, maxAttempts: pc.deps.maxAttempts };
  const search = candidateSearch(snapshot);
  const candidate = search && (await pc.catalog.newestOfPod(refOf(owner, pod, failure.container), search.pod, search.exclude));
  return planFailure(snapshot, candidate ? [candidate] : []);
}

/** Why the node's container runtime cannot restore, read once per event; undefined when it can or cannot be told. */
function unsupportedRuntime(pc: PodContext, node: string): Promise<string | undefined> {
  let why = pc.unsupported.get(node);
  if (!why) {
    why = runtimeOf(pc, node).then((version) => {
      const support = version === undefined ? undefined : runtimeSupport(version);
      return support && !support.restores ? support.why : undefined;
    });
    pc.unsupported.set(node, why);
  }
  return why;
}

/** The node's `containerRuntimeVersion`; undefined when the port cannot read nodes, the node is gone, or RBAC forbids the read. */
async function runtimeOf(pc: PodContext, node: string): Promise<string | undefined> {
  const { kube } = pc.deps;
  if (!kube.nodeInfo) return undefined;
  try {
    return (await kube.nodeInfo(node))?.containerRuntimeVersion;
  } catch (err) {
    // Restoring as before the check existed beats not restoring at all; the log says what to grant.
    if (err instanceof KubeApiError && err.status === 403) {
      pc.ctx.log.warn({ node, err: errorMessage(err) }, 'cannot read the node to check its container runtime: grant restore-pod "get" on "nodes"');
      return undefined;
    }
    throw err;
  }
}

/**
 * A new pod of an opted-in workload that stands in for a disrupted one inherits
 * its checkpoints: those taken of the disrupted pod's uid (what S3 committed,
 * not what an event claimed), by a pod created after the newest of them (the
 * disrupted pod still ran then), and for a Deployment soon after the
 * disruption. `claim` is the record to mark as taken once the plans apply.
 */
async function planReplacement(pc: PodContext, pod: V1Pod, owner: PodOwner): Promise<{ plans: Plan[]; claim?: DisruptionRecord }> {
  const records = await pc.catalog.disruptions(pod.metadata?.namespace ?? 'default', owner.kind, owner.name);
  const record = replacementRecord(pod, owner, records, pc.now, pc.deps.replacementTtlMs ?? 60 * 60 * 1000);
  if (!record) return { plans: [] };
  const plans: Plan[] = [];
  for (const c of pod.spec?.containers ?? []) {
    const candidate = await pc.catalog.newestOfPod(refOf(owner, pod, c.name), record.pod, new Set(), record.podUid);
    if (!candidate) continue;
    const plan = replacementPlan(pod, c.name, record, candidate, pc.now);
    if (plan) plans.push(plan);
    else pc.ctx.log.warn({ pod: pod.metadata?.name, checkpointId: candidate.id, from: record.pod }, "pod is older than the disrupted pod's checkpoint: not its replacement");
  }
  return plans.length ? { plans, claim: record } : { plans };
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
    await recordEvent(pc, pod, p.container, p.kubeEvent);
    pc.ctx.log.info({ pod: name, container: p.container, image: p.image, checkpointId: p.restoredFrom }, p.kubeEvent.reason);
  }
  return plans.map((p) => p.outcome);
}

/** Tells of restores the node's runtime cannot do, each `key` once in this instance; nothing was patched. */
async function report(pc: PodContext, pod: V1Pod, refused: { key: string; plan: Plan; refusal: Refusal }[]): Promise<KcrEvent[]> {
  const out: KcrEvent[] = [];
  for (const { key, plan, refusal } of refused) {
    if (pc.reported.has(key)) continue;
    await recordEvent(pc, pod, plan.container, refusal.kubeEvent);
    pc.ctx.log.warn({ pod: pod.metadata?.name, container: plan.container, node: pod.spec?.nodeName, checkpointId: plan.restoredFrom }, refusal.kubeEvent.message);
    pc.reported.add(key);
    for (const old of pc.reported) {
      if (pc.reported.size <= MAX_REPORTED) break;
      pc.reported.delete(old);
    }
    out.push(refusal.outcome);
  }
  return out;
}

/** A core/v1 Event on the pod's container; an Event that cannot be recorded only costs the story, not the restore. */
async function recordEvent(pc: PodContext, pod: V1Pod, container: string | undefined, spec: KubeEventSpec): Promise<void> {
  try {
    await pc.deps.kube.createEvent(
      buildEvent({ apiVersion: 'v1', kind: 'Pod', metadata: pod.metadata }, { ...spec, ...(container ? { fieldPath: `spec.containers{${container}}` } : {}), component: NAME, now: pc.now }),
    );
  } catch (err) {
    pc.ctx.log.warn({ err: errorMessage(err) }, 'could not record the Kubernetes Event');
  }
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
