// Against the simulated cluster (real REST + watch over HTTP, client-node).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubernetesObjectApi, type KubernetesObject } from '@kubernetes/client-node';
import { startSimulatedCluster, type SimulatedCluster } from '../../simulator/index.js';
import { dataOf } from '../../functions/core/runtime/cloudevents-http.js';
import { makePingEvent, pingSchedule, startPingScheduler, type PingObservation, type PingScheduler } from '../../local/ping-scheduler.js';
import { nextTime } from '../../functions/core/knative/cron.js';
import { ACCEPTED, REFUSED } from '../schedule-sync/webhook-cases.js';
import { apiError } from '../simulator/helpers.js';
import { startSubscriber, type Subscriber } from './support.js';
import { until } from '../support/wait.js';

let cluster: SimulatedCluster;
let api: KubernetesObjectApi;
let sink: Subscriber;
let scheduler: PingScheduler;
const seen: PingObservation[] = [];

const pingSource = (name: string, spec: Record<string, unknown>): KubernetesObject =>
  ({ apiVersion: 'sources.knative.dev/v1', kind: 'PingSource', metadata: { name, namespace: 'default' }, spec }) as KubernetesObject;

const fromSource = (name: string) => sink.received.filter((r) => r.event.attributes.source === `/apis/v1/namespaces/default/pingsources/${name}`);

const waitFor = (what: string, check: () => boolean) => until(what, check, { timeout: 8000, interval: 25 });

beforeAll(async () => {
  cluster = await startSimulatedCluster();
  api = KubernetesObjectApi.makeApiClient(cluster.kubeConfig);
  sink = await startSubscriber();
  // Exists before the scheduler starts: must be picked up by the initial list.
  await api.create(pingSource('preexisting', { schedule: '0 0 1 1 *', sink: { ref: { apiVersion: 'eventing.knative.dev/v1', kind: 'Broker', name: 'kcr', namespace: 'kcr-system' } } }));
  scheduler = startPingScheduler({
    kubeConfig: cluster.kubeConfig,
    resolveSink: (ref) => (ref.kind === 'Broker' ? `${sink.url}broker` : undefined),
    retryDelayMs: 100,
  });
  scheduler.onPing((o) => seen.push(o));
  await scheduler.synced;
});

afterAll(async () => {
  await scheduler?.stop();
  await sink?.close();
  await cluster?.stop();
});

describe('ping scheduler against the simulated cluster', () => {
  it('schedules PingSources that existed before it started', () => {
    expect(scheduler.scheduled()).toContainEqual(expect.objectContaining({ namespace: 'default', name: 'preexisting', schedule: '0 0 1 1 *' }));
  });

  it('fires a 6-field schedule every second with the attributes a real PingSource sends, then stops once deleted', async () => {
    await api.create(
      pingSource('every-second', {
        schedule: '* * * * * *',
        contentType: 'application/json',
        data: '{"namespace": "demo", "kind": "Deployment", "name": "counter"}',
        ceOverrides: { extensions: { kcrresync: 'false' } },
        sink: { uri: `${sink.url}direct` },
      }),
    );
    await waitFor('two pings', () => fromSource('every-second').length >= 2);
    const [first, second] = fromSource('every-second');
    expect(first!.path).toBe('/direct');
    expect(first!.event.attributes).toMatchObject({
      specversion: '1.0',
      type: 'dev.knative.sources.ping',
      source: '/apis/v1/namespaces/default/pingsources/every-second',
      datacontenttype: 'application/json',
      kcrresync: 'false',
    });
    expect(first!.event.attributes.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(second!.event.attributes.id).not.toBe(first!.event.attributes.id);
    // Go's encoding/json re-marshals the data: compact, keys sorted.
    expect(first!.event.data!.toString()).toBe('{"kind":"Deployment","name":"counter","namespace":"demo"}');
    const gap = Date.parse(second!.event.attributes.time!) - Date.parse(first!.event.attributes.time!);
    expect(gap).toBeGreaterThanOrEqual(500);
    expect(gap).toBeLessThan(2500);

    await waitFor('fired observation', () => seen.some((o) => o.kind === 'fired' && o.name === 'every-second'));
    const status = (
      (await api.read({ apiVersion: 'sources.knative.dev/v1', kind: 'PingSource', metadata: { name: 'every-second', namespace: 'default' } })) as {
        status?: { sinkUri?: string; conditions?: { type: string; status: string }[] };
      }
    ).status;
    expect(status?.sinkUri).toBe(`${sink.url}direct`);
    expect(status?.conditions).toContainEqual(expect.objectContaining({ type: 'Ready', status: 'True' }));

    let unscheduledAt = 0;
    const stopWatching = scheduler.onPing((o) => {
      if (o.kind === 'unscheduled' && o.name === 'every-second') unscheduledAt = Date.now();
    });
    await api.delete(pingSource('every-second', {}));
    await waitFor('unscheduled', () => unscheduledAt > 0);
    stopWatching();
    expect(scheduler.scheduled().map((s) => s.name)).not.toContain('every-second');
    // A send begun before the delete may still land; none begins after it. A witness on the
    // same schedule fires on the ticks every-second would have; its second ping comes a tick
    // after its first, by when a send of every-second on the first would have landed.
    await api.create(pingSource('witness', { schedule: '* * * * * *', sink: { uri: `${sink.url}witness` } }));
    await waitFor('two witness pings', () => fromSource('witness').length >= 2);
    await api.delete(pingSource('witness', {}));
    expect(fromSource('every-second').filter((r) => Date.parse(r.event.attributes.time!) > unscheduledAt)).toEqual([]);
    expect(seen.filter((o) => o.kind === 'fired' && o.name === 'every-second' && Date.parse(o.event.attributes.time!) > unscheduledAt)).toEqual([]);
  });

  it('reschedules on update and sends the new data', async () => {
    await api.create(pingSource('changing', { schedule: '0 0 1 1 *', contentType: 'text/plain', data: 'old', sink: { uri: `${sink.url}changing` } }));
    await waitFor('scheduled', () => scheduler.scheduled().some((s) => s.name === 'changing'));
    await api.patch(pingSource('changing', { schedule: '*/1 * * * * *', data: 'new' }), undefined, undefined, undefined, undefined, 'application/merge-patch+json' as never);
    await waitFor('a ping after the update', () => fromSource('changing').length >= 1);
    const got = fromSource('changing')[0]!.event;
    expect(got.data!.toString()).toBe('new');
    expect(got.attributes.datacontenttype).toBe('text/plain');
    await api.delete(pingSource('changing', {}));
  });

  it('fireNow sends immediately through the sink ref', async () => {
    const event = await scheduler.fireNow('default', 'preexisting');
    const arrived = fromSource('preexisting');
    expect(arrived).toHaveLength(1);
    expect(arrived[0]!.path).toBe('/broker');
    expect(arrived[0]!.event.attributes.id).toBe(event.attributes.id);
    await expect(scheduler.fireNow('default', 'nope')).rejects.toThrow(/PingSource default\/nope is not known/);
  });

  it('never sees a schedule the webhook refuses: the simulated API server answers the create with its 400', async () => {
    const refused = await apiError(() => api.create(pingSource('refused', { schedule: '0 0 L * *', sink: { uri: `${sink.url}refused` } })));
    expect(refused.code).toBe(400);
    expect(refused.body.message).toMatch(/^admission webhook "validation.webhook.eventing.knative.dev" denied the request: validation failed: invalid value: failed to parse int from L/);
    expect(scheduler.scheduled().map((s) => s.name)).not.toContain('refused');
  });

  it('leaves unscheduled a schedule that matches no time, as robfig/cron does', async () => {
    await api.create(pingSource('february-30', { schedule: '0 0 30 2 *', sink: { uri: `${sink.url}never` } }));
    await waitFor('invalid observation', () => seen.some((o) => o.kind === 'invalid' && o.name === 'february-30'));
    expect(seen.find((o) => o.kind === 'invalid' && o.name === 'february-30')).toMatchObject({ reason: 'schedule "0 0 30 2 *" matches no time in the next five years' });
    expect(scheduler.scheduled().map((s) => s.name)).not.toContain('february-30');
    await api.delete(pingSource('february-30', {}));
  });

  it('reports an invalid spec on the PingSource status and does not schedule it', async () => {
    await api.create(pingSource('bad', { schedule: '* * * * *', data: 'a', dataBase64: 'Yg==', sink: { uri: `${sink.url}bad` } }));
    await waitFor('invalid observation', () => seen.some((o) => o.kind === 'invalid' && o.name === 'bad'));
    expect(seen.find((o) => o.kind === 'invalid' && o.name === 'bad')).toMatchObject({ reason: expect.stringMatching(/mutually exclusive/) });
    expect(scheduler.scheduled().map((s) => s.name)).not.toContain('bad');
    type Status = { status?: { conditions?: { type: string; status: string; reason?: string }[] } };
    const status = await until(
      'conditions on the PingSource status',
      async () => {
        const s = ((await api.read({ apiVersion: 'sources.knative.dev/v1', kind: 'PingSource', metadata: { name: 'bad', namespace: 'default' } })) as Status).status;
        return s?.conditions ? s : undefined;
      },
      { timeout: 5000, interval: 25 },
    );
    expect(status?.conditions).toContainEqual(expect.objectContaining({ type: 'Ready', status: 'False', reason: 'InvalidSpec' }));
  });
});

describe('schedules and events', () => {
  it.each(ACCEPTED.map((c) => [c.schedule, c.timezone ?? '', c] as const))('runs %s %s as the adapter would', (_, __, c) => {
    expect(nextTime(pingSchedule(c), new Date('2026-11-30T00:00:00Z'))).toBeInstanceOf(Date);
  });

  it.each(REFUSED.map((c) => [c.schedule, c.timezone ?? '', c] as const))("refuses %s %s with the webhook's error", (_, __, c) => {
    expect(() => pingSchedule(c)).toThrow(`Knative's webhook refuses this PingSource: ${c.error}`);
  });

  it('defaults an empty schedule to every minute and honours spec.timezone, UTC without one', () => {
    const after = new Date('2025-01-15T12:00:30Z');
    expect(nextTime(pingSchedule({}), after)?.toISOString()).toBe('2025-01-15T12:01:00.000Z');
    expect(nextTime(pingSchedule({ schedule: '0 9 * * *', timezone: 'Asia/Tokyo' }), after)?.toISOString()).toBe('2025-01-16T00:00:00.000Z');
    expect(nextTime(pingSchedule({ schedule: '0 9 * * *' }), after)?.toISOString()).toBe('2025-01-16T09:00:00.000Z');
  });

  it('sends the decoded bytes of dataBase64 and no data when none is set', () => {
    const base = { apiVersion: 'sources.knative.dev/v1' as const, kind: 'PingSource' as const, metadata: { name: 'p', namespace: 'ns' } };
    const b64 = makePingEvent({ ...base, spec: { dataBase64: Buffer.from('raw bytes').toString('base64'), contentType: 'application/octet-stream', sink: { uri: 'http://x/' } } });
    expect(b64.data!.toString()).toBe('raw bytes');
    const none = makePingEvent({ ...base, spec: { sink: { uri: 'http://x/' } } });
    expect(none.data).toBeUndefined();
    expect(none.attributes.datacontenttype).toBeUndefined();
    expect(dataOf(makePingEvent({ ...base, spec: { data: '{"b":1,"a":{"z":1,"y":2}}', contentType: 'application/json', sink: { uri: 'http://x/' } } }))).toEqual({ a: { z: 1, y: 2 }, b: 1 });
  });
});
