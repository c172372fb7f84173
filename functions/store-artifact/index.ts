// store-artifact as a process: S3 from KCR_S3_*, node-agents from KCR_NODE_AGENT_*, then the runtime.
import { NodeAgentClient } from '../adapters/node-agent-client.js';
import { S3ObjectStore, s3OptionsFromEnv } from '../adapters/s3.js';
import type { FunctionHandler } from '../runtime/handler.js';
import { createStoreArtifact } from './handler.js';

/** The handler with its dependencies built from the environment; creates the bucket when missing. */
export async function storeArtifactFromEnv(env: NodeJS.ProcessEnv = process.env): Promise<FunctionHandler> {
  const store = new S3ObjectStore(s3OptionsFromEnv(env));
  await store.ensureBucket();
  return createStoreArtifact({ store, agents: NodeAgentClient.fromEnv(env) }) as FunctionHandler;
}
