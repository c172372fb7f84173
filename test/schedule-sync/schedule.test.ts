import { describe, expect, it } from 'vitest';
import { checkSchedule } from '../../functions/schedule-sync/schedule.js';
import { checkPingSchedule, fieldErrorsText } from '../../functions/core/knative/ping-validation.js';
import { nextTime, parseCron } from '../../functions/core/knative/cron.js';
import { pingSourceName } from '../../functions/schedule-sync/ping-source.js';
import { ACCEPTED, REFUSED } from './webhook-cases.js';

const label = (c: { schedule: string; timezone?: string; why: string }) => `${JSON.stringify(c.schedule)}${c.timezone ? ` in ${c.timezone}` : ''} (${c.why})`;

describe("checkpoint schedules: exactly what Knative's PingSource webhook accepts", () => {
  it.each(ACCEPTED.map((c) => [label(c), c] as const))('accepts %s', (_, c) => {
    expect(checkPingSchedule(c.schedule, c.timezone).ok).toBe(true);
    expect(checkSchedule(c.schedule, c.timezone, new Date('2026-11-23T18:00:00Z'))).toMatchObject({ ok: true });
  });

  it.each(REFUSED.map((c) => [label(c), c] as const))("refuses %s with the webhook's error", (_, c) => {
    const webhook = checkPingSchedule(c.schedule, c.timezone);
    expect(webhook.ok).toBe(false);
    if (!webhook.ok) expect(fieldErrorsText(webhook.errors)).toBe(c.error);
    const kcr = checkSchedule(c.schedule, c.timezone);
    expect(kcr.ok).toBe(false);
    if (!kcr.ok) expect(kcr.problem).toContain(c.error.replaceAll('\n', '; '));
  });

  it('also refuses, on its own, an empty annotation and a schedule that never fires, which a PingSource would take', () => {
    expect(checkPingSchedule('0 0 30 2 *').ok).toBe(true);
    expect(checkSchedule('0 0 30 2 *')).toEqual({ ok: false, problem: '"0 0 30 2 *" never fires: no time in the next five years matches it' });
    expect(checkSchedule('  ')).toMatchObject({ ok: false, problem: expect.stringMatching(/empty/) });
  });

  it.each([
    ['0 0 L * *', undefined, /"L" \(last\) is Quartz/],
    ['0 0 * * 5#3', undefined, /"#" \(nth weekday\)/],
    ['0 0 15W * *', undefined, /"W" \(nearest weekday\)/],
    ['H * * * *', undefined, /"H" \(hash\)/],
    ['0 0 12 * * ? 2027', undefined, /seventh field \(year\)/],
    ['@every 5m', undefined, /write a cron expression such as "\*\/5 \* \* \* \*"/],
    ['@Daily', undefined, /@yearly, @annually, @monthly, @weekly, @daily, @midnight and @hourly, in lower case/],
    ['0 9 * * *', 'Mars/Olympus', /kcr.io\/checkpoint-timezone or a CRON_TZ= prefix must name an IANA time zone/],
    ['CRON_TZ=UTC 0 9 * * *', 'Asia/Tokyo', /the time zone is given twice/],
  ])('explains the usual cause of a refusal of %s', (schedule, timezone, hint) => {
    const r = checkSchedule(schedule, timezone);
    expect(!r.ok && r.problem).toMatch(hint);
  });
});

describe('when a schedule fires (robfig/cron SpecSchedule.Next)', () => {
  const next = (spec: string, after: string) => nextTime(parseCron(spec), new Date(after))?.toISOString();
  const runs = (spec: string, after: string, n: number) => {
    const out: string[] = [];
    let t = new Date(after);
    for (let i = 0; i < n; i++) {
      t = nextTime(parseCron(spec), t)!;
      out.push(t.toISOString());
    }
    return out;
  };

  it('reads five fields with second 0, six with seconds first, strictly after the given time', () => {
    expect(next('*/5 * * * *', '2026-11-30T11:07:13.500Z')).toBe('2026-11-30T11:10:00.000Z');
    expect(next('*/10 * * * * *', '2026-11-30T11:07:13.500Z')).toBe('2026-11-30T11:07:20.000Z');
    expect(next('*/10 * * * * *', '2026-11-30T11:07:20.000Z')).toBe('2026-11-30T11:07:30.000Z');
  });

  it("runs without a zone in UTC (the adapter's), with one in that zone", () => {
    expect(next('0 9 * * *', '2025-01-15T12:00:00Z')).toBe('2025-01-16T09:00:00.000Z');
    expect(next('CRON_TZ=Asia/Tokyo 0 9 * * *', '2025-01-15T12:00:00Z')).toBe('2025-01-16T00:00:00.000Z');
    const r = checkSchedule('0 9 * * *', 'Asia/Tokyo', new Date('2026-11-23T00:30:00Z'));
    expect(r.ok && r.nextRuns.map((d) => d.toISOString())).toEqual(['2026-11-24T00:00:00.000Z', '2026-11-25T00:00:00.000Z']);
  });

  it('skips a wall time the spring change removes and fires twice on one the autumn change repeats, as robfig does', () => {
    expect(runs('CRON_TZ=Europe/Paris 30 2 * * *', '2026-03-28T00:00:00Z', 2)).toEqual(['2026-03-28T01:30:00.000Z', '2026-03-30T00:30:00.000Z']);
    expect(runs('CRON_TZ=Europe/Paris 30 2 * * *', '2026-10-24T12:00:00Z', 2)).toEqual(['2026-10-25T00:30:00.000Z', '2026-10-25T01:30:00.000Z']);
  });

  it('matches day of month OR weekday when both are restricted, AND when one is * (a step > 1 is not *)', () => {
    // 2026-02-13 is a Friday; 2026-02-06 the Friday before.
    expect(runs('0 0 13 * FRI', '2026-02-01T00:00:00Z', 3)).toEqual(['2026-02-06T00:00:00.000Z', '2026-02-13T00:00:00.000Z', '2026-02-20T00:00:00.000Z']);
    expect(runs('0 0 * * FRI', '2026-02-01T00:00:00Z', 2)).toEqual(['2026-02-06T00:00:00.000Z', '2026-02-13T00:00:00.000Z']);
    expect(runs('0 0 1 * */2', '2026-02-01T00:00:00Z', 2)).toEqual(['2026-02-03T00:00:00.000Z', '2026-02-05T00:00:00.000Z']);
  });

  it('finds leap days and gives up after five years, as Go returns the zero time', () => {
    expect(next('@yearly', '2026-11-30T00:00:00Z')).toBe('2027-01-01T00:00:00.000Z');
    expect(next('0 0 29 2 *', '2026-11-30T00:00:00Z')).toBe('2028-02-29T00:00:00.000Z');
    expect(next('0 0 30 2 *', '2026-11-30T00:00:00Z')).toBeUndefined();
  });
});

describe('PingSource naming', () => {
  it('is deterministic and fits 63 characters', () => {
    expect(pingSourceName('Deployment', 'counter')).toBe('kcr-deployment-counter');
    const long = pingSourceName('StatefulSet', 'a'.repeat(80));
    expect(long).toHaveLength(63);
    expect(long).toBe(pingSourceName('StatefulSet', 'a'.repeat(80)));
    expect(long).not.toBe(pingSourceName('StatefulSet', `${'a'.repeat(79)}b`));
  });
});
