// Builds schedule-sync from the environment.
import { Kubernetes } from '../core/kubernetes/kubernetes.js';
import { readEnv } from '../core/runtime/config.js';
import type { FunctionHandler } from '../core/runtime/handler.js';
import { createScheduleSync, type ScheduleSyncDeps } from './handler.js';

function scheduleSyncDepsFromEnv(env: NodeJS.ProcessEnv = process.env): ScheduleSyncDeps {
  const c = readEnv(['KUBECONFIG', 'KCR_BROKER_URL', 'K_SINK'], env);
  const sinkUri = c.KCR_BROKER_URL ?? c.K_SINK;
  if (!sinkUri) throw new Error('invalid configuration: KCR_BROKER_URL=(unset) and K_SINK=(unset): schedule-sync needs the broker URL for the PingSources it creates');
  return { kube: Kubernetes.fromEnvironment(c.KUBECONFIG), sinkUri };
}

export async function scheduleSyncFromEnv(env: NodeJS.ProcessEnv = process.env): Promise<FunctionHandler> {
  return createScheduleSync(scheduleSyncDepsFromEnv(env)) as FunctionHandler;
}
