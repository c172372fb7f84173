import { describe, expect, it } from 'vitest';
import { checkSchedule } from '../../functions/schedule-sync/schedule.js';
import { pingSourceName } from '../../functions/schedule-sync/ping-source.js';

describe('checkpoint schedule validation (PingSource rules)', () => {
  it.each([
    ['*/5 * * * *'],
    ['*/10 * * * * *'],
    ['0 3 * * MON-FRI'],
    ['0 0 1 JUL *'],
    ['0 12 * * THU'],
    ['@hourly'],
    ['0 0 ? * *'],
  ])('accepts %s', (schedule) => {
    const r = checkSchedule(schedule, undefined, new Date('2026-11-23T18:00:00Z'));
    expect(r.ok).toBe(true);
  });

  it.each([
    ['* * * *', /4 fields/],
    ['* * * * * * *', /7 fields/],
    ['0 0 L * *', /"L" \(last\)/],
    ['0 0 * * 5#3', /"#" \(nth weekday\)/],
    ['H * * * *', /"H" \(hash\)/],
    ['@every 5m', /@every/],
    ['@fortnightly', /unknown schedule macro/],
    ['61 * * * *', /invalid schedule .*61/],
    ['', /empty/],
    ['CRON_TZ=UTC * * * * *', /time zone prefix/],
  ])('rejects %s, naming the problem', (schedule, problem) => {
    const r = checkSchedule(schedule);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problem).toMatch(problem);
  });

  it('computes runs in the given time zone and rejects unknown zones', () => {
    const r = checkSchedule('0 9 * * *', 'Asia/Tokyo', new Date('2026-11-23T00:30:00Z'));
    expect(r.ok && r.nextRuns[0]?.toISOString()).toBe('2026-11-24T00:00:00.000Z');
    const bad = checkSchedule('0 9 * * *', 'Mars/Olympus');
    expect(!bad.ok && bad.problem).toMatch(/unknown time zone "Mars\/Olympus"/);
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
