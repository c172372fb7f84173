// Which pods and containers belong to a workload and can be checkpointed.
import type { V1Pod } from '@kubernetes/client-node';
import type { OwnerKind } from '../contract/events.js';

export interface PodOwner {
  kind: OwnerKind;
  name: string;
}

/**
 * The workload that owns a pod, without reading the ReplicaSet: the Deployment
 * controller names a ReplicaSet `<deployment>-<pod-template-hash>`, and labels
 * its pods with that hash.
 */
export function podOwner(pod: V1Pod): PodOwner {
  const ref = pod.metadata?.ownerReferences?.find((o) => o.controller) ?? pod.metadata?.ownerReferences?.[0];
  const hash = pod.metadata?.labels?.['pod-template-hash'];
  if (ref?.kind === 'StatefulSet') return { kind: 'StatefulSet', name: ref.name };
  if (ref?.kind === 'ReplicaSet' && hash && ref.name.endsWith(`-${hash}`)) return { kind: 'Deployment', name: ref.name.slice(0, -hash.length - 1) };
  return { kind: 'Pod', name: pod.metadata?.name ?? '' };
}

export function ownedBy(pod: V1Pod, owner: PodOwner): boolean {
  const o = podOwner(pod);
  return o.kind === owner.kind && o.name === owner.name;
}

/** Running, bound to a node and not being deleted: the kubelet can checkpoint it. */
export function isCheckpointable(pod: V1Pod): boolean {
  return pod.status?.phase === 'Running' && !!pod.spec?.nodeName && !pod.metadata?.deletionTimestamp;
}

/** Running, Ready, with an IP and not being deleted: it can serve requests. */
export function isServing(pod: V1Pod): boolean {
  return pod.status?.phase === 'Running' && !!pod.status.podIP && !pod.metadata?.deletionTimestamp && !!pod.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
}

export function isContainerRunning(pod: V1Pod, container: string): boolean {
  return !!pod.status?.containerStatuses?.find((s) => s.name === container)?.state?.running;
}

/** The containers to checkpoint: the named ones present in the pod, or all app containers. */
export function selectContainers(pod: V1Pod, wanted: string[] | undefined): string[] {
  const names = (pod.spec?.containers ?? []).map((c) => c.name);
  return wanted ? names.filter((n) => wanted.includes(n)) : names;
}
