// Checks a checkpoint schedule annotation the way Knative's PingSource webhook
// will check the PingSource made from it (ping-validation.ts): five cron fields
// or six with seconds first, @yearly…@hourly but no @every, a CRON_TZ= prefix
// or the time zone annotation. On top, kcr refuses an empty annotation (the
// PingSource would default it to every minute) and a schedule that never fires.
import { ANNOTATIONS } from '../core/kubernetes/annotations.js';
import { nextTime } from '../core/knative/cron.js';
import { checkPingSchedule, fieldErrorsText, type FieldError } from '../core/knative/ping-validation.js';

type ScheduleCheck = { ok: true; nextRuns: Date[] } | { ok: false; problem: string };

// Month and weekday names hold the letters of Quartz's L, W and H (JUL, WED, THU): dropped before looking for them.
const NAMES = /JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC|SUN|MON|TUE|WED|THU|FRI|SAT/g;
const QUARTZ = [
  ['L', '"L" (last)'],
  ['W', '"W" (nearest weekday)'],
  ['#', '"#" (nth weekday)'],
  ['H', '"H" (hash)'],
] as const;

export function checkSchedule(schedule: string, timezone?: string, from: Date = new Date()): ScheduleCheck {
  const expr = schedule.trim();
  if (expr === '') return { ok: false, problem: 'the schedule is empty (a PingSource would default it to every minute)' };
  const check = checkPingSchedule(expr, timezone);
  if (!check.ok) {
    const why = hint(expr, timezone, check.errors);
    return { ok: false, problem: `Knative's PingSource webhook would refuse it: ${fieldErrorsText(check.errors).replaceAll('\n', '; ')}${why ? ` (${why})` : ''}` };
  }
  const first = nextTime(check.schedule, from);
  const second = first && nextTime(check.schedule, first);
  if (!first || !second) return { ok: false, problem: `${JSON.stringify(expr)} never fires: no time in the next five years matches it` };
  return { ok: true, nextRuns: [first, second] };
}

/** What the user most likely meant, for the refusals that have a usual cause. */
function hint(expr: string, timezone: string | undefined, errors: FieldError[]): string | undefined {
  if (errors.some((e) => e.path === 'spec.timezone')) return `${ANNOTATIONS.timezone} or a CRON_TZ= prefix must name an IANA time zone such as Europe/Paris, in its exact case`;
  if (timezone && /^(CRON_)?TZ=/.test(expr)) return `the time zone is given twice: drop the prefix or ${ANNOTATIONS.timezone}`;
  if (expr.includes('@every')) return 'for an interval write a cron expression such as "*/5 * * * *"';
  if (expr.startsWith('@')) return 'the descriptors are @yearly, @annually, @monthly, @weekly, @daily, @midnight and @hourly, in lower case';
  const fields = expr.split(/\s+/).filter((f) => !f.includes('='));
  if (fields.length === 7) return 'a seventh field (year) is Quartz syntax';
  for (const field of fields) {
    const bare = field.toUpperCase().replace(NAMES, '');
    for (const [token, what] of QUARTZ) if (bare.includes(token)) return `${what} is Quartz or Jenkins syntax, not cron's`;
  }
  return undefined;
}
