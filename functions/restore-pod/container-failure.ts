// Reading a pod for the failures restore-pod acts on, and for the evidence
// that a pod was disrupted (evicted, lost with its node) rather than deleted
// on purpose (scale-down, rollout, kubectl delete).
import type { V1ContainerStatus, V1Pod } from '@kubernetes/client-node';

export interface ContainerFailure {
  container: string;
  restartCount: number;
  reason: string;
  /** When the failed run ended (or now, for a container waiting in back-off). */
  at: Date;
}

/**
 * The containers that failed recently: terminated non-zero or OOMKilled
 * (now, or as their last state), or waiting in CrashLoopBackOff.
 */
export function recentFailures(pod: V1Pod, now: Date, windowMs: number): ContainerFailure[] {
  const out: ContainerFailure[] = [];
  for (const cs of pod.status?.containerStatuses ?? []) {
    const f = failureOf(cs, now);
    if (f && now.getTime() - f.at.getTime() <= windowMs) out.push(f);
  }
  return out;
}

function failureOf(cs: V1ContainerStatus, now: Date): ContainerFailure | undefined {
  const base = { container: cs.name, restartCount: cs.restartCount };
  const t = cs.state?.terminated;
  if (t && (t.exitCode !== 0 || t.reason === 'OOMKilled')) return { ...base, reason: describeTermination(t.exitCode, t.reason), at: asDate(t.finishedAt) ?? now };
  const w = cs.state?.waiting;
  const last = cs.lastState?.terminated;
  if (w?.reason === 'CrashLoopBackOff') return { ...base, reason: `CrashLoopBackOff${last ? ` after ${describeTermination(last.exitCode, last.reason)}` : ''}`, at: now };
  if (last && (last.exitCode !== 0 || last.reason === 'OOMKilled')) return { ...base, reason: describeTermination(last.exitCode, last.reason), at: asDate(last.finishedAt) ?? now };
  return undefined;
}

function describeTermination(exitCode: number, reason: string | undefined): string {
  return reason === 'OOMKilled' ? 'OOMKilled' : `exit code ${exitCode}${reason ? ` (${reason})` : ''}`;
}

function asDate(v: Date | string | undefined): Date | undefined {
  if (!v) return undefined;
  const d = v instanceof Date ? v : new Date(v);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

const DISRUPTION_REASONS = new Set(['EvictionByEvictionAPI', 'DeletionByTaintManager', 'TerminationByKubelet', 'PreemptionByScheduler', 'DeletionByPodGC']);

/**
 * Why a pod was disrupted, or undefined when it ended on purpose. Kubernetes
 * marks disruptions with the DisruptionTarget condition; a node-pressure
 * eviction leaves phase Failed, reason Evicted; a pod whose node is not Ready
 * when it is deleted went with its node (`nodeReady` is given only for a pod
 * being deleted or gone).
 */
export function disruptionOf(pod: V1Pod, nodeReady: boolean | undefined): string | undefined {
  const cond = pod.status?.conditions?.find((c) => c.type === 'DisruptionTarget' && c.status === 'True');
  if (cond && (!cond.reason || DISRUPTION_REASONS.has(cond.reason))) return cond.reason ?? 'DisruptionTarget';
  if (pod.status?.phase === 'Failed' && (pod.status.reason === 'Evicted' || pod.status.reason === 'NodeLost')) return pod.status.reason;
  if (nodeReady === false) return 'NodeNotReady';
  return undefined;
}
