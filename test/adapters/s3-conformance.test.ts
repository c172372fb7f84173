// What kcr relies on from S3, checked through its own adapter (S3ObjectStore)
// on every server kcr is tested with: OpenStack Swift with s3api (a production
// object store) and the embedded s3rver. kcr uses no range GETs and no
// conditional writes (functions/core/storage/s3.ts); it does use multipart
// uploads with parallel parts, aborts, listings of more than one page, and
// reads its commit markers (manifest.json, image.json) right after writing them.
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import pLimit from 'p-limit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3ObjectStore } from '../../functions/core/storage/s3.js';
import type { S3Kind } from '../../local/s3-server.js';
import { swiftAvailable } from '../support/binaries.js';
import { startS3, SWIFT_START_TIMEOUT_MS, type S3Fixture } from '../support/s3.js';

const MiB = 1024 * 1024;
const SERVERS: S3Kind[] = ['s3rver', ...(swiftAvailable() ? (['swift'] as const) : [])];

async function sha256Of(stream: Readable): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of stream) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), size };
}

/** Incompressible bytes in 1 MiB chunks, failing `failAt` bytes in when given. */
function body(total: number, failAt?: number): Readable {
  return Readable.from(
    (async function* () {
      for (let sent = 0; sent < total; sent += MiB) {
        if (failAt !== undefined && sent >= failAt) throw new Error('source died midway');
        yield randomBytes(Math.min(MiB, total - sent));
      }
    })(),
  );
}

describe.each(SERVERS)('S3 as kcr uses it, on %s', (kind) => {
  let s3: S3Fixture;
  let store: S3ObjectStore;

  beforeAll(async () => {
    s3 = await startS3(kind);
    store = new S3ObjectStore(s3.storeOptions('kcr-conformance', { partSize: 5 * MiB, partsInFlight: 4 }));
    await store.ensureBucket();
  }, SWIFT_START_TIMEOUT_MS);
  afterAll(async () => s3?.stop());

  it('stores a multipart upload sent in parallel parts byte for byte', async () => {
    const before = s3.requests.length;
    const result = await store.upload('multi/archive.tar', body(23 * MiB + 5));
    const parts = s3.requests.slice(before).filter((r) => r.method === 'PUT' && r.query.has('uploadId'));
    expect(parts).toHaveLength(5);
    expect(s3.peakConcurrentParts()).toBeGreaterThan(1);
    expect(s3.peakConcurrentParts()).toBeLessThanOrEqual(4);
    expect(await sha256Of(await store.getStream('multi/archive.tar'))).toEqual({ sha256: result.sha256, size: 23 * MiB + 5 });
    expect((await store.stat('multi/archive.tar'))?.size).toBe(23 * MiB + 5);
    expect(await s3.pendingUploads('kcr-conformance')).toEqual([]);
  });

  it('aborts a multipart upload whose source fails: no object, no upload left', async () => {
    await expect(store.upload('multi/broken.tar', body(30 * MiB, 12 * MiB))).rejects.toThrow(/source died midway/);
    expect(await store.stat('multi/broken.tar')).toBeUndefined();
    expect(await s3.pendingUploads('kcr-conformance')).toEqual([]);
  });

  it(
    'lists more than 1,000 keys across pages, each once',
    async () => {
      const keys = Array.from({ length: 1_105 }, (_, i) => `events/2026/11/30/${String(i).padStart(5, '0')}.json`);
      const limit = pLimit(16);
      await Promise.all(keys.map((key, i) => limit(() => store.putJson(key, { i }))));
      const before = s3.requests.length;
      const listed: string[] = [];
      for await (const o of store.list('events/2026/11/30/')) listed.push(o.key);
      expect(listed).toEqual(keys);
      const pages = s3.requests.slice(before).filter((r) => r.query.get('list-type') === '2');
      expect(pages.length).toBeGreaterThanOrEqual(2);
      expect(pages.slice(1).every((r) => r.query.has('continuation-token'))).toBe(true);
    },
    SWIFT_START_TIMEOUT_MS,
  );

  it('reads a commit marker right after writing it, and its replacement right after replacing it', async () => {
    for (let attempt = 0; attempt < 20; attempt++) {
      const key = `checkpoints/ns/Deployment/app/c/ck-${attempt}/manifest.json`;
      await store.putJson(key, { attempt, state: 'stored' });
      expect(await store.getJson(key)).toEqual({ attempt, state: 'stored' });
      expect(await store.stat(key)).toBeDefined();
      await store.putJson(key, { attempt, state: 'built' });
      expect(await store.getJson(key)).toEqual({ attempt, state: 'built' });
    }
    const listed: string[] = [];
    for await (const o of store.list('checkpoints/ns/Deployment/app/c/')) listed.push(o.key);
    expect(listed).toHaveLength(20);
  });

  it('removes objects, a missing one included, and a removed multipart object reads as missing', async () => {
    await store.remove('multi/archive.tar');
    await store.remove('multi/archive.tar');
    expect(await store.stat('multi/archive.tar')).toBeUndefined();
    const missing: string[] = [];
    for await (const o of store.list('multi/')) missing.push(o.key);
    expect(missing).toEqual([]);
  });
});
