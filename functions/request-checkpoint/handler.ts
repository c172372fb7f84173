// request-checkpoint: asks the kubelet, through the API server, to checkpoint
// every selected container of an opted-in workload (on schedule) or of one of
// its pods (on demand), as the API server has them.
// Replicas are independent: one failing does not stop the others.
import pLimit from 'p-limit';
import type { V1Pod } from '@kubernetes/client-node';
import { EventTypes, type CheckpointCreatedData, type OwnerKind } from '../core/contract/events.js';
import { events, type KcrEvent } from '../core/contract/build.js';
import { checkpointId } from '../core/contract/checkpoint-id.js';
import { parseKubeletArchivePath } from '../core/contract/kubelet-archive.js';
import type { Kubernetes } from '../core/kubernetes/kubernetes.js';
import { buildEvent } from '../core/kubernetes/events.js';
import { ANNOTATIONS, isOptedIn, parseContainerList } from '../core/kubernetes/annotations.js';
import { labelSelectorString } from '../core/kubernetes/label-selector.js';
import { isCheckpointable, isContainerRunning, ownedBy, podOwner, selectContainers, type PodOwner } from '../core/kubernetes/pods.js';
import { classifyKubeletFailure } from './kubelet-outcome.js';
import { TransientError, errorMessage } from '../core/runtime/errors.js';
import type { FunctionHandler, HandlerContext, IncomingEvent } from '../core/runtime/handler.js';
import type { NamespaceExclusion } from '../core/kubernetes/excluded-namespaces.js';

export const NAME = 'request-checkpoint';

export interface RequestCheckpointDeps {
  kube: Kubernetes;
  /** The kubelet's `?timeout=`, in seconds. */
  timeoutSeconds: number;
  /** Kubelet calls in flight at once. */
  concurrency: number;
  /** Namespaces never checkpointed (KCR_EXCLUDED_NAMESPACES). */
  excluded?: NamespaceExclusion;
}

type Accepted = typeof EventTypes.ping | typeof EventTypes.checkpointRequested;

interface Target {
  pod: V1Pod;
  owner: PodOwner;
  container: string;
}

type Outcome = { kind: 'created'; data: CheckpointCreatedData } | { kind: 'failed'; reason: string; transient: boolean; target: Target };

export function createRequestCheckpoint(deps: RequestCheckpointDeps): FunctionHandler<Accepted> {
  const limit = pLimit(deps.concurrency);
  // CRIU freezes the process: a second request for a container being
  // checkpointed joins the one in flight instead of freezing it again.
  const inFlight = new Map<string, Promise<Outcome>>();

  function checkpointOnce(target: Target, ctx: HandlerContext): Promise<Outcome> {
    const key = `${target.pod.spec?.nodeName}/${target.pod.metadata?.namespace}/${target.pod.metadata?.name}/${target.container}`;
    const running = inFlight.get(key);
    if (running) return running;
    const p = limit(() => checkpoint(deps, target, ctx)).finally(() => inFlight.delete(key));
    inFlight.set(key, p);
    return p;
  }

  return {
    name: NAME,
    accepts: [EventTypes.ping, EventTypes.checkpointRequested],
    emits: true,
    async handle(event, ctx) {
      const resolved = await resolveTargets(deps, event);
      if ('failure' in resolved) return [resolved.failure];
      const { targets, skipped } = resolved;
      if (skipped.length) ctx.log.info({ skipped }, 'containers not checkpointed this time');
      if (targets.length === 0) {
        ctx.log.info('no running container to checkpoint');
        return [];
      }
      const outcomes = await Promise.all(targets.map((t) => checkpointOnce(t, ctx)));
      // Retrying the whole event would freeze the containers that succeeded
      // again: only when every container failed transiently does the broker retry.
      if (outcomes.every((o) => o.kind === 'failed' && o.transient)) {
        throw new TransientError(`no container checkpointed: ${(outcomes[0] as { reason: string }).reason}`);
      }
      return outcomes.map((o) => (o.kind === 'created' ? events.checkpointCreated(o.data, { source: NAME }) : failedEvent(o.target, o.reason)));
    },
  };
}

/**
 * The containers to checkpoint, read from the API: the event names a workload
 * or a pod, but only a live object that opted in, outside the excluded
 * namespaces, is checkpointed (anyone in the cluster can post a request).
 */
async function resolveTargets(deps: RequestCheckpointDeps, event: IncomingEvent<Accepted>): Promise<{ targets: Target[]; skipped: string[] } | { failure: KcrEvent }> {
  const data = event.data;
  // The resync ping is schedule-sync's (its Trigger routes it there); nothing to checkpoint.
  if ('resync' in data) return { targets: [], skipped: [] };
  const excluded = deps.excluded?.(data.namespace) ?? false;
  if ('pod' in data) {
    const fail = (reason: string) => ({ failure: events.checkpointFailed({ namespace: data.namespace, pod: data.pod, ...(data.container ? { container: data.container } : {}), stage: 'request', reason }, { source: NAME }) });
    if (excluded) return fail(`namespace ${data.namespace} is excluded from checkpoints (KCR_EXCLUDED_NAMESPACES)`);
    const pod = await deps.kube.getPod(data.namespace, data.pod);
    if (!pod) return fail(`pod ${data.namespace}/${data.pod} not found`);
    const owner = podOwner(pod);
    const workload = owner.kind === 'Pod' ? undefined : await deps.kube.getWorkload(data.namespace, owner.kind, owner.name);
    if (!isOptedIn(pod.metadata) && !isOptedIn(workload?.metadata, workload?.spec?.template?.metadata)) {
      return fail(`pod ${data.namespace}/${data.pod} has not opted in: ${owner.kind === 'Pod' ? 'the pod' : `its ${owner.kind} ${owner.name}`} has no ${ANNOTATIONS.schedule} annotation`);
    }
    if (!isCheckpointable(pod)) return fail(`pod ${data.namespace}/${data.pod} is not running on a node (phase ${pod.status?.phase ?? 'unknown'}${pod.metadata?.deletionTimestamp ? ', terminating' : ''})`);
    const containers = selectContainers(pod, data.container ? [data.container] : undefined);
    if (data.container && containers.length === 0) return fail(`pod ${data.namespace}/${data.pod} has no container ${data.container}`);
    return split([pod], owner, containers.length ? containers : undefined);
  }

  const { namespace, kind, name } = data;
  const fail = (reason: string) => ({ failure: events.checkpointFailed({ namespace, kind, name, stage: 'request', reason }, { source: NAME }) });
  if (excluded) return fail(`namespace ${namespace} is excluded from checkpoints (KCR_EXCLUDED_NAMESPACES)`);
  const workload = await deps.kube.getWorkload(namespace, kind, name);
  if (!workload) return fail(`${kind} ${namespace}/${name} not found`);
  if (!isOptedIn(workload.metadata, workload.spec?.template?.metadata)) return fail(`${kind} ${namespace}/${name} has not opted in: no ${ANNOTATIONS.schedule} annotation`);
  const owner = { kind, name };
  const pods = (await deps.kube.listPods(namespace, labelSelectorString(workload.spec?.selector))).filter((p) => ownedBy(p, owner));
  return split(pods, owner, parseContainerList(workload.metadata?.annotations?.[ANNOTATIONS.containers]));
}

function split(pods: V1Pod[], owner: PodOwner, wanted: string[] | undefined): { targets: Target[]; skipped: string[] } {
  const targets: Target[] = [];
  const skipped: string[] = [];
  for (const pod of pods) {
    const podName = pod.metadata?.name ?? '';
    if (!isCheckpointable(pod)) {
      skipped.push(`${podName}: not running on a node`);
      continue;
    }
    for (const container of selectContainers(pod, wanted)) {
      if (isContainerRunning(pod, container)) targets.push({ pod, owner, container });
      else skipped.push(`${podName}/${container}: container not running`);
    }
  }
  return { targets, skipped };
}

async function checkpoint(deps: RequestCheckpointDeps, target: Target, ctx: HandlerContext): Promise<Outcome> {
  const { pod, container } = target;
  const namespace = pod.metadata?.namespace ?? 'default';
  const podName = pod.metadata?.name ?? '';
  const node = pod.spec?.nodeName ?? '';
  let outcome: Outcome;
  const started = performance.now();
  try {
    const answer = await deps.kube.checkpoint(node, namespace, podName, container, deps.timeoutSeconds);
    ctx.observe?.('kubeletCheckpointSeconds', (performance.now() - started) / 1000, { outcome: answer.ok ? 'created' : 'failed' });
    if (answer.ok) {
      const { timestamp } = parseKubeletArchivePath(answer.archivePath, { pod: podName, namespace, container });
      const podUid = pod.metadata?.uid ?? '';
      outcome = {
        kind: 'created',
        data: {
          id: checkpointId({ podUid, container, checkpointedAt: timestamp }),
          namespace,
          workload: { kind: target.owner.kind as OwnerKind, name: target.owner.name },
          pod: podName,
          podUid,
          container,
          node,
          archivePath: answer.archivePath,
          checkpointedAt: timestamp,
        },
      };
    } else {
      const f = classifyKubeletFailure(answer.status, answer.body);
      outcome = { kind: 'failed', reason: f.reason, transient: f.transient, target };
    }
  } catch (err) {
    outcome = { kind: 'failed', reason: errorMessage(err), transient: err instanceof TransientError, target };
  }
  await recordOnPod(deps, target, outcome, ctx);
  return outcome;
}

async function recordOnPod(deps: RequestCheckpointDeps, target: Target, outcome: Outcome, ctx: HandlerContext): Promise<void> {
  const spec =
    outcome.kind === 'created'
      ? { type: 'Normal' as const, reason: 'Checkpointed', message: `Checkpointed container ${target.container} (checkpoint ${outcome.data.id}, ${outcome.data.archivePath})` }
      : { type: 'Warning' as const, reason: 'CheckpointFailed', message: `Checkpoint of container ${target.container} failed: ${outcome.reason}` };
  try {
    await deps.kube.createEvent(buildEvent({ apiVersion: 'v1', kind: 'Pod', metadata: target.pod.metadata }, { ...spec, fieldPath: `spec.containers{${target.container}}`, component: NAME }));
  } catch (err) {
    // The story in `kubectl describe` is secondary to the checkpoint itself.
    ctx.log.warn({ err: errorMessage(err), pod: target.pod.metadata?.name }, 'could not record the Kubernetes Event');
  }
  if (outcome.kind === 'failed') ctx.log.warn({ pod: target.pod.metadata?.name, container: target.container, reason: outcome.reason }, 'checkpoint failed');
}

function failedEvent(target: Target, reason: string): KcrEvent {
  return events.checkpointFailed(
    {
      namespace: target.pod.metadata?.namespace ?? 'default',
      workload: { kind: target.owner.kind, name: target.owner.name },
      pod: target.pod.metadata?.name ?? '',
      ...(target.pod.metadata?.uid ? { podUid: target.pod.metadata.uid } : {}),
      container: target.container,
      ...(target.pod.spec?.nodeName ? { node: target.pod.spec.nodeName } : {}),
      stage: 'request',
      reason,
    },
    { source: NAME },
  );
}
