// A simulated kubelet's status reporting: the pod status it derives from its containers
// (containerStatuses, phase under the restart policy, the Ready/ContainersReady conditions,
// pod and host IPs) and its write to the API's pods/status.

import { ApiError } from '../errors.js';
import { clone, isRecord, nowRfc3339, type KubeObject } from '../types.js';
import type { NodeRuntime, RuntimePod } from './runtime.js';

export function writeStatus(rt: NodeRuntime, namespace: string, name: string): void {
  if (rt.down || rt.stopped) return;
  const pod = rt.api.tryGet(rt.podType, namespace, name);
  if (!pod) return;
  const p = rt.pods.get(pod.metadata.uid!);
  if (!p) return;
  try {
    rt.api.mutate(
      rt.podType,
      namespace,
      name,
      (o) => {
        o.status = buildStatus(rt, o, p);
      },
      'status',
    );
  } catch (err) {
    if (!(err instanceof ApiError && err.code === 404)) throw err;
  }
}

/** The pod's status as this kubelet sees it, on top of what the API has (kept: PodScheduled, DisruptionTarget). */
export function buildStatus(rt: NodeRuntime, pod: KubeObject, p: RuntimePod): Record<string, unknown> {
  const prev = clone(pod.status ?? {});
  const specContainers = Array.isArray(pod.spec?.containers) ? pod.spec.containers.filter(isRecord) : [];
  const statuses = specContainers.map((cs) => {
    const c = p.containers.get(String(cs.name));
    const base: Record<string, unknown> = {
      name: String(cs.name),
      image: String(cs.image),
      imageID: c?.imageID ?? '',
      ready: c?.phase === 'running' && !p.terminating,
      restartCount: c?.restartCount ?? 0,
      started: c?.phase === 'running',
    };
    if (c?.id) base.containerID = `cri-o://${c.id}`;
    if (!c || c.phase === 'waiting') base.state = { waiting: { reason: c?.waiting?.reason ?? 'ContainerCreating', ...(c?.waiting?.message ? { message: c.waiting.message } : {}) } };
    else if (c.phase === 'running') base.state = { running: { startedAt: c.startedAt } };
    else base.state = { terminated: { ...c.terminated } };
    base.lastState = c?.lastTerminated ? { terminated: { ...c.lastTerminated } } : {};
    return base;
  });
  const allRunning = statuses.length > 0 && statuses.every((s) => s.ready === true);
  const anyStarted = [...p.containers.values()].some((c) => c.everStarted);
  let phase = String(prev.phase ?? 'Pending');
  if (!p.final) {
    const all = [...p.containers.values()];
    const terminatedAll = all.length > 0 && all.every((c) => c.phase === 'terminated');
    // Under restartPolicy Always the kubelet restarts exited containers and the pod stays
    // Running; only OnFailure (all exit 0) and Never end the pod.
    const policy = isRecord(pod.spec) ? String(pod.spec.restartPolicy ?? 'Always') : 'Always';
    const succeeded = all.every((c) => c.terminated?.exitCode === 0);
    if (terminatedAll && !p.terminating && (policy === 'Never' || (policy === 'OnFailure' && succeeded))) {
      phase = succeeded ? 'Succeeded' : 'Failed';
    } else if (anyStarted) phase = 'Running';
    else phase = 'Pending';
  }
  const prevConds = Array.isArray(prev.conditions) ? prev.conditions.filter(isRecord) : [];
  const cond = (type: string, ok: boolean, reason?: string): Record<string, unknown> => {
    const old = prevConds.find((x) => x.type === type);
    const status = ok ? 'True' : 'False';
    const out: Record<string, unknown> = {
      type,
      status,
      lastProbeTime: null,
      lastTransitionTime: old && old.status === status ? old.lastTransitionTime : nowRfc3339(),
    };
    if (reason && !ok) out.reason = reason;
    return out;
  };
  const keep = prevConds.filter((x) => x.type === 'PodScheduled' || x.type === 'DisruptionTarget');
  const conditions = [
    cond('PodReadyToStartContainers', !p.final && !p.terminating),
    cond('Initialized', true),
    cond('Ready', allRunning && !p.final, 'ContainersNotReady'),
    cond('ContainersReady', allRunning && !p.final, 'ContainersNotReady'),
    ...keep,
  ];
  const out: Record<string, unknown> = {
    ...prev,
    phase,
    conditions,
    hostIP: hostIP(rt),
    hostIPs: [{ ip: hostIP(rt) }],
    podIP: p.podIP,
    podIPs: [{ ip: p.podIP }],
    startTime: p.startTime,
    containerStatuses: statuses,
    qosClass: prev.qosClass ?? 'BestEffort',
  };
  return out;
}

function hostIP(rt: NodeRuntime): string {
  return `192.168.49.${rt.opts.nodeIndex + 2}`;
}
