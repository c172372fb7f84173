// The Kubernetes calls schedule-sync makes, and nothing else: the client-node
// adapter (functions/core/kubernetes/kubernetes.ts) is one implementation
// (index.ts), a fake in memory another (the tests).
import type { CoreV1Event } from '@kubernetes/client-node';
import type { WorkloadKind } from '../core/contract/events.js';
import type { PingSource, Workload } from '../core/kubernetes/kubernetes.js';

/**
 * Errors as the adapter maps them: 404 is absent (undefined), 429/5xx and no
 * answer are TransientError, 409 ConflictError, other 4xx KubeApiError.
 */
export interface ScheduleSyncKube {
  getWorkload(namespace: string, kind: WorkloadKind, name: string): Promise<Workload | undefined>;
  /** Across all namespaces. */
  listWorkloads(kind: WorkloadKind): Promise<Workload[]>;
  getPingSource(namespace: string, name: string): Promise<PingSource | undefined>;
  /** Across all namespaces. */
  listPingSources(labelSelector: string): Promise<PingSource[]>;
  /** One that exists already gives ConflictError. */
  createPingSource(source: PingSource): Promise<unknown>;
  /** A stale `metadata.resourceVersion` gives ConflictError. */
  replacePingSource(source: PingSource): Promise<unknown>;
  /** One already gone is no error. */
  deletePingSource(namespace: string, name: string): Promise<unknown>;
  createEvent(event: CoreV1Event): Promise<void>;
}
