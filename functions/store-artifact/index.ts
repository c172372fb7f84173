// store-artifact as a process: S3 from KCR_S3_*, the API (in-cluster or KUBECONFIG), node-agents from KCR_NODE_AGENT_*, then the runtime.
import { podsApiFromEnv } from '../core/kubernetes/in-cluster-pods.js';
import { NodeAgentClient } from './node-agent-client.js';
import { S3ObjectStore, s3OptionsFromEnv } from '../core/storage/s3.js';
import { readEnv } from '../core/runtime/config.js';
import type { FunctionHandler } from '../core/runtime/handler.js';
import { createStoreArtifact } from './handler.js';

/** The handler with its dependencies built from the environment; creates the bucket when missing. */
export async function storeArtifactFromEnv(env: NodeJS.ProcessEnv = process.env): Promise<FunctionHandler> {
  const store = new S3ObjectStore(s3OptionsFromEnv(env));
  await store.ensureBucket();
  // The checkpointed pod's owner; node-agent discovery with KCR_NODE_AGENT_SELECTOR.
  const pods = await podsApiFromEnv(env);
  const c = readEnv(['KCR_NODE_AGENT_SELECTOR'], env);
  return createStoreArtifact({ store, pods, agents: NodeAgentClient.fromEnv(env, c.KCR_NODE_AGENT_SELECTOR ? pods : undefined) }) as FunctionHandler;
}
