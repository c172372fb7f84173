// Duplicated, concurrent and failing deliveries of checkpoint.stored: Knative
// delivers at least once, and a stalled sender flushes its duplicates at once.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ImageTarget } from '../../functions/build-image/image-target.js';
import { OciLayout } from '../../functions/build-image/oci-layout.js';
import { RegistryClient } from '../../functions/build-image/registry.js';
import { createBuildImage } from '../../functions/build-image/handler.js';
import { ImageRecord } from '../../functions/core/storage/records.js';
import type { KcrEvent } from '../../functions/core/contract/build.js';
import { EventTypes } from '../../functions/core/contract/events.js';
import { checkpointPrefix } from '../../functions/core/storage/layout.js';
import { TransientError } from '../../functions/core/runtime/errors.js';
import { createLogger } from '../../functions/core/runtime/logger.js';
import { serveFunction } from '../../functions/core/runtime/server.js';
import { optionalBinary } from '../support/binaries.js';
import { MemoryStore } from '../support/memory-store.js';
import { startRegistry, startRegistryProxy, type RegistryProxy, type TestRegistry } from '../support/registry.js';
import { startSink } from '../support/sink.js';
import { keyOf, makeFixture, retain, seed, storedEvent, testContext, type Fixture } from './fixtures.js';

const registryBinary = optionalBinary('docker-registry');
const ctx = testContext();

/** The image digest of each answer, or its event type when it is not image.built. */
function outcomes(answers: KcrEvent[][]): string[] {
  return answers.map((events) => {
    const [event, ...more] = events;
    if (more.length > 0 || event?.type !== EventTypes.imageBuilt) return events.map((e) => e.type).join(',');
    return (event.data as { image: { digest: string } }).image.digest;
  });
}

/** The files of one checkpoint in the store, by name. */
function filesOf(store: MemoryStore, f: Fixture): string[] {
  const prefix = checkpointPrefix({ namespace: f.data.namespace, workload: f.data.workload, container: f.data.container, id: f.data.id });
  return [...store.objects.keys()]
    .filter((k) => k.startsWith(prefix))
    .map((k) => k.slice(prefix.length))
    .sort();
}

describe('duplicates of one checkpoint.stored in one instance', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kcr-duplicates-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('push the image once when 50 arrive together, and all answer image.built with its digest', async () => {
    const layout = new OciLayout(dir, 'kcr.local');
    const writes = { uploadBlob: 0, putManifest: 0 };
    // Counts the writes into the layout; everything else goes to it unchanged.
    const target: ImageTarget = Object.assign(Object.create(layout) as OciLayout, {
      uploadBlob: (...args: Parameters<OciLayout['uploadBlob']>) => (writes.uploadBlob++, layout.uploadBlob(...args)),
      putManifest: (...args: Parameters<OciLayout['putManifest']>) => (writes.putManifest++, layout.putManifest(...args)),
    });
    const store = new MemoryStore();
    const fixture = await makeFixture();
    seed(store, fixture);
    const handler = createBuildImage({ store, target, repoPrefix: 'kcr', retention: retain(3) });

    const answers = await Promise.all(Array.from({ length: 50 }, () => handler.handle(storedEvent(fixture.data), ctx)));
    const record = ImageRecord.parse(await store.getJson(keyOf(fixture, 'image')));
    expect(outcomes(answers)).toEqual(Array(50).fill(record.digest));
    // The layer and the config blob, the manifest and the index: one image push.
    expect(writes).toEqual({ uploadBlob: 2, putManifest: 2 });

    // Later duplicates find the committed image.json and push nothing.
    for (let i = 0; i < 3; i++) expect(outcomes([await handler.handle(storedEvent(fixture.data), ctx)])).toEqual([record.digest]);
    expect(writes).toEqual({ uploadBlob: 2, putManifest: 2 });
    expect(filesOf(store, fixture)).toEqual(['archive.tar', 'image.json', 'manifest.json']);
  });

  it('never hand an event with the same id but other data the outcome of the build in flight', async () => {
    const store = new MemoryStore();
    const fixture = await makeFixture();
    seed(store, fixture);
    const handler = createBuildImage({ store, target: new OciLayout(dir, 'kcr.local'), repoPrefix: 'kcr' });
    const forged = { ...fixture.data, artifact: { ...fixture.data.artifact, sha256: 'f'.repeat(64) } };

    const [genuine, other] = await Promise.all([handler.handle(storedEvent(fixture.data), ctx), handler.handle(storedEvent(forged), ctx)]);
    expect(genuine?.[0]?.type).toBe(EventTypes.imageBuilt);
    expect(other?.[0]?.type).toBe(EventTypes.checkpointFailed);
    expect((other?.[0]?.data as { reason: string }).reason).toMatch(/records checkpoint .* sha256 [0-9a-f]{64}, the event .* sha256 f{64}/);
  });

  it('answer a transient S3 failure with a TransientError (503), retention or not', async () => {
    const fixture = await makeFixture();
    /** S3 as the adapter reports it when unreachable: every call a TransientError. */
    class UnreachableStore extends MemoryStore {
      override async getJson(key: string): Promise<unknown> {
        throw new TransientError(`reading ${this.bucket}/${key} failed: connect ECONNREFUSED 127.0.0.1:9000 (ECONNREFUSED)`);
      }
      override async *list(prefix: string): AsyncIterable<never> {
        yield* [];
        throw new TransientError(`listing ${this.bucket}/${prefix} failed: connect ECONNREFUSED 127.0.0.1:9000 (ECONNREFUSED)`);
      }
    }
    const store = new UnreachableStore();
    seed(store, fixture);
    for (const retention of [undefined, 2]) {
      const handler = createBuildImage({ store, target: new OciLayout(dir, 'kcr.local'), repoPrefix: 'kcr', ...(retention ? { retention: retain(retention) } : {}) });
      const answers = await Promise.allSettled(Array.from({ length: 3 }, () => handler.handle(storedEvent(fixture.data), ctx)));
      for (const a of answers) {
        expect(a.status).toBe('rejected');
        expect((a as PromiseRejectedResult).reason).toBeInstanceOf(TransientError);
      }
    }

    // Over HTTP, the runtime answers 503 so the broker retries.
    const sink = await startSink();
    const handler = createBuildImage({ store, target: new OciLayout(dir, 'kcr.local'), repoPrefix: 'kcr', retention: retain(2) });
    const fn = await serveFunction(handler, { port: 0, host: '127.0.0.1', sink: sink.url, logger: createLogger('build-image', 'silent') });
    try {
      const res = await fetch(fn.url, {
        method: 'POST',
        headers: { 'content-type': 'application/cloudevents+json' },
        body: JSON.stringify({
          specversion: '1.0',
          id: 'stored-1',
          source: '/kcr/store-artifact',
          type: EventTypes.checkpointStored,
          subject: `shop/${fixture.data.pod}/redis`,
          kcrcheckpointid: fixture.data.id,
          data: fixture.data,
        }),
      });
      expect(res.status).toBe(503);
      expect(sink.events).toEqual([]);
    } finally {
      await fn.close();
      await sink.close();
    }
  });
});

describe.skipIf(!registryBinary)('duplicates against docker-registry', () => {
  let registry: TestRegistry;
  let proxy: RegistryProxy;
  beforeAll(async () => {
    registry = await startRegistry(registryBinary as string);
    proxy = await startRegistryProxy(registry.url);
  });
  afterAll(async () => {
    await proxy?.close();
    await registry?.stop();
  });

  it('push the image once when 50 arrive together at one instance', async () => {
    const store = new MemoryStore();
    const fixture = await makeFixture({ pod: 'dup-50', podUid: crypto.randomUUID() });
    seed(store, fixture);
    const handler = createBuildImage({ store, target: new RegistryClient({ baseUrl: proxy.url }), repoPrefix: 'dup' });
    const uploads = () => proxy.count('POST', /\/blobs\/uploads\/$/);
    const manifestPuts = () => proxy.count('PUT', /\/manifests\//);
    const [uploadsBefore, putsBefore] = [uploads(), manifestPuts()];

    const answers = await Promise.all(Array.from({ length: 50 }, () => handler.handle(storedEvent(fixture.data), ctx)));
    const record = ImageRecord.parse(await store.getJson(keyOf(fixture, 'image')));
    expect(outcomes(answers)).toEqual(Array(50).fill(record.digest));
    expect(uploads() - uploadsBefore).toBe(2);
    expect(manifestPuts() - putsBefore).toBe(2);
  });

  it('succeed in two instances racing the same events: no checkpoint.failed, one image.json each', async () => {
    // Two replicas of build-image: their own single-flight maps and clients, the same S3 and registry.
    const store = new MemoryStore();
    const replicas = [0, 1].map(() => createBuildImage({ store, target: new RegistryClient({ baseUrl: registry.url }), repoPrefix: 'race' }));
    /** As the broker does: a 503 (TransientError) is delivered again. */
    const deliver = async (replica: number, f: Fixture): Promise<KcrEvent[]> => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await replicas[replica]!.handle(storedEvent(f.data), ctx);
        } catch (err) {
          if (!(err instanceof TransientError) || attempt === 10) throw err;
        }
      }
    };
    for (let round = 0; round < 20; round++) {
      const fixture = await makeFixture({ pod: `race-${round}`, podUid: crypto.randomUUID() });
      seed(store, fixture);
      const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => deliver(i % 2, fixture)));
      const record = ImageRecord.parse(await store.getJson(keyOf(fixture, 'image')));
      expect(outcomes(answers), `round ${round}`).toEqual(Array(10).fill(record.digest));
      expect(filesOf(store, fixture)).toEqual(['archive.tar', 'image.json', 'manifest.json']);
      expect(await new RegistryClient({ baseUrl: registry.url }).hasManifest(record.repository, record.indexDigest)).toBe(true);
    }
  });
});
