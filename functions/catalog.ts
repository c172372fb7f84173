// Every kcr function by its Knative Service name, built from the environment:
// the one list the container image's entry point and the local mode share.
import type { AnyHandler } from './runtime/server.js';
import { scheduleSyncFromEnv } from './schedule-sync/index.js';
import { requestCheckpointFromEnv } from './request-checkpoint/index.js';
import { storeArtifactFromEnv } from './store-artifact/index.js';
import { buildImageFromEnv } from './build-image/index.js';
import { restorePodFromEnv } from './restore-pod/index.js';
import { eventArchiveFromEnv } from './event-archive/index.js';

export const FUNCTIONS = {
  'schedule-sync': scheduleSyncFromEnv,
  'request-checkpoint': requestCheckpointFromEnv,
  'store-artifact': storeArtifactFromEnv,
  'build-image': buildImageFromEnv,
  'restore-pod': restorePodFromEnv,
  'event-archive': eventArchiveFromEnv,
} satisfies Record<string, (env: NodeJS.ProcessEnv) => Promise<AnyHandler>>;

export type FunctionName = keyof typeof FUNCTIONS;

export function isFunctionName(name: string): name is FunctionName {
  return Object.hasOwn(FUNCTIONS, name);
}
