// Checks a checkpoint schedule the way the PingSource webhook will: five cron
// fields, or six with seconds first; no `L`, `#`, `H` or `@every`. cron-parser
// does the parsing; it is more permissive (it takes four fields, L, # and H),
// so those rules are checked here first.
import { CronExpressionParser } from 'cron-parser';

export type ScheduleCheck = { ok: true; nextRuns: Date[] } | { ok: false; problem: string };

const NAMES = /JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC|SUN|MON|TUE|WED|THU|FRI|SAT/g;
const MACROS = new Set(['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly']);

export function checkSchedule(schedule: string, timezone?: string, from: Date = new Date()): ScheduleCheck {
  const expr = schedule.trim();
  if (expr === '') return { ok: false, problem: 'the schedule is empty' };
  if (timezone !== undefined && !isTimeZone(timezone)) return { ok: false, problem: `unknown time zone ${JSON.stringify(timezone)} (use an IANA name such as Europe/Paris)` };
  if (expr.startsWith('@')) {
    if (expr.startsWith('@every')) return { ok: false, problem: `"@every" is not accepted by PingSource; write a cron expression such as "*/5 * * * *"` };
    if (!MACROS.has(expr)) return { ok: false, problem: `unknown schedule macro ${JSON.stringify(expr)}` };
  } else {
    if (/^(CRON_)?TZ=/.test(expr)) return { ok: false, problem: `a time zone prefix is not accepted in the schedule; use the kcr.io/checkpoint-timezone annotation` };
    const fields = expr.split(/\s+/);
    if (fields.length !== 5 && fields.length !== 6) {
      return { ok: false, problem: `${fields.length} fields in ${JSON.stringify(expr)}: a schedule has 5 fields (minute hour day month weekday), or 6 with seconds first` };
    }
    for (const [i, field] of fields.entries()) {
      // Month and weekday names (JUL, THU) hold the letters L and H: drop them first.
      const bare = field.toUpperCase().replace(NAMES, '');
      for (const [token, why] of [['L', '"L" (last)'], ['#', '"#" (nth weekday)'], ['H', '"H" (hash)']] as const) {
        if (bare.includes(token)) return { ok: false, problem: `field ${i + 1} (${JSON.stringify(field)}) uses ${why}, which PingSource does not accept` };
      }
    }
  }
  try {
    const parsed = CronExpressionParser.parse(expr, { currentDate: from, ...(timezone ? { tz: timezone } : {}) });
    return { ok: true, nextRuns: [parsed.next().toDate(), parsed.next().toDate()] };
  } catch (err) {
    return { ok: false, problem: `invalid schedule ${JSON.stringify(expr)}: ${err instanceof Error ? err.message : String(err)}` };
  }
}

function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}
