// The stored records: each written by its writer reads back as written, at the
// key layout.ts gives it; absent, torn or misshapen ones read as undefined.
import { describe, expect, it } from 'vitest';
import { artifactKey, disruptionKey, type CheckpointLocation } from '../../functions/core/storage/layout.js';
import {
  BadRecord,
  MANIFEST_API_VERSION,
  manifestNames,
  readDisruptions,
  readImage,
  readManifest,
  readPrune,
  writeBad,
  writeDisruption,
  writeImage,
  writeManifest,
  writePrune,
  type CheckpointManifest,
  type DisruptionRecord,
  type ImageRecord,
} from '../../functions/core/storage/records.js';
import { TransientError } from '../../functions/core/runtime/errors.js';
import { MemoryStore } from '../support/memory-store.js';

const ID = '20261123T181504Z-0123456789ab';
const LOC: CheckpointLocation = { namespace: 'shop', workload: { kind: 'Deployment', name: 'cart' }, container: 'app', id: ID };
const DIGEST = `sha256:${'d'.repeat(64)}`;

const manifest: CheckpointManifest = {
  apiVersion: MANIFEST_API_VERSION,
  kind: 'CheckpointManifest',
  data: {
    id: ID,
    namespace: 'shop',
    workload: { kind: 'Deployment', name: 'cart' },
    pod: 'cart-7d9f8-abcde',
    podUid: 'uid-1',
    container: 'app',
    node: 'node-a',
    archivePath: '/var/lib/kubelet/checkpoints/checkpoint-cart-7d9f8-abcde_shop-app-2026-11-23T18:15:04Z.tar',
    checkpointedAt: '2026-11-23T18:15:04Z',
    artifact: { uri: `s3://kcr-checkpoints/${artifactKey(LOC, 'archive')}`, size: 10, sha256: 'a'.repeat(64) },
  },
  archive: {
    rootfsImageName: 'docker.io/library/redis:7',
    runtime: 'runc',
    container: { pod: 'cart-7d9f8-abcde', namespace: 'shop', podUid: 'uid-1', container: 'app' },
    criuDumpStats: { decoded: false, reason: 'not a CRIU stats image (magic mismatch)', bytes: 12 },
    entries: 5,
    checkpointFiles: 3,
    topLevel: ['checkpoint', 'config.dump', 'spec.dump'],
  },
  source: { node: 'node-a', archivePath: '/var/lib/kubelet/checkpoints/checkpoint-cart-7d9f8-abcde_shop-app-2026-11-23T18:15:04Z.tar' },
  storedAt: '2026-11-23T18:15:09Z',
};

const image: ImageRecord = {
  reference: `kcr.local/kcr/shop/deployment-cart-app@${DIGEST}`,
  digest: DIGEST,
  size: 900,
  mediaType: 'application/vnd.oci.image.index.v1+json',
  repository: 'kcr/shop/deployment-cart-app',
  host: 'kcr.local',
  target: 'oci-layout',
  tag: ID,
  indexDigest: DIGEST,
  manifestDigest: `sha256:${'e'.repeat(64)}`,
  configDigest: `sha256:${'f'.repeat(64)}`,
  layer: { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: `sha256:${'a'.repeat(64)}`, size: 10 },
};

const disruption: DisruptionRecord = {
  namespace: 'shop',
  workload: { kind: 'Deployment', name: 'cart' },
  pod: 'cart-7d9f8-abcde',
  podUid: 'uid-1',
  templateHash: '7d9f8',
  reason: 'Evicted',
  at: '2026-11-23T18:20:00Z',
};

/** Each artifact record: its reader, its writer, a valid record, and the file it lives in. */
const artifactRecords = [
  { name: 'manifest.json', file: 'manifest', read: readManifest, write: writeManifest, record: manifest, misshapen: { ...manifest, data: { ...manifest.data, id: undefined } } },
  { name: 'image.json', file: 'image', read: readImage, write: writeImage, record: image, misshapen: { ...image, reference: 'kcr.local/kcr/shop/deployment-cart-app:latest' } },
  { name: 'prune.json', file: 'prune', read: readPrune, write: writePrune, record: image, misshapen: { ...image, layer: undefined } },
] as const;

describe.each(artifactRecords)('$name', ({ file, read, write, record, misshapen }) => {
  it('reads back as written, at the key layout.ts gives it', async () => {
    const store = new MemoryStore();
    await (write as (s: MemoryStore, l: CheckpointLocation, r: typeof record) => Promise<void>)(store, LOC, record);
    expect(store.writes).toEqual([artifactKey(LOC, file)]);
    expect(await read(store, LOC)).toEqual(record);
  });

  it('is undefined when absent, not JSON, or of another shape', async () => {
    const store = new MemoryStore();
    expect(await read(store, LOC)).toBeUndefined();
    store.put(artifactKey(LOC, file), Buffer.from('{"id":'));
    expect(await read(store, LOC)).toBeUndefined();
    await store.putJson(artifactKey(LOC, file), misshapen);
    expect(await read(store, LOC)).toBeUndefined();
    await store.putJson(artifactKey(LOC, file), [record]);
    expect(await read(store, LOC)).toBeUndefined();
  });

  it('is never written in a shape its reader would not accept', async () => {
    const store = new MemoryStore();
    await expect((write as (s: MemoryStore, l: CheckpointLocation, r: unknown) => Promise<void>)(store, LOC, misshapen)).rejects.toThrow();
    expect(store.writes).toEqual([]);
  });
});

describe('manifest.json', () => {
  it('is read only in the shape store-artifact writes: the stored data under `data`', async () => {
    const store = new MemoryStore();
    await store.putJson(artifactKey(LOC, 'manifest'), manifest.data);
    expect(await readManifest(store, LOC)).toBeUndefined();
    await store.putJson(artifactKey(LOC, 'manifest'), { ...manifest, data: undefined, checkpoint: manifest.data });
    expect(await readManifest(store, LOC)).toBeUndefined();
  });

  it('names the checkpoint at a location only when id, namespace, workload and container all agree', () => {
    expect(manifestNames(manifest, LOC)).toBe(true);
    expect(manifestNames(manifest, { ...LOC, id: '20261123T181504Z-0123456789ac' })).toBe(false);
    expect(manifestNames(manifest, { ...LOC, namespace: 'other' })).toBe(false);
    expect(manifestNames(manifest, { ...LOC, container: 'sidecar' })).toBe(false);
    expect(manifestNames(manifest, { ...LOC, workload: { kind: 'StatefulSet', name: 'cart' } })).toBe(false);
    expect(manifestNames(manifest, { ...LOC, workload: { kind: 'Deployment', name: 'carts' } })).toBe(false);
  });

  it('passes on a read failure other than a missing or torn object', async () => {
    const store = new (class extends MemoryStore {
      override getJson(key: string): Promise<unknown> {
        return Promise.reject(new TransientError(`reading ${key} failed: ECONNREFUSED`));
      }
    })();
    await expect(readManifest(store, LOC)).rejects.toThrow(TransientError);
  });
});

describe('bad.json', () => {
  it('is written at the key layout.ts gives it, in its shape', async () => {
    const store = new MemoryStore();
    const record = { id: ID, reason: 'crashed on restore', markedAt: '2026-11-23T19:00:00Z' };
    await writeBad(store, LOC, record);
    expect(store.writes).toEqual([artifactKey(LOC, 'bad')]);
    expect(BadRecord.parse(await store.getJson(artifactKey(LOC, 'bad')))).toEqual(record);
    await expect(writeBad(store, LOC, { ...record, reason: undefined } as unknown as BadRecord)).rejects.toThrow();
  });
});

describe('disruption records', () => {
  const key = (pod: string) => disruptionKey('shop', 'Deployment', 'cart', pod);

  it('read back as written, at the key layout.ts gives them, only the workload’s own', async () => {
    const store = new MemoryStore();
    const claimed = { ...disruption, pod: 'cart-7d9f8-fghij', podUid: 'uid-2', claimedBy: { pod: 'cart-7d9f8-klmno', uid: 'uid-3' } };
    await writeDisruption(store, disruption);
    await writeDisruption(store, claimed);
    await writeDisruption(store, { ...disruption, workload: { kind: 'Deployment', name: 'other' } });
    expect(store.writes.slice(0, 2)).toEqual([key(disruption.pod), key(claimed.pod)]);
    expect(await readDisruptions(store, 'shop', 'Deployment', 'cart')).toEqual([disruption, claimed]);
  });

  it('skip what is not JSON or not a disruption record', async () => {
    const store = new MemoryStore();
    await writeDisruption(store, disruption);
    store.put(key('cart-7d9f8-torn1'), Buffer.from('{"pod":'));
    await store.putJson(key('cart-7d9f8-shape'), { ...disruption, templateHash: 7 });
    expect(await readDisruptions(store, 'shop', 'Deployment', 'cart')).toEqual([disruption]);
    expect(await readDisruptions(store, 'shop', 'StatefulSet', 'cart')).toEqual([]);
  });
});
