// The local broker's bookkeeping of deliveries in flight: counts them (retry
// waits included), resolves `idle()` waiters when none is left, and runs the
// backoff waits on timers that closing the broker cancels (the wait then
// resolves false and the delivery is reported as dropped).
import type { Sleep } from './broker-delivery.js';

export interface DeliveryTasks {
  /** Counts `work` in flight until it settles; an unexpected rejection is logged. */
  track(work: Promise<void>): void;
  inFlight(): number;
  /** Resolves when nothing is in flight. */
  idle(): Promise<void>;
  /** Resolves true after `ms`, false at once or on `abandon()` once abandoned. */
  sleep: Sleep;
  /** Cancels every wait, now and later. */
  abandon(): void;
}

export function createDeliveryTasks(): DeliveryTasks {
  const timers = new Map<NodeJS.Timeout, () => void>();
  let pending = 0;
  let idleWaiters: (() => void)[] = [];
  let abandoned = false;
  return {
    track(work) {
      pending++;
      void work
        .catch((err: unknown) => console.error(`local broker: delivery task failed unexpectedly: ${(err as Error).stack ?? String(err)}`))
        .finally(() => {
          pending--;
          if (pending === 0) {
            const waiters = idleWaiters;
            idleWaiters = [];
            for (const w of waiters) w();
          }
        });
    },
    inFlight: () => pending,
    idle: () => (pending === 0 ? Promise.resolve() : new Promise<void>((resolve) => idleWaiters.push(resolve))),
    sleep: (ms) =>
      new Promise((resolve) => {
        if (abandoned) return resolve(false);
        const timer = setTimeout(() => {
          timers.delete(timer);
          resolve(true);
        }, ms);
        timers.set(timer, () => resolve(false));
      }),
    abandon() {
      abandoned = true;
      for (const [timer, cancel] of timers) {
        clearTimeout(timer);
        cancel();
      }
      timers.clear();
    },
  };
}
