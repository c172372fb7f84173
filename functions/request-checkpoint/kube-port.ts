// The Kubernetes calls request-checkpoint makes, and nothing else: the
// client-node adapter (functions/core/kubernetes/kubernetes.ts) is one
// implementation (index.ts), a fake in memory another (the tests).
import type { CoreV1Event, V1ObjectMeta, V1Pod } from '@kubernetes/client-node';
import type { WorkloadKind } from '../core/contract/events.js';
import type { CheckpointOutcome } from '../core/kubernetes/kubernetes.js';
import type { LabelSelector } from '../core/kubernetes/label-selector.js';

/** What request-checkpoint reads of a workload: its opt-in, its containers, the selector of its pods. */
interface WorkloadMeta {
  metadata?: V1ObjectMeta;
  spec?: { selector?: LabelSelector; template?: { metadata?: V1ObjectMeta } };
}

/**
 * Errors as the adapter maps them: 404 is absent (undefined), 429/5xx and no
 * answer are TransientError, other 4xx KubeApiError.
 */
export interface RequestCheckpointKube {
  getPod(namespace: string, name: string): Promise<V1Pod | undefined>;
  getWorkload(namespace: string, kind: WorkloadKind, name: string): Promise<WorkloadMeta | undefined>;
  listPods(namespace: string, labelSelector?: string): Promise<V1Pod[]>;
  /**
   * The kubelet's checkpoint API through the API server's node proxy: every
   * HTTP answer is returned; no whole answer (the kubelet may or may not have
   * checkpointed) throws TransientError.
   */
  checkpoint(node: string, namespace: string, pod: string, container: string, timeoutSeconds: number): Promise<CheckpointOutcome>;
  createEvent(event: CoreV1Event): Promise<void>;
}
