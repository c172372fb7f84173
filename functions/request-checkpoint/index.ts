// Builds request-checkpoint from the environment.
import { Kubernetes } from '../core/kubernetes/kubernetes.js';
import { readEnv } from '../core/runtime/config.js';
import { namespaceExclusion } from '../core/kubernetes/excluded-namespaces.js';
import type { FunctionHandler } from '../core/runtime/handler.js';
import { createRequestCheckpoint } from './handler.js';

export async function requestCheckpointFromEnv(env: NodeJS.ProcessEnv = process.env): Promise<FunctionHandler> {
  const c = readEnv(['KUBECONFIG', 'KCR_CHECKPOINT_TIMEOUT_SECONDS', 'KCR_CHECKPOINT_CONCURRENCY', 'KCR_EXCLUDED_NAMESPACES'], env);
  return createRequestCheckpoint({
    kube: Kubernetes.fromEnvironment(c.KUBECONFIG),
    timeoutSeconds: c.KCR_CHECKPOINT_TIMEOUT_SECONDS,
    concurrency: c.KCR_CHECKPOINT_CONCURRENCY,
    excluded: namespaceExclusion(c.KCR_EXCLUDED_NAMESPACES),
  }) as FunctionHandler;
}
