// Builds request-checkpoint from the environment.
import { Kubernetes } from '../core/kubernetes/kubernetes.js';
import { nodeAgentLocatorFromEnv } from '../core/node-agent/locator.js';
import { readEnv } from '../core/runtime/config.js';
import { tokenGetter } from '../core/runtime/token.js';
import { namespaceExclusion } from '../core/kubernetes/excluded-namespaces.js';
import type { FunctionHandler } from '../core/runtime/handler.js';
import { createRequestCheckpoint } from './handler.js';
import { apiServerProxyRoute, nodeAgentRoute } from './kubelet-route.js';

export async function requestCheckpointFromEnv(env: NodeJS.ProcessEnv = process.env): Promise<FunctionHandler> {
  const c = readEnv(
    [
      'KUBECONFIG',
      'KCR_CHECKPOINT_TIMEOUT_SECONDS',
      'KCR_CHECKPOINT_CONCURRENCY',
      'KCR_EXCLUDED_NAMESPACES',
      'KCR_CHECKPOINT_VIA',
      'KCR_NODE_AGENT_SELECTOR',
      'KCR_NODE_AGENT_TOKEN',
      'KCR_NODE_AGENT_TOKEN_FILE',
    ],
    env,
  );
  const kube = Kubernetes.fromEnvironment(c.KUBECONFIG);
  const kubelet =
    c.KCR_CHECKPOINT_VIA === 'apiserver-proxy'
      ? apiServerProxyRoute(kube)
      : nodeAgentRoute({
          locate: nodeAgentLocatorFromEnv(env, c.KCR_NODE_AGENT_SELECTOR ? kube : undefined),
          token: tokenGetter({ token: c.KCR_NODE_AGENT_TOKEN, tokenFile: c.KCR_NODE_AGENT_TOKEN_FILE }),
        });
  return createRequestCheckpoint({
    kube,
    kubelet,
    timeoutSeconds: c.KCR_CHECKPOINT_TIMEOUT_SECONDS,
    concurrency: c.KCR_CHECKPOINT_CONCURRENCY,
    excluded: namespaceExclusion(c.KCR_EXCLUDED_NAMESPACES),
  }) as FunctionHandler;
}
