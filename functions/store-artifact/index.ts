// store-artifact as a process: S3 from KCR_S3_*, node-agents from KCR_NODE_AGENT_*, then the runtime.
import { Kubernetes } from '../adapters/kubernetes.js';
import { NodeAgentClient } from '../adapters/node-agent-client.js';
import { S3ObjectStore, s3OptionsFromEnv } from '../adapters/s3.js';
import { readEnv } from '../runtime/config.js';
import type { FunctionHandler } from '../runtime/handler.js';
import { createStoreArtifact } from './handler.js';

/** The handler with its dependencies built from the environment; creates the bucket when missing. */
export async function storeArtifactFromEnv(env: NodeJS.ProcessEnv = process.env): Promise<FunctionHandler> {
  const store = new S3ObjectStore(s3OptionsFromEnv(env));
  await store.ensureBucket();
  // The API is needed only to discover node-agent pods (KCR_NODE_AGENT_SELECTOR).
  const c = readEnv(['KCR_NODE_AGENT_SELECTOR', 'KUBECONFIG'], env);
  const pods = c.KCR_NODE_AGENT_SELECTOR ? Kubernetes.fromEnvironment(c.KUBECONFIG) : undefined;
  return createStoreArtifact({ store, agents: NodeAgentClient.fromEnv(env, pods) }) as FunctionHandler;
}
