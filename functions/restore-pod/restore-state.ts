// restore-pod's memory of each container lives on the pod itself, in
// annotations, so the function stays stateless and every decision is made
// from what the API server says now.
import { createHash } from 'node:crypto';
import type { V1Pod } from '@kubernetes/client-node';
import { z } from 'zod';

export const RestoreState = z.object({
  /** Checkpoints tried in the current cycle, newest first. */
  tried: z.array(z.string()),
  /** The checkpoint the container runs from now (absent after a cold start). */
  current: z.string().optional(),
  restoredAt: z.string(),
  /** Restart count that our own patch accounts for: only a higher count is a new failure. */
  seenRestarts: z.number().int(),
  /** The image the workload asked for, put back on a cold start. */
  originalImage: z.string(),
  gaveUpAt: z.string().optional(),
  /** The pod whose checkpoints a replacement pod inherited. */
  sourcePod: z.string().optional(),
});
export type RestoreState = z.infer<typeof RestoreState>;

/** Annotation names hold at most 63 characters after the prefix: long container names are hashed. */
function keyFor(prefix: string, container: string): string {
  const name = `${prefix}${container}`;
  if (name.length <= 63) return `kcr.io/${name}`;
  return `kcr.io/${name.slice(0, 54)}-${createHash('sha256').update(container).digest('hex').slice(0, 8)}`;
}

export const restoredFromKey = (container: string) => keyFor('restored-from-', container);
export const restoreStateKey = (container: string) => keyFor('restore-state-', container);

export function readRestoreState(pod: V1Pod, container: string): RestoreState | undefined {
  const raw = pod.metadata?.annotations?.[restoreStateKey(container)];
  if (!raw) return undefined;
  try {
    const r = RestoreState.safeParse(JSON.parse(raw));
    return r.success ? r.data : undefined;
  } catch {
    return undefined;
  }
}

export function containerImage(pod: V1Pod, container: string): string | undefined {
  return pod.spec?.containers.find((c) => c.name === container)?.image;
}

/** Whether the container has started in this pod (a patch of its image then restarts it once). */
export function hasStarted(pod: V1Pod, container: string): boolean {
  const cs = pod.status?.containerStatuses?.find((s) => s.name === container);
  return !!(cs && (cs.state?.running || cs.state?.terminated || cs.lastState?.terminated || cs.restartCount > 0));
}
