// request-checkpoint: asks the kubelet to checkpoint every selected container of
// an opted-in workload (on schedule) or of one of its pods (on demand), as the
// API server has them, through the node-agent of the pod's node (or the API
// server's node proxy: kubelet-route.ts).
// Replicas are independent: one failing does not stop the others, and one
// failing transiently is retried alone (HeldAttempts).
import pLimit from 'p-limit';
import type { V1Pod } from '@kubernetes/client-node';
import { EventTypes, type CheckpointCreatedData, type OwnerKind } from '../core/contract/events.js';
import { events, type KcrEvent } from '../core/contract/build.js';
import { checkpointId } from '../core/contract/checkpoint-id.js';
import { parseKubeletArchivePath } from '../core/contract/kubelet-archive.js';
import { buildEvent } from '../core/kubernetes/events.js';
import { ANNOTATIONS, isOptedIn, parseContainerList } from '../core/kubernetes/annotations.js';
import { labelSelectorString } from '../core/kubernetes/label-selector.js';
import { isCheckpointable, isContainerRunning, ownedBy, podOwner, selectContainers, type PodOwner } from '../core/kubernetes/pods.js';
import { classifyKubeletFailure } from './kubelet-outcome.js';
import { TransientError, errorMessage } from '../core/runtime/errors.js';
import type { FunctionHandler, HandlerContext, IncomingEvent } from '../core/runtime/handler.js';
import type { NamespaceExclusion } from '../core/kubernetes/excluded-namespaces.js';
import type { RequestCheckpointKube } from './kube-port.js';
import type { KubeletRoute } from './kubelet-route.js';

const NAME = 'request-checkpoint';

interface RequestCheckpointDeps {
  kube: RequestCheckpointKube;
  /** How the kubelet's checkpoint API is reached (KCR_CHECKPOINT_VIA). */
  kubelet: KubeletRoute;
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

type Outcome = { kind: 'created'; data: CheckpointCreatedData; target: Target } | Failure;
type Failure = { kind: 'failed'; reason: string; transient: boolean; target: Target };

const isTransientFailure = (o: Outcome): o is Failure => o.kind === 'failed' && o.transient;

/**
 * A container that failed transiently (a dropped connection, API 429/5xx) makes
 * the whole event a 503, so the broker retries it; the outcomes that stand
 * (checkpoints taken, permanent failures) wait here, by the event's source and
 * id, which the broker's retry repeats: the retry checkpoints only the
 * containers that failed, and emits every outcome once all are settled. A
 * retry that reaches another instance finds nothing here and checkpoints every
 * container again: a second checkpoint (its own id), never a lost one, and the
 * first one's archive stays on its node, as after an answer that broke off.
 */
interface HeldAttempts {
  attempts: number;
  settled: Map<string, Outcome>;
  expires: number;
}

/**
 * How many attempts of one event may hold checkpoints taken back while other
 * containers keep failing transiently. The last one emits them, with
 * checkpoint.failed for the others: a node that stays unreachable must not make
 * the broker give up on the whole event, losing the other nodes' checkpoints.
 */
const MAX_ATTEMPTS_HOLDING_CHECKPOINTS = 3;
/** How long settled outcomes wait for a retry: beyond the broker's whole schedule (10 retries from 0.2 s, doubling: 3.4 min). */
const HOLD_MS = 10 * 60_000;

function targetKey(target: Target): string {
  return `${target.pod.spec?.nodeName}/${target.pod.metadata?.namespace}/${target.pod.metadata?.name}/${target.container}`;
}

export function createRequestCheckpoint(deps: RequestCheckpointDeps): FunctionHandler<Accepted> {
  const limit = pLimit(deps.concurrency);
  // CRIU freezes the process: a second request for a container being
  // checkpointed joins the one in flight instead of freezing it again.
  const inFlight = new Map<string, Promise<Outcome>>();
  const held = new Map<string, HeldAttempts>();

  function checkpointOnce(target: Target, ctx: HandlerContext): Promise<Outcome> {
    const key = targetKey(target);
    const running = inFlight.get(key);
    if (running) return running;
    const p = limit(() => checkpoint(deps, target, ctx)).finally(() => inFlight.delete(key));
    inFlight.set(key, p);
    return p;
  }

  /** Takes the earlier attempts at this event out of `held` (a 503 puts them back), dropping expired ones. */
  function takeHeld(eventKey: string): HeldAttempts | undefined {
    const now = Date.now();
    for (const [k, h] of held) if (h.expires <= now) held.delete(k);
    const earlier = held.get(eventKey);
    held.delete(eventKey);
    return earlier;
  }

  return {
    name: NAME,
    accepts: [EventTypes.ping, EventTypes.checkpointRequested],
    emits: true,
    async handle(event, ctx) {
      const resolved = await resolveTargets(deps, event);
      const eventKey = `${event.source} ${event.id}`;
      const earlier = takeHeld(eventKey);
      const settled = earlier?.settled ?? new Map<string, Outcome>();
      if ('failure' in resolved) return [...[...settled.values()].map(toEvent), resolved.failure];
      const { targets, skipped } = resolved;
      if (skipped.length) ctx.log.info({ skipped }, 'containers not checkpointed this time');
      const fresh = targets.filter((t) => !settled.has(targetKey(t)));
      if (earlier) ctx.log.info({ attempt: earlier.attempts + 1, settled: settled.size, retried: fresh.length }, 'retry: checkpointing only the containers that failed transiently');
      const outcomes = [...settled.values(), ...(await Promise.all(fresh.map((t) => checkpointOnce(t, ctx))))];
      if (outcomes.length === 0) {
        ctx.log.info('no running container to checkpoint');
        return [];
      }
      const transient = outcomes.filter(isTransientFailure);
      if (transient.length) {
        const attempts = (earlier?.attempts ?? 0) + 1;
        const created = outcomes.filter((o) => o.kind === 'created').length;
        if (created === 0 || attempts < MAX_ATTEMPTS_HOLDING_CHECKPOINTS) {
          const standing = outcomes.filter((o) => !isTransientFailure(o));
          held.set(eventKey, { attempts, settled: new Map(standing.map((o) => [targetKey(o.target), o])), expires: Date.now() + HOLD_MS });
          throw new TransientError(
            `${transient.length} of ${outcomes.length} containers not checkpointed, for the broker to retry (${created} checkpoints taken wait for them): ${transient[0]!.reason}`,
          );
        }
        ctx.log.warn({ attempts, failing: transient.length, created }, 'containers still failing transiently: emitting the checkpoints taken, and checkpoint.failed for the others');
      }
      return outcomes.map(toEvent);
    },
  };
}

function toEvent(outcome: Outcome): KcrEvent {
  return outcome.kind === 'created' ? events.checkpointCreated(outcome.data, { source: NAME }) : failedEvent(outcome.target, outcome.reason);
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
    const fail = (reason: string) => ({
      failure: events.checkpointFailed({ namespace: data.namespace, pod: data.pod, ...(data.container ? { container: data.container } : {}), stage: 'request', reason }, { source: NAME }),
    });
    if (excluded) return fail(`namespace ${data.namespace} is excluded from checkpoints (KCR_EXCLUDED_NAMESPACES)`);
    const pod = await deps.kube.getPod(data.namespace, data.pod);
    if (!pod) return fail(`pod ${data.namespace}/${data.pod} not found`);
    const owner = podOwner(pod);
    const workload = owner.kind === 'Pod' ? undefined : await deps.kube.getWorkload(data.namespace, owner.kind, owner.name);
    if (!isOptedIn(pod.metadata) && !isOptedIn(workload?.metadata, workload?.spec?.template?.metadata)) {
      return fail(`pod ${data.namespace}/${data.pod} has not opted in: ${owner.kind === 'Pod' ? 'the pod' : `its ${owner.kind} ${owner.name}`} has no ${ANNOTATIONS.schedule} annotation`);
    }
    if (!isCheckpointable(pod))
      return fail(`pod ${data.namespace}/${data.pod} is not running on a node (phase ${pod.status?.phase ?? 'unknown'}${pod.metadata?.deletionTimestamp ? ', terminating' : ''})`);
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
    const answer = await deps.kubelet.checkpoint(node, namespace, podName, container, deps.timeoutSeconds);
    ctx.observe?.('kubeletCheckpointSeconds', (performance.now() - started) / 1000, { outcome: answer.ok ? 'created' : 'failed' });
    if (answer.ok) {
      const { timestamp } = parseKubeletArchivePath(answer.archivePath, { pod: podName, namespace, container });
      const podUid = pod.metadata?.uid ?? '';
      outcome = {
        kind: 'created',
        target,
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
      const f = classifyKubeletFailure(answer.status, answer.body, deps.kubelet.via);
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
