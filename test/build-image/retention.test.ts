// Retention (KCR_CHECKPOINT_RETENTION): after a build, a container keeps its
// newest N committed checkpoints; older ones leave S3 and the image target.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ImageTarget } from '../../functions/adapters/image-target.js';
import { OciLayout } from '../../functions/adapters/oci-layout.js';
import { RegistryClient } from '../../functions/adapters/registry.js';
import { createBuildImage } from '../../functions/build-image/handler.js';
import { ImageRecord } from '../../functions/build-image/image-record.js';
import { EventTypes } from '../../functions/contract/events.js';
import { checkpointPrefix } from '../../functions/domain/storage-layout.js';
import { optionalBinary } from '../support/binaries.js';
import { MemoryStore } from '../support/memory-store.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { keyOf, makeFixture, seed, storedEvent, testContext, type Fixture } from './fixtures.js';

const ctx = testContext();
const registryBinary = optionalBinary('docker-registry');

/** Checkpoints of one container, oldest first, five minutes apart. */
async function history(n: number, spec: { container?: string; pagesBytes?: number } = {}): Promise<Fixture[]> {
  const out: Fixture[] = [];
  for (let i = 0; i < n; i++) out.push(await makeFixture({ ...spec, pagesBytes: spec.pagesBytes ?? 8 * 1024, checkpointedAt: `2026-11-23T18:${String(i * 5).padStart(2, '0')}:00Z` }));
  return out;
}

const keysOf = (store: MemoryStore, f: Fixture) => [...store.objects.keys()].filter((k) => k.startsWith(checkpointPrefix({ namespace: f.data.namespace, workload: f.data.workload, container: f.data.container, id: f.data.id }))).sort();
const recordOf = async (store: MemoryStore, f: Fixture) => ImageRecord.parse(await store.getJson(keyOf(f, 'image')));

describe('retention with an OCI layout', () => {
  let dir: string;
  let layout: OciLayout;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'kcr-retention-'));
    layout = new OciLayout(dir, 'kcr.local');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const blobs = () => readdirSync(join(dir, 'blobs', 'sha256')).map((h) => `sha256:${h}`);

  it("keeps a container's newest N committed checkpoints, in S3 and in the layout, and nothing else of theirs", async () => {
    const store = new MemoryStore();
    const handler = createBuildImage({ store, target: layout, repoPrefix: 'kcr', retention: 2 });
    const mine = await history(4);
    const other = (await history(3, { container: 'sidecar' }))[0]!;
    // An upload in flight: an archive without its manifest, older than everything.
    const inFlight = await makeFixture({ checkpointedAt: '2026-11-23T17:00:00Z', pagesBytes: 8 * 1024 });
    store.put(keyOf(inFlight, 'archive'), inFlight.archive);
    seed(store, other);
    expect((await handler.handle(storedEvent(other.data), ctx))[0]?.type).toBe(EventTypes.imageBuilt);
    const records = [];
    for (const f of mine) {
      seed(store, f);
      const [event] = await handler.handle(storedEvent(f.data), ctx);
      expect(event?.type).toBe(EventTypes.imageBuilt);
      records.push(await recordOf(store, f));
    }

    expect(keysOf(store, mine[0]!)).toEqual([]);
    expect(keysOf(store, mine[1]!)).toEqual([]);
    for (const f of mine.slice(2)) expect(keysOf(store, f)).toEqual([keyOf(f, 'archive'), keyOf(f, 'image'), keyOf(f, 'manifest')].sort());
    expect(keysOf(store, other)).toHaveLength(3);
    expect(keysOf(store, inFlight)).toEqual([keyOf(inFlight, 'archive')]);

    const repo = records[0]!.repository;
    for (const [i, r] of records.entries()) expect(await layout.hasManifest(repo, r.indexDigest), `checkpoint ${i}`).toBe(i >= 2);
    const left = new Set(blobs());
    for (const r of records.slice(0, 2)) for (const d of [r.indexDigest, r.manifestDigest, r.configDigest, r.layer.digest]) expect(left.has(d), d).toBe(false);
    for (const r of records.slice(2)) for (const d of [r.indexDigest, r.manifestDigest, r.configDigest, r.layer.digest]) expect(left.has(d), d).toBe(true);
  });

  it('never prunes the checkpoint it has just built, even an old one replayed', async () => {
    const store = new MemoryStore();
    const handler = createBuildImage({ store, target: layout, repoPrefix: 'kcr', retention: 1 });
    const [old, newer] = await history(2);
    for (const f of [newer!, old!]) {
      seed(store, f);
      await handler.handle(storedEvent(f.data), ctx);
    }
    expect(keysOf(store, old!)).toHaveLength(3);
    expect(keysOf(store, newer!)).toHaveLength(3);
  });

  it("removes a bad marker left of a checkpoint it pruned earlier", async () => {
    const store = new MemoryStore();
    const handler = createBuildImage({ store, target: layout, repoPrefix: 'kcr', retention: 1 });
    const [first, second, third] = await history(3);
    for (const f of [first!, second!]) {
      seed(store, f);
      await handler.handle(storedEvent(f.data), ctx);
    }
    // restore-pod marks the pruned checkpoint bad afterwards.
    const bad = keyOf(first!, 'manifest').replace('manifest.json', 'bad.json');
    await store.putJson(bad, { id: first!.data.id, reason: 'crashed on restore', markedAt: '2026-11-23T19:00:00Z' });
    seed(store, third!);
    await handler.handle(storedEvent(third!.data), ctx);
    expect(keysOf(store, first!)).toEqual([]);
    expect(keysOf(store, third!)).toHaveLength(3);
  });

  it('keeps everything when retention is 0 or unset', async () => {
    for (const retention of [0, undefined]) {
      const store = new MemoryStore();
      const handler = createBuildImage({ store, target: layout, repoPrefix: 'kcr', ...(retention !== undefined ? { retention } : {}) });
      const fixtures = await history(3);
      for (const f of fixtures) {
        seed(store, f);
        await handler.handle(storedEvent(f.data), ctx);
      }
      for (const f of fixtures) expect(keysOf(store, f)).toHaveLength(3);
    }
  });

  it('still reports the image built when deleting an old image fails, and S3 no longer names it', async () => {
    const store = new MemoryStore();
    const failing: ImageTarget = Object.assign(Object.create(layout) as OciLayout, {
      removeImage: async () => {
        throw new Error('disk is read-only');
      },
    });
    const handler = createBuildImage({ store, target: failing, repoPrefix: 'kcr', retention: 1 });
    const [first, second] = await history(2);
    for (const f of [first!, second!]) {
      seed(store, f);
      expect((await handler.handle(storedEvent(f.data), ctx))[0]?.type).toBe(EventTypes.imageBuilt);
    }
    expect(keysOf(store, first!)).toEqual([]);
  });
});

describe.skipIf(!registryBinary)('retention with docker-registry', () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startRegistry(registryBinary as string);
  });
  afterAll(async () => {
    await registry?.stop();
  });

  it('deletes the pruned images from the registry', async () => {
    const store = new MemoryStore();
    const client = new RegistryClient({ baseUrl: registry.url });
    const handler = createBuildImage({ store, target: client, repoPrefix: 'retention', retention: 1 });
    const fixtures = await history(3);
    const records = [];
    for (const f of fixtures) {
      seed(store, f);
      await handler.handle(storedEvent(f.data), ctx);
      records.push(await recordOf(store, f));
    }
    const repo = records[0]!.repository;
    expect(await Promise.all(records.map((r) => client.hasManifest(repo, r.indexDigest)))).toEqual([false, false, true]);
    expect(await Promise.all(records.map((r) => client.hasManifest(repo, r.manifestDigest)))).toEqual([false, false, true]);
    expect(keysOf(store, fixtures[2]!)).toHaveLength(3);
  });
});
