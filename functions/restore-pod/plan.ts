// restore-pod's decisions, apart from its reads and writes: from the pod as the
// API has it, a container's failure and restore state, the checkpoints S3
// holds and the disruption records, what to patch, emit and mark bad. Nothing
// here reads or writes: handler.ts reads first, and applies what these return.
import type { V1Pod } from '@kubernetes/client-node';
import { events, type KcrEvent } from '../core/contract/build.js';
import { checkpointIdTime } from '../core/contract/checkpoint-id.js';
import type { PodOwner } from '../core/kubernetes/pods.js';
import type { RestorableCheckpoint } from '../core/storage/checkpoint-catalog.js';
import type { DisruptionRecord } from '../core/storage/records.js';
import type { ContainerFailure } from './container-failure.js';
import { containerImage, hasStarted, type RestoreState } from './restore-state.js';
import type { RestoreRequestedData } from '../core/contract/events.js';

/** The function's name, the source of the events it emits. */
export const NAME = 'restore-pod';

export interface KubeEventSpec {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

/** One change to one container, ready to patch. */
export interface Plan {
  container: string;
  image: string;
  state: RestoreState;
  /** The checkpoint the new image holds; absent for a cold start from the original image. */
  restoredFrom?: string;
  outcome: KcrEvent;
  kubeEvent: KubeEventSpec;
  markBad?: { id: string; reason: string };
}

/** A failed container of a live pod, with everything its plan depends on but the checkpoints. */
export interface FailureSnapshot {
  pod: V1Pod;
  failure: ContainerFailure;
  /** The container's restore state, as the pod's annotation has it. */
  state: RestoreState | undefined;
  now: Date;
  /** A restored container that fails again within this window blames its checkpoint. */
  windowMs: number;
  /** Checkpoints tried per failure before a cold start. */
  maxAttempts: number;
}

/** The checkpoint a failure needs read: the newest restorable one taken of `pod`, outside `exclude`. */
export interface CandidateSearch {
  pod: string;
  exclude: ReadonlySet<string>;
}

interface Cycle {
  podName: string;
  image: string;
  originalImage: string;
  /** Checkpoints already tried for this failure, newest first. */
  tried: string[];
  markBad?: { id: string; reason: string };
  search?: CandidateSearch;
}

/** Where a failure stands in its restore cycle; undefined when there is nothing to do. */
function cycleOf(s: FailureSnapshot): Cycle | undefined {
  const { failure, state, pod } = s;
  if (state && failure.restartCount <= state.seenRestarts) return undefined; // handled already (a redelivery)
  // It already fell back to a cold start: keep out of its way until the window passes.
  if (state?.gaveUpAt && s.now.getTime() - Date.parse(state.gaveUpAt) < s.windowMs) return undefined;
  const podName = pod.metadata?.name ?? '';
  const image = containerImage(pod, failure.container) ?? '';
  // Failing again soon after a restore blames the checkpoint it was restored from.
  const sameCycle = !!state?.current && failure.at.getTime() - Date.parse(state.restoredAt) <= s.windowMs;
  const tried = sameCycle && state ? state.tried : [];
  const markBad = sameCycle && state?.current ? { id: state.current, reason: `container ${failure.container} of ${podName} failed again after restore: ${failure.reason}` } : undefined;
  const search = tried.length < s.maxAttempts ? { pod: state?.sourcePod ?? podName, exclude: new Set([...tried, ...(markBad ? [markBad.id] : [])]) } : undefined;
  return { podName, image, originalImage: state?.originalImage ?? image, tried, ...(markBad ? { markBad } : {}), ...(search ? { search } : {}) };
}

/** Which checkpoint the failure's plan needs: none when it needs no plan or has no attempt left. */
export function candidateSearch(s: FailureSnapshot): CandidateSearch | undefined {
  return cycleOf(s)?.search;
}

/**
 * The plan for a failed container: restore the newest of `candidates` (the
 * container's restorable checkpoints, newest first) that `candidateSearch`
 * allows, or fall back to a cold start from the original image; undefined when
 * there is nothing to do.
 */
export function planFailure(s: FailureSnapshot, candidates: readonly RestorableCheckpoint[]): Plan | undefined {
  const cycle = cycleOf(s);
  if (!cycle) return undefined;
  const { failure, state, now, maxAttempts } = s;
  const { container } = failure;
  const { podName, image, originalImage, tried, markBad, search } = cycle;
  const candidate = search && candidates.find((c) => c.pod === search.pod && !search.exclude.has(c.id));
  const restartsAfterPatch = failure.restartCount + 1;
  const base = { namespace: s.pod.metadata?.namespace ?? 'default', pod: podName, container };
  const sourcePod = state?.sourcePod ? { sourcePod: state.sourcePod } : {};
  if (!candidate) {
    const why =
      tried.length >= maxAttempts
        ? `${tried.length} checkpoints failed to restore (${tried.join(', ')})`
        : tried.length
          ? `no older restorable checkpoint after ${tried.join(', ')}`
          : 'no restorable checkpoint';
    const reason = `${failure.reason}; ${why}${image !== originalImage ? ': cold start from the original image' : ''}`;
    return {
      container,
      image: originalImage,
      state: { tried, restoredAt: now.toISOString(), seenRestarts: image !== originalImage ? restartsAfterPatch : failure.restartCount, originalImage, gaveUpAt: now.toISOString(), ...sourcePod },
      outcome: events.restoreFailed({ ...base, ...(state?.current ? { checkpointId: state.current } : {}), stage: 'restore', reason }, { source: NAME }),
      kubeEvent: { type: 'Warning', reason: 'RestoreFailed', message: `Container ${container}: ${reason}` },
      ...(markBad ? { markBad } : {}),
    };
  }
  return {
    container,
    image: candidate.image,
    restoredFrom: candidate.id,
    state: { tried: [candidate.id, ...tried], current: candidate.id, restoredAt: now.toISOString(), seenRestarts: restartsAfterPatch, originalImage, ...sourcePod },
    outcome: events.podRestored({ ...base, checkpointId: candidate.id, image: candidate.image, strategy: 'in-place' }, { source: NAME }),
    kubeEvent: { type: 'Normal', reason: 'Restored', message: `Container ${container} restored from checkpoint ${candidate.id} (${failure.reason})` },
    ...(markBad ? { markBad } : {}),
  };
}

/** pod-template-hash (Deployment) or controller-revision-hash (StatefulSet): a replacement runs the same template. */
export function templateHash(pod: V1Pod): string {
  return pod.metadata?.labels?.['pod-template-hash'] ?? pod.metadata?.labels?.['controller-revision-hash'] ?? '';
}

function createdAt(pod: V1Pod): number {
  return Date.parse(String(pod.metadata?.creationTimestamp ?? ''));
}

/**
 * The disruption whose checkpoints a new pod of an opted-in workload inherits:
 * unclaimed (or claimed by this pod), of another pod, the same template,
 * recent (`ttlMs`), and for a StatefulSet of the same name, for a Deployment
 * followed by this pod's creation. `records` newest first.
 */
export function replacementRecord(pod: V1Pod, owner: PodOwner, records: readonly DisruptionRecord[], now: Date, ttlMs: number): DisruptionRecord | undefined {
  const uid = pod.metadata?.uid ?? '';
  const created = createdAt(pod);
  const hash = templateHash(pod);
  return records.find(
    (r) =>
      (r.claimedBy === undefined || r.claimedBy.uid === uid) &&
      r.podUid !== uid &&
      r.templateHash === hash &&
      now.getTime() - Date.parse(r.at) <= ttlMs &&
      // A StatefulSet's replacement has the same name; a Deployment's comes after the loss.
      (owner.kind === 'StatefulSet' ? r.pod === pod.metadata?.name : Number.isNaN(created) || created >= Date.parse(r.at) - 60_000),
  );
}

/** What differs between a replacement's plan and a requested one. */
interface FreshRestore {
  originalImage: string;
  /** The pod the checkpoint was taken of, when not this one: the loop guard's fallback source. */
  sourcePod?: string;
  strategy: 'in-place' | 'replacement';
  message: string;
}

/** A plan that starts a fresh restore cycle of `container` on `candidate` (replacementPlan, requestedPlan). */
function freshRestorePlan(pod: V1Pod, container: string, candidate: RestorableCheckpoint, now: Date, fresh: FreshRestore): Plan {
  const namespace = pod.metadata?.namespace ?? 'default';
  const podName = pod.metadata?.name ?? '';
  const restartCount = pod.status?.containerStatuses?.find((s) => s.name === container)?.restartCount ?? 0;
  return {
    container,
    image: candidate.image,
    restoredFrom: candidate.id,
    state: {
      tried: [candidate.id],
      current: candidate.id,
      restoredAt: now.toISOString(),
      seenRestarts: hasStarted(pod, container) ? restartCount + 1 : 0,
      originalImage: fresh.originalImage,
      ...(fresh.sourcePod !== undefined ? { sourcePod: fresh.sourcePod } : {}),
    },
    outcome: events.podRestored({ namespace, pod: podName, container, checkpointId: candidate.id, image: candidate.image, strategy: fresh.strategy }, { source: NAME }),
    kubeEvent: { type: 'Normal', reason: 'Restored', message: fresh.message },
  };
}

/**
 * The plan that gives `container` of a replacement pod the disrupted pod's
 * checkpoint; undefined when the pod is older than the checkpoint (the
 * disrupted pod still ran then: this one is not its replacement).
 */
export function replacementPlan(pod: V1Pod, container: string, record: DisruptionRecord, candidate: RestorableCheckpoint, now: Date): Plan | undefined {
  const created = createdAt(pod);
  // Creation times have second precision, like the id's.
  if (Number.isNaN(created) || created < checkpointIdTime(candidate.id).getTime()) return undefined;
  return freshRestorePlan(pod, container, candidate, now, {
    originalImage: containerImage(pod, container) ?? '',
    sourcePod: record.pod,
    strategy: 'replacement',
    message: `Container ${container} restored from checkpoint ${candidate.id} of ${record.pod} (${record.reason})`,
  });
}

/** A restore the node's runtime cannot do: nothing is patched, and the pod says why. */
export interface Refusal {
  container: string;
  outcome: KcrEvent;
  kubeEvent: KubeEventSpec;
}

export function refusalOf(pod: V1Pod, plan: Plan & { restoredFrom: string }, node: string, why: string): Refusal {
  const reason = `not restored from checkpoint ${plan.restoredFrom} on node ${node}: ${why}`;
  return {
    container: plan.container,
    outcome: events.restoreFailed(
      { namespace: pod.metadata?.namespace ?? 'default', pod: pod.metadata?.name ?? '', container: plan.container, checkpointId: plan.restoredFrom, stage: 'restore', reason },
      { source: NAME },
    ),
    kubeEvent: { type: 'Warning', reason: 'RestoreUnsupported', message: `Container ${plan.container}: ${reason}` },
  };
}

/**
 * `kcr restore --to` (io.kcr.restore.requested): the plan that puts
 * `container` of `pod` on the chosen checkpoint, its image by digest, with a
 * fresh restore cycle so the loop guard blames that checkpoint if the
 * container fails again soon; undefined when it already runs that image (a
 * redelivered request). A checkpoint of another pod of the workload (the one
 * before a bad deploy, say) makes that pod the source the loop guard falls back in.
 */
export function requestedPlan(pod: V1Pod, container: string, state: RestoreState | undefined, candidate: RestorableCheckpoint, now: Date): Plan | undefined {
  const image = containerImage(pod, container) ?? '';
  if (image === candidate.image) return undefined;
  const other = candidate.pod !== (pod.metadata?.name ?? '');
  return freshRestorePlan(pod, container, candidate, now, {
    originalImage: state?.originalImage ?? image,
    ...(other ? { sourcePod: candidate.pod } : {}),
    strategy: 'in-place',
    message: `Container ${container} restored from checkpoint ${candidate.id} on request${other ? ` (taken of ${candidate.pod})` : ''}`,
  });
}

/** A restore request that cannot be done: nothing is patched; the pod (when there is one) says why. */
export function requestRefusal(data: RestoreRequestedData, reason: string, pod?: string): Refusal {
  const target = pod ? { pod } : 'pod' in data ? { pod: data.pod } : { kind: data.kind, name: data.name };
  return {
    container: '',
    outcome: events.restoreFailed({ namespace: data.namespace, ...target, checkpointId: data.checkpointId, stage: 'restore', reason }, { source: NAME }),
    kubeEvent: { type: 'Warning', reason: 'RestoreRefused', message: `Not restored to checkpoint ${data.checkpointId}: ${reason}` },
  };
}
