// Server-side printing: `kubectl get` asks for `as=Table` and prints the columns it receives.

import type { ResourceType } from './resources.js';
import { num, rec, type KubeObject } from './types.js';

interface Column {
  name: string;
  type: string;
  format?: string;
  description: string;
  priority: number;
}

function age(ts: string | undefined): string {
  if (!ts) return '<unknown>';
  const s = Math.max(0, Math.floor((Date.now() - Date.parse(ts)) / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${s % 60 ? `${s % 60}s` : ''}`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h${m % 60 ? `${m % 60}m` : ''}`;
  return `${Math.floor(h / 24)}d`;
}

const nameCol: Column = { name: 'Name', type: 'string', format: 'name', description: 'Name must be unique within a namespace.', priority: 0 };
const ageCol: Column = { name: 'Age', type: 'string', description: 'CreationTimestamp of the object.', priority: 0 };

function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

function podStatusReason(pod: KubeObject): string {
  const status = rec(pod.status);
  let reason = typeof status.reason === 'string' ? status.reason : String(status.phase ?? 'Pending');
  for (const cs of arr(status.containerStatuses)) {
    const state = rec(rec(cs).state);
    const waiting = rec(state.waiting);
    const terminated = rec(state.terminated);
    if (typeof waiting.reason === 'string' && waiting.reason) reason = waiting.reason;
    else if (typeof terminated.reason === 'string' && terminated.reason) reason = terminated.reason;
  }
  if (pod.metadata.deletionTimestamp) reason = 'Terminating';
  return reason;
}

function columnsFor(t: ResourceType): { columns: Column[]; cells: (o: KubeObject) => unknown[] } {
  switch (t.kind) {
    case 'Pod':
      return {
        columns: [
          nameCol,
          { name: 'Ready', type: 'string', description: 'The aggregate readiness state of this pod for accepting traffic.', priority: 0 },
          { name: 'Status', type: 'string', description: 'The aggregate status of the containers in this pod.', priority: 0 },
          { name: 'Restarts', type: 'string', description: 'The number of times the containers in this pod have been restarted.', priority: 0 },
          ageCol,
          { name: 'IP', type: 'string', description: 'IP address allocated to the pod.', priority: 1 },
          { name: 'Node', type: 'string', description: 'Name of the node the pod is assigned to.', priority: 1 },
        ],
        cells: (o) => {
          const statuses = arr(rec(o.status).containerStatuses).map(rec);
          const total = arr(rec(o.spec).containers).length;
          const ready = statuses.filter((s) => s.ready === true).length;
          const restarts = statuses.reduce((n, s) => n + num(s.restartCount), 0);
          return [o.metadata.name, `${ready}/${total}`, podStatusReason(o), String(restarts), age(o.metadata.creationTimestamp), rec(o.status).podIP ?? '<none>', rec(o.spec).nodeName ?? '<none>'];
        },
      };
    case 'Deployment':
      return {
        columns: [
          nameCol,
          { name: 'Ready', type: 'string', description: 'Number of the pod with ready state', priority: 0 },
          { name: 'Up-to-date', type: 'string', description: 'Total number of non-terminated pods targeted by this deployment that have the desired template spec.', priority: 0 },
          { name: 'Available', type: 'string', description: 'Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.', priority: 0 },
          ageCol,
        ],
        cells: (o) => {
          const s = rec(o.status);
          return [o.metadata.name, `${num(s.readyReplicas)}/${num(rec(o.spec).replicas)}`, num(s.updatedReplicas), num(s.availableReplicas), age(o.metadata.creationTimestamp)];
        },
      };
    case 'ReplicaSet':
      return {
        columns: [
          nameCol,
          { name: 'Desired', type: 'integer', description: 'Replicas is the number of desired replicas.', priority: 0 },
          { name: 'Current', type: 'integer', description: 'Replicas is the most recently observed number of replicas.', priority: 0 },
          { name: 'Ready', type: 'integer', description: 'The number of ready replicas for this replica set.', priority: 0 },
          ageCol,
        ],
        cells: (o) => {
          const s = rec(o.status);
          return [o.metadata.name, num(rec(o.spec).replicas), num(s.replicas), num(s.readyReplicas), age(o.metadata.creationTimestamp)];
        },
      };
    case 'StatefulSet':
      return {
        columns: [nameCol, { name: 'Ready', type: 'string', description: 'Number of the pod with ready state', priority: 0 }, ageCol],
        cells: (o) => [o.metadata.name, `${num(rec(o.status).readyReplicas)}/${num(rec(o.spec).replicas)}`, age(o.metadata.creationTimestamp)],
      };
    case 'Node':
      return {
        columns: [
          nameCol,
          { name: 'Status', type: 'string', description: 'The status of the node', priority: 0 },
          { name: 'Roles', type: 'string', description: 'The roles of the node', priority: 0 },
          ageCol,
          { name: 'Version', type: 'string', description: 'Kubelet Version reported by the node.', priority: 0 },
        ],
        cells: (o) => {
          const ready = arr(rec(o.status).conditions)
            .map(rec)
            .find((c) => c.type === 'Ready');
          let st = ready?.status === 'True' ? 'Ready' : 'NotReady';
          if (rec(o.spec).unschedulable === true) st += ',SchedulingDisabled';
          return [o.metadata.name, st, '<none>', age(o.metadata.creationTimestamp), rec(rec(o.status).nodeInfo).kubeletVersion ?? ''];
        },
      };
    case 'Namespace':
      return {
        columns: [nameCol, { name: 'Status', type: 'string', description: 'The status of the namespace', priority: 0 }, ageCol],
        cells: (o) => [o.metadata.name, rec(o.status).phase ?? 'Active', age(o.metadata.creationTimestamp)],
      };
    case 'Event':
      return {
        columns: [
          { name: 'Last Seen', type: 'string', description: 'Time of the last occurrence', priority: 0 },
          { name: 'Type', type: 'string', description: 'Type of this event', priority: 0 },
          { name: 'Reason', type: 'string', description: 'Short, machine understandable string', priority: 0 },
          { name: 'Object', type: 'string', description: 'The object this event is about', priority: 0 },
          { name: 'Message', type: 'string', description: 'A human-readable description', priority: 0 },
        ],
        cells: (o) => {
          const io = rec(o.involvedObject);
          const last = (o.lastTimestamp ?? o.eventTime ?? o.metadata.creationTimestamp) as string | undefined;
          return [age(last), o.type ?? '', o.reason ?? '', `${String(io.kind ?? '').toLowerCase()}/${String(io.name ?? '')}`, o.message ?? ''];
        },
      };
    default:
      return { columns: [nameCol, ageCol], cells: (o) => [o.metadata.name, age(o.metadata.creationTimestamp)] };
  }
}

export function wantsTable(accept: string | undefined): boolean {
  return !!accept && /as=Table/.test(accept);
}

export function toTable(t: ResourceType, items: KubeObject[], resourceVersion: string, includeObject: string | null): Record<string, unknown> {
  const { columns, cells } = columnsFor(t);
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: { resourceVersion },
    columnDefinitions: columns,
    rows: items.map((o) => ({
      cells: cells(o),
      object: includeObject === 'Object' ? o : includeObject === 'None' ? null : { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata },
    })),
  };
}
