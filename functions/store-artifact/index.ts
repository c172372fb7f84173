// store-artifact as a process: S3 from KCR_S3_*, the API (in-cluster or KUBECONFIG), node-agents from KCR_NODE_AGENT_*, then the runtime.
import { InClusterPods } from '../core/kubernetes/in-cluster-pods.js';
import { NodeAgentClient, type PodLister } from './node-agent-client.js';
import { S3ObjectStore, s3OptionsFromEnv } from '../core/storage/s3.js';
import { readEnv } from '../core/runtime/config.js';
import type { FunctionHandler } from '../core/runtime/handler.js';
import { createStoreArtifact, type PodReader } from './handler.js';

/** The handler with its dependencies built from the environment; creates the bucket when missing. */
export async function storeArtifactFromEnv(env: NodeJS.ProcessEnv = process.env): Promise<FunctionHandler> {
  const store = new S3ObjectStore(s3OptionsFromEnv(env));
  await store.ensureBucket();
  const pods = await podsApi(env);
  const c = readEnv(['KCR_NODE_AGENT_SELECTOR'], env);
  return createStoreArtifact({ store, pods, agents: NodeAgentClient.fromEnv(env, c.KCR_NODE_AGENT_SELECTOR ? pods : undefined) }) as FunctionHandler;
}

/**
 * The API that store-artifact reads pods with (the checkpointed pod's owner;
 * node-agent discovery with KCR_NODE_AGENT_SELECTOR): in a pod, a plain GET
 * with the ServiceAccount token; with KUBECONFIG, the Kubernetes adapter,
 * loaded only then (client-node is ~75 MiB of RSS).
 */
async function podsApi(env: NodeJS.ProcessEnv): Promise<PodReader & PodLister> {
  const c = readEnv(['KUBECONFIG'], env);
  if (!c.KUBECONFIG) return InClusterPods.fromEnv(env);
  const { Kubernetes } = await import('../core/kubernetes/kubernetes.js');
  return Kubernetes.fromEnvironment(c.KUBECONFIG);
}
