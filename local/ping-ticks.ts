// The ping scheduler's timers: a timer that fires at a PingSource's next tick
// (which functions/core/knative/cron.ts's nextTime computes). Node caps a timer at 2^31-1 ms and may
// wake a timer early, so the wait is clamped and re-armed until the tick is due.
const MAX_TIMER_MS = 2 ** 31 - 1;

/** How long one timer waits for `due` at `now`: never negative, never past Node's timer limit. */
export function timerDelayMs(due: Date, now: number): number {
  return Math.max(0, Math.min(due.getTime() - now, MAX_TIMER_MS));
}

/**
 * Calls `onDue` once `due` has come, unless `live()` is false by then; each
 * (re-)armed timer is handed to `hold` so that its owner can clear it. The
 * timers do not keep the process alive.
 */
export function waitUntil(due: Date, live: () => boolean, onDue: () => void, hold: (timer: NodeJS.Timeout) => void): void {
  const wait = (): void => {
    const timer = setTimeout(
      () => {
        if (!live()) return;
        if (due.getTime() > Date.now()) return wait();
        onDue();
      },
      timerDelayMs(due, Date.now()),
    );
    hold(timer);
    timer.unref?.();
  };
  wait();
}
