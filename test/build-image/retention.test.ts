// Retention (KCR_CHECKPOINT_RETENTION): after every build, failed ones too, a
// container keeps its newest N committed checkpoints; older ones leave S3 and
// the image target, through prune.json when the target cannot delete them yet.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ImageTarget } from '../../functions/build-image/image-target.js';
import { OciLayout } from '../../functions/build-image/oci-layout.js';
import { RegistryClient } from '../../functions/build-image/registry.js';
import type { V1Pod } from '@kubernetes/client-node';
import { createBuildImage } from '../../functions/build-image/handler.js';
import { podImageDigests, type PodLister } from '../../functions/build-image/retention.js';
import { ImageRecord } from '../../functions/core/storage/records.js';
import { EventTypes } from '../../functions/core/contract/events.js';
import { TransientError } from '../../functions/core/runtime/errors.js';
import { CheckpointCatalog } from '../../functions/core/storage/checkpoint-catalog.js';
import { artifactKey, checkpointPrefix } from '../../functions/core/storage/layout.js';
import { optionalBinary } from '../support/binaries.js';
import { MemoryStore } from '../support/memory-store.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { keyOf, makeFixture, retain, seed, storedEvent, testContext, type Fixture } from './fixtures.js';

const ctx = testContext();
const registryBinary = optionalBinary('docker-registry');

/** Checkpoints of one container, oldest first, five minutes apart. */
async function history(n: number, spec: { container?: string; pagesBytes?: number } = {}): Promise<Fixture[]> {
  const out: Fixture[] = [];
  for (let i = 0; i < n; i++) out.push(await makeFixture({ ...spec, pagesBytes: spec.pagesBytes ?? 8 * 1024, checkpointedAt: `2026-11-23T18:${String(i * 5).padStart(2, '0')}:00Z` }));
  return out;
}

const keysOf = (store: MemoryStore, f: Fixture) =>
  [...store.objects.keys()].filter((k) => k.startsWith(checkpointPrefix({ namespace: f.data.namespace, workload: f.data.workload, container: f.data.container, id: f.data.id }))).sort();
const recordOf = async (store: MemoryStore, f: Fixture) => ImageRecord.parse(await store.getJson(keyOf(f, 'image')));
const refOf = (f: Fixture) => ({ namespace: f.data.namespace, workload: f.data.workload, container: f.data.container });
const pruneKeyOf = (f: Fixture) => artifactKey({ ...refOf(f), id: f.data.id }, 'prune');

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
    const handler = createBuildImage({ store, target: layout, repoPrefix: 'kcr', retention: retain(2) });
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
    const handler = createBuildImage({ store, target: layout, repoPrefix: 'kcr', retention: retain(1) });
    const [old, newer] = await history(2);
    for (const f of [newer!, old!]) {
      seed(store, f);
      await handler.handle(storedEvent(f.data), ctx);
    }
    expect(keysOf(store, old!)).toHaveLength(3);
    expect(keysOf(store, newer!)).toHaveLength(3);
  });

  it('removes a bad marker left of a checkpoint it pruned earlier', async () => {
    const store = new MemoryStore();
    const handler = createBuildImage({ store, target: layout, repoPrefix: 'kcr', retention: retain(1) });
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
      const handler = createBuildImage({ store, target: layout, repoPrefix: 'kcr', ...(retention !== undefined ? { retention: retain(retention) } : {}) });
      const fixtures = await history(3);
      for (const f of fixtures) {
        seed(store, f);
        await handler.handle(storedEvent(f.data), ctx);
      }
      for (const f of fixtures) expect(keysOf(store, f)).toHaveLength(3);
    }
  });

  it('keeps what the layout could not delete in prune.json, which the next pass finishes', async () => {
    const store = new MemoryStore();
    let refuse = true;
    const failing: ImageTarget = Object.assign(Object.create(layout) as OciLayout, {
      removeImage: async (...args: Parameters<OciLayout['removeImage']>) => {
        if (refuse) throw new Error('disk is read-only');
        return layout.removeImage(...args);
      },
    });
    const handler = createBuildImage({ store, target: failing, repoPrefix: 'kcr', retention: retain(1) });
    const [first, second, third] = await history(3);
    for (const f of [first!, second!]) {
      seed(store, f);
      expect((await handler.handle(storedEvent(f.data), ctx))[0]?.type).toBe(EventTypes.imageBuilt);
    }
    // S3 no longer names the image as restorable, but prune.json still names it, and the layout still has it.
    const record = ImageRecord.parse(await store.getJson(pruneKeyOf(first!)));
    expect(keysOf(store, first!)).toEqual([pruneKeyOf(first!)]);
    expect(await new CheckpointCatalog(store).restorableIds(refOf(first!))).toEqual([second!.data.id]);
    expect(await layout.hasManifest(record.repository, record.indexDigest)).toBe(true);

    refuse = false;
    seed(store, third!);
    expect((await handler.handle(storedEvent(third!.data), ctx))[0]?.type).toBe(EventTypes.imageBuilt);
    expect(keysOf(store, first!)).toEqual([]);
    expect(keysOf(store, second!)).toEqual([]);
    expect(await layout.hasManifest(record.repository, record.indexDigest)).toBe(false);
    expect(blobs()).not.toContain(record.layer.digest);
  });

  it('deletes image.json before the image, with prune.json written first', async () => {
    const store = new MemoryStore();
    const seen: { restorable: string[]; files: string[] }[] = [];
    const observing: ImageTarget = Object.assign(Object.create(layout) as OciLayout, {
      removeImage: async (...args: Parameters<OciLayout['removeImage']>) => {
        seen.push({ restorable: await new CheckpointCatalog(store).restorableIds(refOf(first!)), files: keysOf(store, first!) });
        return layout.removeImage(...args);
      },
    });
    const handler = createBuildImage({ store, target: observing, repoPrefix: 'kcr', retention: retain(1) });
    const [first, second] = await history(2);
    for (const f of [first!, second!]) {
      seed(store, f);
      await handler.handle(storedEvent(f.data), ctx);
    }
    expect(seen).toEqual([{ restorable: [second!.data.id], files: [pruneKeyOf(first!)] }]);
    expect(keysOf(store, first!)).toEqual([]);
  });

  it('finishes a prune that stopped half-way (a crash), leaving nothing of it', async () => {
    const store = new MemoryStore();
    const handler = createBuildImage({ store, target: layout, repoPrefix: 'kcr', retention: retain(1) });
    const [first, second, third] = await history(3);
    seed(store, first!);
    await handler.handle(storedEvent(first!.data), ctx);
    const record = await recordOf(store, first!);
    // The pass pruning `first` dies after manifest.json went, before the archive and the image did.
    const remove = store.remove.bind(store);
    store.remove = async (key) => {
      if (key === keyOf(first!, 'archive')) throw new Error('process killed');
      return remove(key);
    };
    seed(store, second!);
    expect((await handler.handle(storedEvent(second!.data), ctx))[0]?.type).toBe(EventTypes.imageBuilt);
    expect(keysOf(store, first!)).toEqual([keyOf(first!, 'archive'), pruneKeyOf(first!)].sort());
    expect(await new CheckpointCatalog(store).restorableIds(refOf(first!))).toEqual([second!.data.id]);
    expect(await layout.hasManifest(record.repository, record.indexDigest)).toBe(true);

    store.remove = remove;
    seed(store, third!);
    await handler.handle(storedEvent(third!.data), ctx);
    expect(keysOf(store, first!)).toEqual([]);
    expect(await layout.hasManifest(record.repository, record.indexDigest)).toBe(false);
    expect(blobs()).not.toContain(record.layer.digest);
    expect(keysOf(store, third!)).toHaveLength(3);
  });
});

describe('retention and the pods that use checkpoint images', () => {
  let dir: string;
  let layout: OciLayout;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'kcr-retention-pods-'));
    layout = new OciLayout(dir, 'kcr.local');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** The API as retention sees it: the pods listed, every call recorded, and an outage that can be switched on. */
  function api(pods: V1Pod[] = []) {
    const calls: unknown[][] = [];
    const state = { pods, down: false };
    const lister: PodLister = {
      listPods: async (...args) => {
        calls.push(args);
        if (state.down) throw new TransientError('list pods in shop: connect ECONNREFUSED 10.96.0.1:443');
        return state.pods;
      },
    };
    return { calls, state, lister };
  }
  const pod = (phase: string, spec: string[], status: { image?: string; imageID?: string }[] = []): V1Pod => ({
    metadata: { name: 'redis-0', namespace: 'shop' },
    spec: { containers: spec.map((image, i) => ({ name: `c${i}`, image })) },
    status: { phase, containerStatuses: status.map((s, i) => ({ name: `c${i}`, image: s.image ?? '', imageID: s.imageID ?? '', ready: true, restartCount: 0 })) },
  });

  async function buildAll(handler: ReturnType<typeof createBuildImage>, store: MemoryStore, fixtures: Fixture[]): Promise<ImageRecord[]> {
    const records = [];
    for (const f of fixtures) {
      seed(store, f);
      expect((await handler.handle(storedEvent(f.data), ctx))[0]?.type).toBe(EventTypes.imageBuilt);
      records.push(await recordOf(store, f));
    }
    return records;
  }

  it('keeps a checkpoint whose image a pod runs, in S3 and in the layout, until that pod has ended', async () => {
    const store = new MemoryStore();
    const { state, lister } = api();
    const handler = createBuildImage({ store, target: layout, repoPrefix: 'kcr', retention: { keep: 1, pods: lister } });
    const fixtures = await history(5);
    const [first] = await buildAll(handler, store, fixtures.slice(0, 1));
    // restore-pod patched the pod to the first checkpoint's image, by its index digest.
    state.pods = [pod('Running', [first!.reference, 'docker.io/library/busybox:1'])];
    await buildAll(handler, store, fixtures.slice(1, 4));

    expect(keysOf(store, fixtures[0]!)).toEqual([keyOf(fixtures[0]!, 'archive'), keyOf(fixtures[0]!, 'image'), keyOf(fixtures[0]!, 'manifest')].sort());
    expect(await layout.hasManifest(first!.repository, first!.indexDigest)).toBe(true);
    expect(readdirSync(join(dir, 'blobs', 'sha256'))).toContain(first!.layer.digest.slice('sha256:'.length));
    // Retention goes on for the rest.
    expect(keysOf(store, fixtures[1]!)).toEqual([]);
    expect(keysOf(store, fixtures[2]!)).toEqual([]);
    expect(keysOf(store, fixtures[3]!)).toHaveLength(3);

    state.pods = [pod('Succeeded', [first!.reference])];
    await buildAll(handler, store, fixtures.slice(4));
    expect(keysOf(store, fixtures[0]!)).toEqual([]);
    expect(await layout.hasManifest(first!.repository, first!.indexDigest)).toBe(false);
  });

  it("counts a pod's status imageID (the platform manifest's digest) and pods not running yet", async () => {
    const store = new MemoryStore();
    const { state, lister } = api();
    const handler = createBuildImage({ store, target: layout, repoPrefix: 'kcr', retention: { keep: 1, pods: lister } });
    const fixtures = await history(4);
    const [first, second] = await buildAll(handler, store, fixtures.slice(0, 2));
    expect(keysOf(store, fixtures[0]!)).toEqual([]);
    state.pods = [
      pod('Running', ['docker.io/library/redis:7'], [{ image: 'docker.io/library/redis:7', imageID: `docker-pullable://kcr.local/${second!.repository}@${second!.manifestDigest}` }]),
      pod('Pending', ['docker.io/library/redis:7']),
    ];
    const [third] = await buildAll(handler, store, fixtures.slice(2, 3));
    state.pods.push(pod('Pending', [third!.reference]));
    await buildAll(handler, store, fixtures.slice(3));
    expect(keysOf(store, fixtures[1]!)).toHaveLength(3);
    expect(keysOf(store, fixtures[2]!)).toHaveLength(3);
    expect(await layout.hasManifest(second!.repository, second!.indexDigest)).toBe(true);
    expect(await layout.hasManifest(third!.repository, third!.indexDigest)).toBe(true);
    expect(await layout.hasManifest(first!.repository, first!.indexDigest)).toBe(false);
  });

  it("lists the pods of the checkpoint's namespace that have not ended, once per pass, and only when an image would go", async () => {
    const store = new MemoryStore();
    const { calls, lister } = api();
    const handler = createBuildImage({ store, target: layout, repoPrefix: 'kcr', retention: { keep: 2, pods: lister } });
    const fixtures = await history(4);
    await buildAll(handler, store, fixtures.slice(0, 2));
    expect(calls).toEqual([]);
    await buildAll(handler, store, fixtures.slice(2));
    expect(calls).toEqual([
      ['shop', undefined, 'status.phase!=Succeeded,status.phase!=Failed'],
      ['shop', undefined, 'status.phase!=Succeeded,status.phase!=Failed'],
    ]);
  });

  it('deletes nothing that has an image while the API cannot list pods, and catches up afterwards', async () => {
    const store = new MemoryStore();
    const { state, lister } = api();
    const handler = createBuildImage({ store, target: layout, repoPrefix: 'kcr', retention: { keep: 1, pods: lister } });
    const fixtures = await history(4);
    state.down = true;
    // The builds succeed all the same: retention only logs its failure.
    const records = await buildAll(handler, store, fixtures.slice(0, 3));
    for (const [i, f] of fixtures.slice(0, 3).entries()) {
      expect(keysOf(store, f)).toHaveLength(3);
      expect(await layout.hasManifest(records[i]!.repository, records[i]!.indexDigest)).toBe(true);
    }
    state.down = false;
    await buildAll(handler, store, fixtures.slice(3));
    expect(fixtures.filter((f) => keysOf(store, f).length > 0)).toEqual(fixtures.slice(3));
  });

  it('leaves an image waiting in prune.json alone while a pod uses it', async () => {
    const store = new MemoryStore();
    const { state, lister } = api();
    let refuse = true;
    const failing: ImageTarget = Object.assign(Object.create(layout) as OciLayout, {
      removeImage: async (...args: Parameters<OciLayout['removeImage']>) => {
        if (refuse) throw new Error('registry read-only');
        return layout.removeImage(...args);
      },
    });
    const handler = createBuildImage({ store, target: failing, repoPrefix: 'kcr', retention: { keep: 1, pods: lister } });
    const fixtures = await history(4);
    const [first] = await buildAll(handler, store, fixtures.slice(0, 2));
    expect(keysOf(store, fixtures[0]!)).toEqual([pruneKeyOf(fixtures[0]!)]);
    // A restore read image.json just before the prune, and patched the pod afterwards.
    state.pods = [pod('Running', [first!.reference])];
    refuse = false;
    await buildAll(handler, store, fixtures.slice(2, 3));
    expect(keysOf(store, fixtures[0]!)).toEqual([pruneKeyOf(fixtures[0]!)]);
    expect(await layout.hasManifest(first!.repository, first!.indexDigest)).toBe(true);

    state.pods = [];
    await buildAll(handler, store, fixtures.slice(3));
    expect(keysOf(store, fixtures[0]!)).toEqual([]);
    expect(await layout.hasManifest(first!.repository, first!.indexDigest)).toBe(false);
  });

  it('reads digests from spec images and status image IDs, of pods that have not ended', () => {
    const digest = (c: string) => `sha256:${c.repeat(64)}`;
    const digests = podImageDigests([
      pod('Running', [`reg:5000/kcr/shop/x@${digest('a')}`, 'redis:7'], [{ image: 'redis:7', imageID: `docker-pullable://redis@${digest('b')}` }]),
      { spec: { containers: [], initContainers: [{ name: 'init', image: `reg/init@${digest('c')}` }] }, status: { phase: 'Pending' } },
      pod('Unknown', [`reg/u@${digest('d')}`]),
      pod('Failed', [`reg/f@${digest('e')}`]),
      pod('Succeeded', [`reg/s@${digest('f')}`]),
    ]);
    expect([...digests].sort()).toEqual([digest('a'), digest('b'), digest('c'), digest('d')]);
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
    const handler = createBuildImage({ store, target: client, repoPrefix: 'retention', retention: retain(1) });
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

  it('prunes S3 while the registry is unreachable, and deletes the images once it is back', async () => {
    const store = new MemoryStore();
    const gate = await startGate(registry.url);
    try {
      const handler = createBuildImage({ store, target: new RegistryClient({ baseUrl: gate.url, timeoutMs: 2000 }), repoPrefix: 'outage', retention: retain(2) });
      const direct = new RegistryClient({ baseUrl: registry.url });
      const fixtures = await history(9);
      const built = fixtures.slice(0, 3);
      for (const f of built) {
        seed(store, f);
        expect((await handler.handle(storedEvent(f.data), ctx))[0]?.type).toBe(EventTypes.imageBuilt);
      }
      const records = await Promise.all(built.slice(1).map((f) => recordOf(store, f)));

      // The registry goes away: every build answers 503, and the S3 side is pruned all the same.
      gate.down = true;
      for (const f of fixtures.slice(3, 8)) {
        seed(store, f);
        await expect(handler.handle(storedEvent(f.data), ctx)).rejects.toThrow(TransientError);
        const committed = fixtures.filter((g) => store.objects.has(keyOf(g, 'manifest')));
        expect(committed.length).toBeLessThanOrEqual(2);
      }
      expect(fixtures.filter((f) => store.objects.has(keyOf(f, 'manifest')))).toEqual(fixtures.slice(6, 8));
      // The images S3 no longer names wait in prune.json: the registry still has them.
      for (const [i, f] of built.slice(1).entries()) {
        expect(keysOf(store, f)).toEqual([pruneKeyOf(f)]);
        expect(await direct.hasManifest(records[i]!.repository, records[i]!.indexDigest)).toBe(true);
      }
      for (const f of [fixtures[0]!, ...fixtures.slice(3, 6)]) expect(keysOf(store, f)).toEqual([]);

      gate.down = false;
      seed(store, fixtures[8]!);
      expect((await handler.handle(storedEvent(fixtures[8]!.data), ctx))[0]?.type).toBe(EventTypes.imageBuilt);
      for (const r of records) expect(await direct.hasManifest(r.repository, r.indexDigest)).toBe(false);
      expect([...store.objects.keys()].filter((k) => k.endsWith('/prune.json'))).toEqual([]);
      expect(fixtures.filter((f) => keysOf(store, f).length > 0)).toEqual(fixtures.slice(7, 9));
    } finally {
      await gate.close();
    }
  });
});

/** A forwarder to the registry that can be made unreachable: while `down`, it drops every connection. */
async function startGate(upstream: string): Promise<{ url: string; down: boolean; close(): Promise<void> }> {
  const target = new URL(upstream);
  const server = createServer((req, res) => {
    if (gate.down) {
      req.socket.destroy();
      return;
    }
    const out = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    out.on('error', () => res.destroy());
    req.pipe(out);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const gate = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    down: false,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return gate;
}
