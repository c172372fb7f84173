// The Kubernetes calls request-checkpoint makes, and nothing else: the
// client-node adapter (functions/core/kubernetes/kubernetes.ts) is one
// implementation (index.ts), a fake in memory another (the tests). The kubelet
// call is not one of them: kubelet-route.ts reaches it, through the node-agent
// by default, or through this adapter's node proxy.
import type { CoreV1Event, V1ObjectMeta, V1Pod } from '@kubernetes/client-node';
import type { WorkloadKind } from '../core/contract/events.js';
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
  createEvent(event: CoreV1Event): Promise<void>;
}
