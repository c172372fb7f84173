// The ping scheduler's pure parts: the spec check, the status it writes back,
// the parsing of a watched object and the timer delay of a tick.
import { describe, expect, it } from 'vitest';
import { checkPingSpec } from '../../local/ping-event.js';
import { pingSourceStatus } from '../../local/ping-status.js';
import { timerDelayMs } from '../../local/ping-ticks.js';
import { parsePingSource, pingSourceKey } from '../../local/ping-watch.js';

const object = (spec: Record<string, unknown>, metadata: Record<string, unknown> = { name: 'p', namespace: 'kcr' }) => ({
  apiVersion: 'sources.knative.dev/v1',
  kind: 'PingSource',
  metadata,
  spec: { sink: { uri: 'http://127.0.0.1:1/' }, ...spec },
});

describe('ping scheduler parts', () => {
  it('parses a watched PingSource, defaulting its namespace, or says why not', () => {
    const parsed = parsePingSource(object({ schedule: '* * * * *' }, { name: 'p' }));
    expect(parsed.ok && parsed.source.metadata.namespace).toBe('default');
    expect(pingSourceKey({ metadata: { name: 'p' } })).toBe('default/p');
    const bad = parsePingSource({ ...object({}), kind: 'Other' });
    expect(bad).toMatchObject({ ok: false, namespace: 'kcr', name: 'p' });
  });

  it('checks the whole spec before scheduling', () => {
    const source = (spec: Record<string, unknown>) => {
      const parsed = parsePingSource(object(spec));
      if (!parsed.ok) throw new Error(parsed.reason);
      return parsed.source;
    };
    expect(checkPingSpec(source({ schedule: '*/5 * * * *' }))).toBeDefined();
    expect(() => checkPingSpec(source({ data: 'a', dataBase64: 'YQ==' }))).toThrow(/mutually exclusive/);
    expect(() => checkPingSpec(source({ contentType: 'application/json', data: '[1]' }))).toThrow(/JSON object/);
    expect(() => checkPingSpec(source({ schedule: 'not a schedule' }))).toThrow(/webhook refuses/);
  });

  it('builds Ready and SinkProvided conditions', () => {
    const parsed = parsePingSource(object({}));
    if (!parsed.ok) throw new Error(parsed.reason);
    const now = new Date('2026-01-02T03:04:05.678Z');
    expect(pingSourceStatus(parsed.source, true, '', '', 'http://sink/', now)).toEqual({
      observedGeneration: 1,
      conditions: [
        { type: 'Ready', status: 'True', lastTransitionTime: '2026-01-02T03:04:05Z' },
        { type: 'SinkProvided', status: 'True', lastTransitionTime: '2026-01-02T03:04:05Z' },
      ],
      sinkUri: 'http://sink/',
    });
    const notFound = pingSourceStatus(parsed.source, false, 'NotFound', 'no sink', undefined, now);
    expect(notFound.sinkUri).toBeUndefined();
    expect(notFound.conditions[1]).toMatchObject({ status: 'False', reason: 'NotFound', message: 'no sink' });
  });

  it('waits until the tick, never negative, never past the timer limit', () => {
    expect(timerDelayMs(new Date(5_000), 1_000)).toBe(4_000);
    expect(timerDelayMs(new Date(1_000), 5_000)).toBe(0);
    expect(timerDelayMs(new Date(2 ** 40), 0)).toBe(2 ** 31 - 1);
  });
});
