// What the parts of the object API under simulator/api/ share with ObjectApi (simulator/api.ts):
// the store and registry, whether the server has stopped, a way to wake the garbage collector,
// and the options of a delete (garbage collection and pod deletion both take them).

import type { ResourceRegistry } from '../resources.js';
import type { Store } from '../store.js';

export interface ApiContext {
  readonly store: Store;
  readonly registry: ResourceRegistry;
  /** True once ObjectApi.stop() ran: deferred work does nothing after it. */
  isStopped(): boolean;
  scheduleGc(): void;
}

export interface DeleteOptions {
  propagationPolicy?: 'Background' | 'Foreground' | 'Orphan';
  gracePeriodSeconds?: number;
  preconditions?: { uid?: string; resourceVersion?: string };
  dryRun?: boolean;
}
