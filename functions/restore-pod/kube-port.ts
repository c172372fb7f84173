// The Kubernetes calls restore-pod makes, and nothing else: the client-node
// adapter (functions/core/kubernetes/kubernetes.ts) is one implementation
// (index.ts), a fake in memory another (the tests).
import type { CoreV1Event, V1NodeSystemInfo, V1ObjectMeta, V1Pod } from '@kubernetes/client-node';
import type { WorkloadKind } from '../core/contract/events.js';

/** What restore-pod reads of a workload: its opt-in, on it or on its pod template. */
export interface WorkloadMeta {
  metadata?: V1ObjectMeta;
  spec?: { template?: { metadata?: V1ObjectMeta } };
}

/**
 * Errors as the adapter maps them: 404 is absent (undefined), 429/5xx and no
 * answer are TransientError, 409 ConflictError, other 4xx KubeApiError.
 */
export interface RestorePodKube {
  getPod(namespace: string, name: string): Promise<V1Pod | undefined>;
  getWorkload(namespace: string, kind: WorkloadKind, name: string): Promise<WorkloadMeta | undefined>;
  listPods(namespace: string): Promise<V1Pod[]>;
  /** A strategic merge patch; a stale `metadata.resourceVersion` in it gives ConflictError. */
  patchPod(namespace: string, name: string, patch: object): Promise<unknown>;
  createEvent(event: CoreV1Event): Promise<void>;
  /** Whether the node's Ready condition is True; false when the node is gone. */
  nodeReady(name: string): Promise<boolean>;
  /**
   * The node's `status.nodeInfo` (its container runtime), undefined when the
   * node is gone. Without it (the bare adapter, as bench/ passes it) runtimes
   * are not checked.
   */
  nodeInfo?(name: string): Promise<V1NodeSystemInfo | undefined>;
}
