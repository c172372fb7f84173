// store-artifact as a process: S3 from KCR_S3_*, node-agents from KCR_NODE_AGENT_*, then the runtime.
import { InClusterPods } from '../adapters/kube-pods.js';
import { NodeAgentClient, type PodLister } from '../adapters/node-agent-client.js';
import { S3ObjectStore, s3OptionsFromEnv } from '../adapters/s3.js';
import { readEnv } from '../runtime/config.js';
import type { FunctionHandler } from '../runtime/handler.js';
import { createStoreArtifact } from './handler.js';

/** The handler with its dependencies built from the environment; creates the bucket when missing. */
export async function storeArtifactFromEnv(env: NodeJS.ProcessEnv = process.env): Promise<FunctionHandler> {
  const store = new S3ObjectStore(s3OptionsFromEnv(env));
  await store.ensureBucket();
  return createStoreArtifact({ store, agents: NodeAgentClient.fromEnv(env, await podLister(env)) }) as FunctionHandler;
}

/**
 * The API that node-agent discovery (KCR_NODE_AGENT_SELECTOR) lists pods with:
 * in a pod, a plain GET with the ServiceAccount token; with KUBECONFIG, the
 * Kubernetes adapter, loaded only then (client-node is ~75 MiB of RSS).
 */
async function podLister(env: NodeJS.ProcessEnv): Promise<PodLister | undefined> {
  const c = readEnv(['KCR_NODE_AGENT_SELECTOR', 'KUBECONFIG'], env);
  if (!c.KCR_NODE_AGENT_SELECTOR) return undefined;
  if (!c.KUBECONFIG) return InClusterPods.fromEnv(env);
  const { Kubernetes } = await import('../adapters/kubernetes.js');
  return Kubernetes.fromEnvironment(c.KUBECONFIG);
}
