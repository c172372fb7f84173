// Every kcr function by its Knative Service name, built from the environment:
// the one list the container image's entry point and the local mode share.
// Each entry imports its function only when called, so a function's process
// loads its own dependencies and no other's (client-node alone is ~75 MiB of RSS).
import type { AnyHandler } from './core/runtime/server.js';

export const FUNCTIONS = {
  'schedule-sync': async (env) => (await import('./schedule-sync/index.js')).scheduleSyncFromEnv(env),
  'request-checkpoint': async (env) => (await import('./request-checkpoint/index.js')).requestCheckpointFromEnv(env),
  'store-artifact': async (env) => (await import('./store-artifact/index.js')).storeArtifactFromEnv(env),
  'build-image': async (env) => (await import('./build-image/index.js')).buildImageFromEnv(env),
  'restore-pod': async (env) => (await import('./restore-pod/index.js')).restorePodFromEnv(env),
  'event-archive': async (env) => (await import('./event-archive/index.js')).eventArchiveFromEnv(env),
} satisfies Record<string, (env: NodeJS.ProcessEnv) => Promise<AnyHandler>>;

export type FunctionName = keyof typeof FUNCTIONS;

export function isFunctionName(name: string): name is FunctionName {
  return Object.hasOwn(FUNCTIONS, name);
}
