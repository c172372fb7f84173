// Loose JSON shapes for objects held by the simulated API server. Objects are stored as
// plain JSON (what goes over the wire); these interfaces name the fields the simulator reads.

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  finalizers?: string[];
  [k: string]: unknown;
}

/** An object as the simulated API server stores it (metadata always present). */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
  [k: string]: unknown;
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function clone<T>(v: T): T {
  return structuredClone(v);
}

/** Kubernetes timestamps have second precision (RFC 3339, `Z`). */
export function nowRfc3339(d: Date = new Date()): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** The value as a record, or an empty one: for reading loose JSON. */
export function rec(v: unknown): Record<string, unknown> {
  return isRecord(v) ? v : {};
}

export function num(v: unknown, d = 0): number {
  return typeof v === 'number' ? v : d;
}

export function conditionsOf(status: unknown): Record<string, unknown>[] {
  const conds = rec(status).conditions;
  return Array.isArray(conds) ? conds.filter(isRecord) : [];
}

/**
 * `status.conditions` with `condition` in place of the one of its type. As the
 * API conventions say, lastTransitionTime moves only when the status changes.
 */
export function withCondition(status: unknown, condition: { type: string; status: string } & Record<string, unknown>): Record<string, unknown>[] {
  const conds = conditionsOf(status);
  const old = conds.find((c) => c.type === condition.type);
  const lastTransitionTime = old?.status === condition.status && old.lastTransitionTime ? old.lastTransitionTime : nowRfc3339();
  return [...conds.filter((c) => c !== old), { lastProbeTime: null, ...condition, lastTransitionTime }];
}
