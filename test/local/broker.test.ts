import { afterEach, describe, expect, it } from 'vitest';
import { CloudEvent } from 'cloudevents';
import { startLocalBroker, type BrokerObservation, type LocalBroker } from '../../local/broker.js';
import { dataOf, type WireEvent } from '../../functions/core/runtime/cloudevents-http.js';
import { parseEventingYaml, type EventingConfig } from '../../local/triggers.js';
import { binaryHeaders, startSubscriber, type Answer, type Subscriber } from './support.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function subscriber(answer?: (e: WireEvent, n: number) => Answer): Promise<Subscriber> {
  const s = await startSubscriber(answer);
  cleanups.push(() => s.close());
  return s;
}

async function broker(yaml: string, services: Record<string, string>, backoffScale = 0.01): Promise<{ b: LocalBroker; seen: BrokerObservation[] }> {
  const b = await startLocalBroker({ eventing: parseEventingYaml(yaml, 'test.yaml', 'kcr-system'), services, backoffScale });
  cleanups.push(() => b.close());
  const seen: BrokerObservation[] = [];
  b.onDelivery((o) => seen.push(o));
  return { b, seen };
}

const BROKER = (delivery = '') => `
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: kcr, namespace: kcr-system}
${delivery ? `spec:\n  delivery:\n${delivery}` : ''}
`;

const trigger = (name: string, type: string | undefined, extra = '') => `
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: ${name}, namespace: kcr-system}
spec:
  broker: kcr
${type ? `  filter: {attributes: {type: ${type}}}\n` : ''}  subscriber:
    ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: ${name}}
${extra}`;

const attrs = (type: string, extra: Record<string, string> = {}) => ({ specversion: '1.0', id: `id-${Math.random()}`, source: '/test', type, ...extra });

async function post(url: string, headers: Record<string, string>, body: string): Promise<Response> {
  return fetch(url, { method: 'POST', headers, body });
}

describe('local broker ingress', () => {
  it('accepts a binary CloudEvent with 202 and forwards it byte for byte, adding knativearrivaltime', async () => {
    const sub = await subscriber();
    const { b } = await broker(BROKER() + trigger('fn', 'a.b'), { fn: sub.url });
    const body = '{"n": 1,  "spaced": true}';
    const res = await post(b.url, binaryHeaders(attrs('a.b', { subject: 'ns/pod/ctr', kcrcheckpointid: 'c1' })), body);
    expect(res.status).toBe(202);
    const [got] = await sub.waitFor(1);
    expect(got!.event.data!.toString()).toBe(body);
    expect(got!.event.attributes).toMatchObject({ type: 'a.b', subject: 'ns/pod/ctr', kcrcheckpointid: 'c1', datacontenttype: 'application/json' });
    expect(Date.parse(got!.event.attributes.knativearrivaltime!)).toBeGreaterThan(Date.now() - 60_000);
    expect(got!.event.attributes.knativebrokerttl).toBeUndefined();
    expect(b.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/kcr-system\/kcr$/);
  });

  it('accepts a structured CloudEvent and delivers it in binary mode', async () => {
    const sub = await subscriber();
    const { b } = await broker(BROKER() + trigger('fn', 'a.b'), { fn: sub.url });
    const res = await post(b.url, { 'content-type': 'application/cloudevents+json' }, JSON.stringify({ ...attrs('a.b'), data: { hello: 'wörld' } }));
    expect(res.status).toBe(202);
    const [got] = await sub.waitFor(1);
    expect(got!.headers['ce-type']).toBe('a.b');
    expect(got!.headers['content-type']).toBe('application/json');
    expect(dataOf(got!.event)).toEqual({ hello: 'wörld' });
  });

  it.each([
    ['no ce-id header', { 'content-type': 'application/json' }, '{}', /no ce-id header/],
    ['missing type', binaryHeaders({ specversion: '1.0', id: 'x', source: '/s' }), '{}', /type is missing/],
    ['wrong specversion', binaryHeaders({ specversion: '0.3', id: 'x', source: '/s', type: 't' }), '{}', /specversion/],
    ['bad time', binaryHeaders({ ...attrs('t'), time: 'yesterday' }), '{}', /RFC 3339/],
    ['structured, not JSON', { 'content-type': 'application/cloudevents+json' }, '{', /not valid JSON/],
    ['a batch', { 'content-type': 'application/cloudevents-batch+json' }, '[]', /batched/],
  ])('answers 400 for %s', async (_name, headers, body, message) => {
    const sub = await subscriber();
    const { b, seen } = await broker(BROKER() + trigger('fn', undefined), { fn: sub.url });
    const res = await post(b.url, headers, body);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(message);
    await b.idle();
    expect(sub.received).toHaveLength(0);
    expect(seen).toHaveLength(0);
  });

  it('answers 404 for another broker path', async () => {
    const { b } = await broker(BROKER(), {});
    const res = await post(b.url.replace('/kcr-system/kcr', '/default/other'), binaryHeaders(attrs('t')), '{}');
    expect(res.status).toBe(404);
  });

  it('routes only to matching Triggers of this Broker and reports it', async () => {
    const sub = await subscriber();
    const yaml =
      BROKER() +
      trigger('created', 'io.kcr.checkpoint.created') +
      trigger('stored', 'io.kcr.checkpoint.stored') +
      trigger('all', undefined) +
      trigger('elsewhere', undefined).replace('broker: kcr', 'broker: other');
    const { b, seen } = await broker(yaml, { created: `${sub.url}created`, stored: `${sub.url}stored`, all: `${sub.url}all`, elsewhere: `${sub.url}elsewhere` });
    await post(b.url, binaryHeaders(attrs('io.kcr.checkpoint.created')), '{}');
    await sub.waitFor(2);
    await b.idle();
    expect(sub.received.map((r) => r.path).sort()).toEqual(['/all', '/created']);
    const received = seen.find((o) => o.kind === 'received');
    expect(received).toMatchObject({ via: 'http', triggers: ['created', 'all'] });
    expect(
      seen
        .filter((o) => o.kind === 'delivered')
        .map((o) => (o as { trigger: string }).trigger)
        .sort(),
    ).toEqual(['all', 'created']);
  });

  it('publishes in process (the function runtime emit hook) and idle() waits for deliveries', async () => {
    const sub = await subscriber((_e, n) => ({ status: n === 0 ? 503 : 200 }));
    const { b, seen } = await broker(BROKER('    retry: 2\n    backoffDelay: PT0.5S') + trigger('fn', 'x.y'), { fn: sub.url });
    await b.publish(new CloudEvent({ type: 'x.y', source: '/kcr/test', data: { a: 1 } }));
    expect(b.inFlight()).toBe(1);
    await b.idle();
    expect(b.inFlight()).toBe(0);
    expect(sub.received).toHaveLength(2);
    expect(dataOf(sub.received[1]!.event)).toEqual({ a: 1 });
    expect(seen.map((o) => o.kind)).toEqual(['received', 'retrying', 'delivered']);
    await expect(b.publish({ attributes: { specversion: '1.0', id: '', source: '/s', type: 't' } })).rejects.toThrow(/id is missing/);
  });
});

describe('local broker delivery', () => {
  const DLS = `    deadLetterSink:\n      ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: dls}\n`;

  it('retries on 503 and stops at the first success', async () => {
    const sub = await subscriber((_e, n) => ({ status: n < 2 ? 503 : 202 }));
    const dls = await subscriber();
    const { b, seen } = await broker(BROKER(`    retry: 5\n    backoffDelay: PT0.1S\n${DLS}`) + trigger('fn', 't'), { fn: sub.url, dls: dls.url });
    await post(b.url, binaryHeaders(attrs('t')), '{}');
    await sub.waitFor(3);
    await b.idle();
    expect(sub.received).toHaveLength(3);
    expect(dls.received).toHaveLength(0);
    expect(seen.filter((o) => o.kind === 'retrying').map((o) => (o as { status?: number }).status)).toEqual([503, 503]);
    expect(seen.at(-1)).toMatchObject({ kind: 'delivered', status: 202, attempt: 3 });
  });

  it.each([404, 408, 409, 429, 500, 502])('retries on %i', async (status) => {
    const sub = await subscriber((_e, n) => ({ status: n === 0 ? status : 200 }));
    const { b } = await broker(BROKER('    retry: 1\n    backoffDelay: PT0.1S') + trigger('fn', 't'), { fn: sub.url });
    await post(b.url, binaryHeaders(attrs('t')), '{}');
    await sub.waitFor(2);
    await b.idle();
    expect(sub.received).toHaveLength(2);
  });

  it('does not retry a 400 and dead-letters it with the Knative error extensions', async () => {
    const sub = await subscriber(() => ({ status: 400, headers: { 'content-type': 'application/json' }, body: '{"error":"data fails the contract"}' }));
    const dls = await subscriber();
    const { b, seen } = await broker(BROKER(`    retry: 5\n    backoffDelay: PT0.1S\n${DLS}`) + trigger('fn', 't'), { fn: sub.url, dls: dls.url });
    await post(b.url, binaryHeaders(attrs('t', { kcrcheckpointid: 'c-9' })), '{"x":1}');
    const [dead] = await dls.waitFor(1);
    await b.idle();
    expect(sub.received).toHaveLength(1);
    expect(dead!.event.attributes).toMatchObject({ type: 't', kcrcheckpointid: 'c-9', knativeerrordest: sub.url, knativeerrorcode: '400' });
    expect(Buffer.from(dead!.event.attributes.knativeerrordata!, 'base64').toString()).toBe('{"error":"data fails the contract"}');
    expect(dead!.event.data!.toString()).toBe('{"x":1}');
    expect(seen.map((o) => o.kind)).toEqual(['received', 'failed', 'dead-lettered']);
  });

  it('dead-letters after exhausting the retries, with the response body truncated to 1024 bytes', async () => {
    const big = 'e'.repeat(3000);
    const sub = await subscriber(() => ({ status: 503, body: big }));
    const dls = await subscriber();
    const { b, seen } = await broker(BROKER(`    retry: 2\n    backoffDelay: PT0.1S\n${DLS}`) + trigger('fn', 't'), { fn: sub.url, dls: dls.url });
    await post(b.url, binaryHeaders(attrs('t')), '{}');
    const [dead] = await dls.waitFor(1);
    await b.idle();
    expect(sub.received).toHaveLength(3);
    expect(dead!.event.attributes.knativeerrorcode).toBe('503');
    expect(Buffer.from(dead!.event.attributes.knativeerrordata!, 'base64').toString()).toBe('e'.repeat(1024));
    expect(seen.find((o) => o.kind === 'failed')).toMatchObject({ attempts: 3, status: 503 });
  });

  it('treats a network error as retryable and reports it as code 500 with a dispatch error', async () => {
    const gone = await startSubscriber();
    const deadUrl = gone.url;
    await gone.close();
    const dls = await subscriber();
    const { b } = await broker(BROKER(`    retry: 1\n    backoffDelay: PT0.1S\n${DLS}`) + trigger('fn', 't'), { fn: deadUrl, dls: dls.url });
    await post(b.url, binaryHeaders(attrs('t')), '{}');
    const [dead] = await dls.waitFor(1);
    expect(dead!.event.attributes).toMatchObject({ knativeerrorcode: '500', knativeerrordest: deadUrl });
    expect(Buffer.from(dead!.event.attributes.knativeerrordata!, 'base64').toString()).toMatch(/^dispatch error: POST http:\/\/127\.0\.0\.1:\d+\/: fetch failed \(ECONNREFUSED\)/);
  });

  it('retries an attempt that exceeds the Trigger timeout', async () => {
    const sub = await subscriber((_e, n) => ({ status: 200, hold: n === 0 }));
    const extra = '  delivery:\n    retry: 1\n    backoffDelay: PT0.1S\n    timeout: PT0.3S\n';
    const { b, seen } = await broker(BROKER() + trigger('fn', 't', extra), { fn: sub.url });
    await post(b.url, binaryHeaders(attrs('t')), '{}');
    await sub.waitFor(2);
    await b.idle();
    expect(seen.find((o) => o.kind === 'retrying')).toMatchObject({ error: expect.stringMatching(/timed out/) });
    expect(seen.at(-1)).toMatchObject({ kind: 'delivered', attempt: 2 });
  });

  it('drops an event without a dead-letter sink after the retries, and says so', async () => {
    const sub = await subscriber(() => ({ status: 500 }));
    const { b, seen } = await broker(BROKER('    retry: 1\n    backoffDelay: PT0.1S') + trigger('fn', 't'), { fn: sub.url });
    await post(b.url, binaryHeaders(attrs('t')), '{}');
    await sub.waitFor(2);
    await b.idle();
    expect(seen.at(-1)).toMatchObject({ kind: 'dropped', trigger: 'fn', reason: expect.stringMatching(/failed after 2 attempt\(s\).*no dead-letter sink/) });
  });

  it('reports a subscriber it cannot resolve', async () => {
    const { b, seen } = await broker(BROKER() + trigger('fn', 't'), {});
    await post(b.url, binaryHeaders(attrs('t')), '{}');
    await b.idle();
    expect(seen.at(-1)).toMatchObject({ kind: 'dropped', reason: expect.stringMatching(/Service fn .*not resolvable/) });
  });

  it('waits exponential and linear backoff with real, scaled timers', async () => {
    const expo = await subscriber((_e, n) => ({ status: n < 3 ? 503 : 200 }));
    const lin = await subscriber((_e, n) => ({ status: n < 3 ? 503 : 200 }));
    const linear = '  delivery:\n    retry: 3\n    backoffPolicy: linear\n    backoffDelay: PT1S\n';
    const { b, seen } = await broker(
      BROKER('    retry: 3\n    backoffPolicy: exponential\n    backoffDelay: PT1S') + trigger('expo', 'e') + trigger('lin', 'l', linear),
      { expo: expo.url, lin: lin.url },
      0.05,
    );
    await post(b.url, binaryHeaders(attrs('e')), '{}');
    await post(b.url, binaryHeaders(attrs('l')), '{}');
    await expo.waitFor(4);
    await lin.waitFor(4);
    await b.idle();
    const delays = (t: string) => seen.filter((o) => o.kind === 'retrying' && o.trigger === t).map((o) => (o as { delayMs: number }).delayMs);
    // 1 s × 2^n and 1 s × n, scaled by 0.05.
    expect(delays('expo')).toEqual([100, 200, 400]);
    expect(delays('lin')).toEqual([50, 100, 150]);
    const gaps = (s: Subscriber) => s.received.slice(1).map((r, i) => r.at - s.received[i]!.at);
    gaps(expo).forEach((g, i) => expect(g).toBeGreaterThanOrEqual([100, 200, 400][i]! - 5));
    gaps(lin).forEach((g, i) => expect(g).toBeGreaterThanOrEqual([50, 100, 150][i]! - 5));
  });
});

describe('reply events', () => {
  it('ingests a binary reply as a new event and routes it', async () => {
    const first = await subscriber(() => ({
      status: 200,
      headers: { 'ce-specversion': '1.0', 'ce-id': 'reply-1', 'ce-source': '/kcr/first', 'ce-type': 'step.two', 'content-type': 'application/json' },
      body: '{"from":"first"}',
    }));
    const second = await subscriber();
    const { b, seen } = await broker(BROKER() + trigger('first', 'step.one') + trigger('second', 'step.two'), { first: first.url, second: second.url });
    await post(b.url, binaryHeaders(attrs('step.one')), '{}');
    const [got] = await second.waitFor(1);
    await b.idle();
    expect(got!.event.attributes).toMatchObject({ id: 'reply-1', source: '/kcr/first', type: 'step.two' });
    expect(dataOf(got!.event)).toEqual({ from: 'first' });
    expect(seen.find((o) => o.kind === 'delivered' && o.trigger === 'first')).toMatchObject({ reply: { attributes: { id: 'reply-1' } } });
    expect(seen.filter((o) => o.kind === 'received').map((o) => (o as { via: string }).via)).toEqual(['http', 'reply']);
  });

  it('ingests a structured reply', async () => {
    const first = await subscriber(() => ({
      status: 200,
      headers: { 'content-type': 'application/cloudevents+json' },
      body: JSON.stringify({ specversion: '1.0', id: 'r2', source: '/kcr/first', type: 'step.two', data: { ok: true } }),
    }));
    const second = await subscriber();
    const { b } = await broker(BROKER() + trigger('first', 'step.one') + trigger('second', 'step.two'), { first: first.url, second: second.url });
    await post(b.url, binaryHeaders(attrs('step.one')), '{}');
    const [got] = await second.waitFor(1);
    expect(dataOf(got!.event)).toEqual({ ok: true });
    await b.idle();
  });

  it('ignores a 2xx body that is not a CloudEvent', async () => {
    const first = await subscriber(() => ({ status: 200, headers: { 'content-type': 'application/json' }, body: '{"status":"ok"}' }));
    const { b, seen } = await broker(BROKER() + trigger('first', undefined), { first: first.url });
    await post(b.url, binaryHeaders(attrs('step.one')), '{}');
    await first.waitFor(1);
    await b.idle();
    expect(seen.map((o) => o.kind)).toEqual(['received', 'delivered']);
  });

  it('stops a reply loop with the broker TTL', async () => {
    let n = 0;
    const loop = await subscriber(() => ({
      status: 200,
      headers: { 'ce-specversion': '1.0', 'ce-id': `loop-${n++}`, 'ce-source': '/loop', 'ce-type': 'loop' },
    }));
    const { b, seen } = await broker(BROKER() + trigger('loop', 'loop'), { loop: loop.url });
    await post(b.url, binaryHeaders(attrs('loop', { knativebrokerttl: '3' })), '');
    await loop.waitFor(3);
    await b.idle();
    expect(loop.received).toHaveLength(3);
    expect(seen.at(-1)).toMatchObject({ kind: 'dropped', reason: expect.stringMatching(/TTL exhausted/) });
  });
});

describe('the project eventing/*.yaml', () => {
  // Each event and the Triggers that must receive it (event-archive takes everything).
  const table: { type: string; ext?: Record<string, string>; to: string[] }[] = [
    { type: 'dev.knative.apiserver.resource.add', ext: { kind: 'Deployment' }, to: ['schedule-sync'] },
    { type: 'dev.knative.apiserver.resource.update', ext: { kind: 'StatefulSet' }, to: ['schedule-sync'] },
    { type: 'dev.knative.apiserver.resource.delete', ext: { kind: 'Deployment' }, to: ['schedule-sync'] },
    { type: 'dev.knative.apiserver.resource.update', ext: { kind: 'Pod' }, to: ['restore-pod'] },
    { type: 'dev.knative.apiserver.resource.add', ext: { kind: 'Pod' }, to: ['restore-pod'] },
    { type: 'dev.knative.sources.ping', to: ['request-checkpoint'] },
    { type: 'dev.knative.sources.ping', ext: { kcrresync: 'true' }, to: ['schedule-sync'] },
    { type: 'io.kcr.checkpoint.requested', to: ['request-checkpoint'] },
    { type: 'io.kcr.checkpoint.created', to: ['store-artifact'] },
    { type: 'io.kcr.checkpoint.stored', to: ['build-image'] },
    { type: 'io.kcr.image.built', to: [] },
    { type: 'io.kcr.checkpoint.failed', to: [] },
  ];

  it('routes each event type to the Triggers that name it, through the HTTP ingress', async () => {
    const sub = await subscriber();
    const names = ['schedule-sync', 'request-checkpoint', 'store-artifact', 'build-image', 'restore-pod', 'event-archive'];
    const b = await startLocalBroker({ services: Object.fromEntries(names.map((n) => [n, `${sub.url}${n}`])) });
    cleanups.push(() => b.close());
    expect(b.url).toMatch(/\/kcr-system\/kcr$/);
    expect(b.triggers.map((t) => t.metadata.name).sort()).toEqual([...names].sort());
    for (const row of table) {
      const before = sub.received.length;
      const res = await post(b.url, binaryHeaders(attrs(row.type, row.ext)), '{}');
      expect(res.status).toBe(202);
      await b.idle();
      const got = sub.received
        .slice(before)
        .map((r) => r.path.slice(1))
        .sort();
      expect(got, `${row.type} ${JSON.stringify(row.ext ?? {})}`).toEqual([...row.to, 'event-archive'].sort());
    }
  });

  it('every Trigger matches the event types its filters name', async () => {
    const { loadEventingDir, typesNamedBy, triggerMatches } = await import('../../local/triggers.js');
    const { DEFAULT_EVENTING_DIR } = await import('../../local/broker.js');
    const config: EventingConfig = loadEventingDir(DEFAULT_EVENTING_DIR);
    const extensionSets: Record<string, string>[] = [{}, { kind: 'Pod' }, { kind: 'Deployment' }, { kind: 'StatefulSet' }, { kcrresync: 'true' }];
    for (const t of config.triggers) {
      for (const type of typesNamedBy(t)) {
        const matched = extensionSets.some((ext) => triggerMatches(t, attrs(type, ext)));
        expect(matched, `Trigger ${t.metadata.name} never matches ${type}`).toBe(true);
      }
    }
  });
});
