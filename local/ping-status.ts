// The status the ping scheduler writes back to a PingSource (Ready,
// SinkProvided, sinkUri, observedGeneration), as the adapter's reconciler
// reports it: built purely by pingSourceStatus, patched by writePingStatus.
import type { CustomObjectsApi } from '@kubernetes/client-node';
import type { PingSourceResource } from './sources.js';

export interface PingStatusCondition {
  type: string;
  status: 'True' | 'False';
  lastTransitionTime: string;
  reason?: string;
  message?: string;
}

export interface PingSourceStatus {
  observedGeneration: number;
  conditions: PingStatusCondition[];
  sinkUri?: string;
}

/** The status of a PingSource that is (not) ready for `reason`/`message`, with its sink when resolved. */
export function pingSourceStatus(source: PingSourceResource, ready: boolean, reason: string, message: string, sinkUri: string | undefined, now: Date = new Date()): PingSourceStatus {
  const time = now.toISOString().replace(/\.\d+Z$/, 'Z');
  const condition = (type: string, ok: boolean): PingStatusCondition => ({ type, status: ok ? 'True' : 'False', lastTransitionTime: time, ...(ok ? {} : { reason, message }) });
  return {
    observedGeneration: source.metadata.generation ?? 1,
    conditions: [condition('Ready', ready), condition('SinkProvided', sinkUri !== undefined)],
    ...(sinkUri ? { sinkUri } : {}),
  };
}

/** Patches the status; a failure (the source deleted meanwhile, say) goes to `onError`, as status is informative only. */
export async function writePingStatus(customApi: CustomObjectsApi, source: PingSourceResource, status: PingSourceStatus, onError: (message: string) => void): Promise<void> {
  try {
    await customApi.patchNamespacedCustomObjectStatus({
      group: 'sources.knative.dev',
      version: 'v1',
      plural: 'pingsources',
      namespace: source.metadata.namespace!,
      name: source.metadata.name,
      body: [{ op: 'add', path: '/status', value: status }],
    });
  } catch (err) {
    onError(`updating status of PingSource ${source.metadata.namespace}/${source.metadata.name}: ${(err as Error).message}`);
  }
}
