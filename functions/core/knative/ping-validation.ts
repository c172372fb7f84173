// What Knative's admission webhooks do to a PingSource's spec.schedule and
// spec.timezone (knative/eventing pkg/apis/sources/v1/ping_defaults.go and
// ping_validation.go, since knative/eventing#7394, Eventing 1.13):
//   - an empty schedule defaults to "* * * * *";
//   - a schedule containing "@every" is refused ("unsupported descriptor @every");
//   - "CRON_TZ=<spec.timezone> " is prefixed when spec.timezone is set, and the
//     result parsed by robfig/cron with SecondOptional | Minute | Hour | Dom |
//     Month | Dow | Descriptor: five fields, or six with seconds first;
//   - a parse error starting "provided bad location" is reported on spec.timezone,
//     any other on spec.schedule, as apis.ErrInvalidValue ("invalid value: …").
// schedule-sync, the simulated API server and the local ping scheduler all go by it.
import { CronSyntaxError, parseCron, type CronSchedule } from './cron.js';

export const PING_DEFAULT_SCHEDULE = '* * * * *';

/** One entry of knative.dev/pkg's apis.FieldError. */
export interface FieldError {
  message: string;
  path: 'spec.schedule' | 'spec.timezone';
}

export type PingScheduleCheck = { ok: true; schedule: CronSchedule } | { ok: false; errors: FieldError[] };

/** The webhook's verdict on a (defaulted) schedule and time zone, and what the adapter then runs. */
export function checkPingSchedule(schedule: string, timezone?: string): PingScheduleCheck {
  const errors: FieldError[] = [];
  if (schedule.includes('@every')) errors.push({ message: 'invalid value: unsupported descriptor @every', path: 'spec.schedule' });
  let parsed: CronSchedule | undefined;
  try {
    parsed = parseCron(timezone ? `CRON_TZ=${timezone} ${schedule}` : schedule);
  } catch (err) {
    if (!(err instanceof CronSyntaxError)) throw err;
    errors.push({ message: `invalid value: ${err.message}`, path: err.message.startsWith('provided bad location') ? 'spec.timezone' : 'spec.schedule' });
  }
  return parsed && errors.length === 0 ? { ok: true, schedule: parsed } : { ok: false, errors };
}

/** apis.FieldError.Error(): "<message>: <paths>" per distinct message, sorted by message, one per line. */
export function fieldErrorsText(errors: readonly FieldError[]): string {
  const byMessage = new Map<string, Set<string>>();
  for (const e of errors) byMessage.set(e.message, (byMessage.get(e.message) ?? new Set()).add(e.path));
  return [...byMessage]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([message, paths]) => `${message}: ${[...paths].sort().join(', ')}`)
    .join('\n');
}
