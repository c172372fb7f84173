import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3ObjectStore } from '../../functions/core/storage/s3.js';
import { eventKey } from '../../functions/core/storage/layout.js';
import { createEventArchive } from '../../functions/event-archive/handler.js';
import { archiveKey, keyMatchesId, keyTime, UNDATED_PREFIX } from '../../functions/event-archive/archived-event.js';
import { createLogger } from '../../functions/core/runtime/logger.js';
import { serveFunction, type RunningFunction } from '../../functions/core/runtime/server.js';
import { startS3, type S3Fixture } from '../support/s3.js';
import { created, ping, stored } from './samples.js';

const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

describe('event-archive over HTTP into S3', () => {
  let s3: S3Fixture;
  let store: S3ObjectStore;
  let fn: RunningFunction;
  let bucketNo = 0;

  beforeAll(async () => {
    s3 = await startS3();
  });
  afterAll(async () => {
    await s3?.stop();
  });

  // A fresh bucket and function per test, so listings see only that test's objects.
  async function start() {
    await fn?.close();
    store = new S3ObjectStore(s3.storeOptions(`archive-test-${++bucketNo}`));
    await store.ensureBucket();
    fn = await serveFunction(createEventArchive({ store }), { port: 0, host: '127.0.0.1', logger: createLogger('event-archive', 'silent') });
  }
  afterAll(async () => {
    await fn?.close();
  });

  const post = (headers: Record<string, string>, body: string) => fetch(fn.url, { method: 'POST', headers, body });
  async function keys(): Promise<string[]> {
    const out: string[] = [];
    for await (const info of store.list('events/')) out.push(info.key);
    return out.sort();
  }

  it('stores a structured-mode event whole, with its extensions, at eventKey(time, id)', async () => {
    await start();
    const event = {
      specversion: '1.0',
      id: 'ev-structured-1',
      source: '/kcr/request-checkpoint',
      type: 'io.kcr.checkpoint.created',
      subject: 'default/counter-7d9f8-abcde/app',
      time: '2026-11-23T18:15:05.123Z',
      datacontenttype: 'application/json',
      kcrcheckpointid: created.id,
      traceparent: TRACEPARENT,
      data: created,
    };
    const res = await post({ 'content-type': 'application/cloudevents+json' }, JSON.stringify(event));
    expect(res.status).toBe(202);
    const key = eventKey('2026-11-23T18:15:05.123Z', 'ev-structured-1');
    expect(key).toBe('events/2026/11/23/18/2026-11-23T181505.123Z-ev-structured-1.json');
    expect(await keys()).toEqual([key]);
    expect(await store.getJson(key)).toEqual(event);
  });

  it('stores a binary-mode event in structured form, keeping ce-* extensions', async () => {
    await start();
    const res = await post(
      {
        'content-type': 'application/json',
        'ce-specversion': '1.0',
        'ce-id': 'ev-binary-1',
        'ce-source': '/kcr/store-artifact',
        'ce-type': 'io.kcr.checkpoint.stored',
        'ce-subject': 'default/counter-7d9f8-abcde/app',
        'ce-time': '2026-11-23T18:16:00Z',
        'ce-kcrcheckpointid': created.id,
        'ce-traceparent': TRACEPARENT,
      },
      JSON.stringify(stored),
    );
    expect(res.status).toBe(202);
    const archived = await store.getJson(eventKey('2026-11-23T18:16:00Z', 'ev-binary-1'));
    expect(archived).toEqual({
      specversion: '1.0',
      id: 'ev-binary-1',
      source: '/kcr/store-artifact',
      type: 'io.kcr.checkpoint.stored',
      subject: 'default/counter-7d9f8-abcde/app',
      time: '2026-11-23T18:16:00.000Z',
      datacontenttype: 'application/json',
      kcrcheckpointid: created.id,
      traceparent: TRACEPARENT,
      data: stored,
    });
  });

  it('writes a redelivered event to the same key, once', async () => {
    await start();
    const body = JSON.stringify({ specversion: '1.0', id: 'ev-twice', source: '/kcr/ping', type: 'dev.knative.sources.ping', time: '2026-11-23T19:00:00Z', data: ping });
    for (let i = 0; i < 3; i++) expect((await post({ 'content-type': 'application/cloudevents+json' }, body)).status).toBe(202);
    expect(await keys()).toEqual([eventKey('2026-11-23T19:00:00Z', 'ev-twice')]);
  });

  it('keys an event sent without time the same on every delivery, and invents no time', async () => {
    await start();
    const body = JSON.stringify({ specversion: '1.0', id: 'ev-timeless', source: '/kcr/ping', type: 'dev.knative.sources.ping', data: ping });
    for (let i = 0; i < 2; i++) expect((await post({ 'content-type': 'application/cloudevents+json' }, body)).status).toBe(202);
    const all = await keys();
    expect(all).toHaveLength(1);
    expect(all[0]!.startsWith(UNDATED_PREFIX)).toBe(true);
    expect(await store.getJson(all[0]!)).not.toHaveProperty('time');
  });

  it('archives a dead letter whose data the contract refuses, and a type outside the contract', async () => {
    await start();
    const badData = {
      specversion: '1.0',
      id: 'ev-bad',
      source: '/kcr/x',
      type: 'io.kcr.checkpoint.created',
      time: '2026-11-23T23:00:00Z',
      data: { pod: 'Not Valid' },
      knativeerrorcode: '400',
      knativeerrordest: 'http://store-artifact',
    };
    const foreign = { specversion: '1.0', id: 'ev-foreign', source: '/elsewhere', type: 'com.example.other', time: '2026-11-23T23:00:01Z', datacontenttype: 'text/plain', data: 'hello' };
    expect((await post({ 'content-type': 'application/cloudevents+json' }, JSON.stringify(badData))).status).toBe(202);
    expect((await post({ 'content-type': 'application/cloudevents+json' }, JSON.stringify(foreign))).status).toBe(202);
    const all = await keys();
    expect(all).toHaveLength(2);
    const stored = await Promise.all(all.map((k) => store.getJson(k)));
    expect(stored).toContainEqual(expect.objectContaining({ id: 'ev-bad', data: { pod: 'Not Valid' }, knativeerrorcode: '400' }));
    expect(stored).toContainEqual(expect.objectContaining({ id: 'ev-foreign', type: 'com.example.other', datacontenttype: 'text/plain', data: 'hello' }));
  });

  it('still refuses what is not a CloudEvent', async () => {
    await start();
    expect((await post({ 'content-type': 'application/cloudevents+json' }, JSON.stringify({ specversion: '1.0', source: '/x', type: 't' }))).status).toBe(400);
    expect(await keys()).toEqual([]);
  });

  it('archives every event of a batch', async () => {
    await start();
    const batch = [
      { specversion: '1.0', id: 'ev-batch-1', source: '/apis/v1/namespaces/default/pingsources/p', type: 'dev.knative.sources.ping', time: '2026-11-23T20:00:00Z', data: ping },
      { specversion: '1.0', id: 'ev-batch-2', source: '/kcr/request-checkpoint', type: 'io.kcr.checkpoint.created', time: '2026-11-23T21:30:00Z', kcrcheckpointid: created.id, data: created },
    ];
    const res = await post({ 'content-type': 'application/cloudevents-batch+json' }, JSON.stringify(batch));
    expect(res.status).toBe(202);
    expect(await keys()).toEqual([eventKey('2026-11-23T20:00:00Z', 'ev-batch-1'), eventKey('2026-11-23T21:30:00Z', 'ev-batch-2')]);
    expect(await store.getJson(eventKey('2026-11-23T21:30:00Z', 'ev-batch-2'))).toMatchObject({ id: 'ev-batch-2', kcrcheckpointid: created.id, data: created });
  });

  it('keeps a dead letter beside the original, with the knativeerror* extensions', async () => {
    await start();
    const original = {
      specversion: '1.0',
      id: 'ev-dl',
      source: '/kcr/request-checkpoint',
      type: 'io.kcr.checkpoint.created',
      time: '2026-11-23T22:00:00.000Z',
      datacontenttype: 'application/json',
      kcrcheckpointid: created.id,
      data: created,
    };
    const deadLetter = { ...original, knativeerrorcode: '500', knativeerrordest: 'http://store-artifact.kcr-system.svc.cluster.local', knativeerrordata: 'c3RvcmFnZSBkb3du' };
    expect((await post({ 'content-type': 'application/cloudevents+json' }, JSON.stringify(original))).status).toBe(202);
    expect((await post({ 'content-type': 'application/cloudevents+json' }, JSON.stringify(deadLetter))).status).toBe(202);
    expect((await post({ 'content-type': 'application/cloudevents+json' }, JSON.stringify(deadLetter))).status).toBe(202);
    const all = await keys();
    expect(all).toHaveLength(2);
    expect(all).toContain(eventKey('2026-11-23T22:00:00Z', 'ev-dl'));
    const dlKey = all.find((k) => k !== eventKey('2026-11-23T22:00:00Z', 'ev-dl'))!;
    expect(dlKey).toMatch(/^events\/2026\/11\/23\/22\/2026-11-23T220000\.000Z-ev-dl\.deadletter-[0-9a-f]{16}\.json$/);
    expect(keyMatchesId(dlKey, 'ev-dl')).toBe(true);
    expect(await store.getJson(eventKey('2026-11-23T22:00:00Z', 'ev-dl'))).toEqual(original);
    expect(await store.getJson(dlKey)).toEqual(deadLetter);
  });
});

describe('archive keys', () => {
  const base = { type: 'dev.knative.sources.ping', id: 'ev/1', source: '/s', data: ping, extensions: {} };

  it('keys an event without time by a hash of source and id, the same on every delivery', () => {
    const key = archiveKey(base);
    expect(key.startsWith(UNDATED_PREFIX)).toBe(true);
    expect(key).toMatch(/^events\/undated\/[0-9a-f]{16}-ev_1\.json$/);
    expect(archiveKey({ ...base })).toBe(key);
    expect(archiveKey({ ...base, source: '/other' })).not.toBe(key);
    expect(keyMatchesId(key, 'ev/1')).toBe(true);
  });

  it('gives each dead-letter destination its own key', () => {
    const timed = { ...base, time: '2026-01-02T03:04:05Z' };
    const a = archiveKey({ ...timed, extensions: { knativeerrordest: 'http://a' } });
    const b = archiveKey({ ...timed, extensions: { knativeerrordest: 'http://b' } });
    expect(a).not.toBe(b);
    expect(a).not.toBe(archiveKey(timed));
    expect(keyTime(a)?.toISOString()).toBe('2026-01-02T03:04:05.000Z');
  });
});
