// Defaulting per kind, as the real API server applies it before validation: pod specs (and
// the pod templates of Deployments, ReplicaSets and StatefulSets), workload specs, initial
// status, and a Namespace's finalizers and metadata.name label. Custom resources get none.

import type { ResourceType } from '../resources.js';
import { isRecord, type KubeObject } from '../types.js';

function podSpecDefaults(spec: Record<string, unknown>): void {
  spec.restartPolicy ??= 'Always';
  spec.terminationGracePeriodSeconds ??= 30;
  spec.dnsPolicy ??= 'ClusterFirst';
  spec.schedulerName ??= 'default-scheduler';
  spec.securityContext ??= {};
  spec.enableServiceLinks ??= true;
  spec.preemptionPolicy ??= 'PreemptLowerPriority';
  spec.priority ??= 0;
  if (spec.serviceAccountName === undefined && spec.serviceAccount === undefined) spec.serviceAccountName = 'default';
  for (const field of ['containers', 'initContainers']) {
    const list = spec[field];
    if (!Array.isArray(list)) continue;
    for (const c of list) {
      if (!isRecord(c)) continue;
      c.terminationMessagePath ??= '/dev/termination-log';
      c.terminationMessagePolicy ??= 'File';
      c.resources ??= {};
      if (c.imagePullPolicy === undefined && typeof c.image === 'string') {
        const lastSeg = c.image.split('/').pop() ?? '';
        c.imagePullPolicy = c.image.includes('@') || (lastSeg.includes(':') && !lastSeg.endsWith(':latest')) ? 'IfNotPresent' : 'Always';
      }
    }
  }
}

function templateDefaults(spec: Record<string, unknown>): void {
  const tpl = spec.template;
  if (isRecord(tpl)) {
    if (!isRecord(tpl.metadata)) tpl.metadata = {};
    if (isRecord(tpl.spec)) podSpecDefaults(tpl.spec);
  }
}
export function applyDefaults(t: ResourceType, obj: KubeObject): void {
  if (t.custom) return;
  const spec = obj.spec;
  switch (t.kind) {
    case 'Pod':
      if (isRecord(spec)) podSpecDefaults(spec);
      obj.status ??= { phase: 'Pending', qosClass: 'BestEffort' };
      break;
    case 'Deployment':
      if (isRecord(spec)) {
        spec.replicas ??= 1;
        spec.revisionHistoryLimit ??= 10;
        spec.progressDeadlineSeconds ??= 600;
        spec.strategy ??= { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' } };
        templateDefaults(spec);
      }
      obj.status ??= {};
      break;
    case 'ReplicaSet':
      if (isRecord(spec)) {
        spec.replicas ??= 1;
        templateDefaults(spec);
      }
      obj.status ??= { replicas: 0 };
      break;
    case 'StatefulSet':
      if (isRecord(spec)) {
        spec.replicas ??= 1;
        spec.podManagementPolicy ??= 'OrderedReady';
        spec.revisionHistoryLimit ??= 10;
        spec.updateStrategy ??= { type: 'RollingUpdate', rollingUpdate: { partition: 0 } };
        spec.persistentVolumeClaimRetentionPolicy ??= { whenDeleted: 'Retain', whenScaled: 'Retain' };
        templateDefaults(spec);
      }
      obj.status ??= { replicas: 0, availableReplicas: 0 };
      break;
    case 'Namespace':
      obj.spec ??= { finalizers: ['kubernetes'] };
      obj.status ??= { phase: 'Active' };
      obj.metadata.labels = { ...(obj.metadata.labels ?? {}), 'kubernetes.io/metadata.name': obj.metadata.name ?? '' };
      break;
    default:
      break;
  }
}
