import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ObjectNotFoundError } from '../../functions/core/storage/object-store.js';
import { S3ObjectStore } from '../../functions/core/storage/s3.js';
import { TransientError } from '../../functions/core/runtime/errors.js';
import { startS3, testS3Kind, type S3Fixture } from '../support/s3.js';

const MiB = 1024 * 1024;

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** `total` bytes in 1 MiB chunks; throws `failAt` bytes in when given. */
function generated(total: number, failAt?: number): { stream: Readable; sha256: () => string } {
  const hash = createHash('sha256');
  async function* gen() {
    for (let sent = 0; sent < total;) {
      if (failAt !== undefined && sent >= failAt) throw new Error('source died midway');
      const chunk = randomBytes(Math.min(MiB, total - sent));
      hash.update(chunk);
      sent += chunk.length;
      yield chunk;
    }
  }
  return { stream: Readable.from(gen()), sha256: () => hash.digest('hex') };
}

describe(`S3ObjectStore against ${testS3Kind()}`, () => {
  let s3: S3Fixture;
  let store: S3ObjectStore;
  const bucket = 'kcr-test';

  beforeAll(async () => {
    s3 = await startS3();
    store = new S3ObjectStore(s3.storeOptions(bucket, { partSize: 5 * MiB, partsInFlight: 2 }));
    await store.ensureBucket();
  });
  afterAll(async () => s3?.stop());

  it('creates the bucket once and tolerates a second ensureBucket', async () => {
    await store.ensureBucket();
    expect(s3.requests.filter((r) => r.method === 'PUT' && r.path === `/${bucket}`)).toHaveLength(1);
  });

  it('round-trips JSON, and reports missing keys as undefined or ObjectNotFoundError', async () => {
    await store.putJson('a/b.json', { hello: 'world' });
    expect(await store.getJson('a/b.json')).toEqual({ hello: 'world' });
    expect(await store.getJson('a/missing.json')).toBeUndefined();
    expect(await store.stat('a/missing.json')).toBeUndefined();
    await expect(store.getStream('a/missing.json')).rejects.toBeInstanceOf(ObjectNotFoundError);
    expect((await store.stat('a/b.json'))?.size).toBeGreaterThan(0);
  });

  it('lists a prefix and removes objects', async () => {
    await store.putJson('l/1.json', 1);
    await store.putJson('l/2/3.json', 3);
    const keys: string[] = [];
    for await (const o of store.list('l/')) keys.push(o.key);
    expect(keys.sort()).toEqual(['l/1.json', 'l/2/3.json']);
    await store.remove('l/1.json');
    await store.remove('l/1.json'); // idempotent
    expect(await store.stat('l/1.json')).toBeUndefined();
  });

  it('uploads a body smaller than a part in one PUT, with sha256 and size', async () => {
    const before = s3.requests.length;
    const src = generated(3 * MiB + 17);
    const result = await store.upload('small.bin', src.stream);
    expect(result).toEqual({ size: 3 * MiB + 17, sha256: src.sha256() });
    const sent = s3.requests.slice(before);
    expect(sent.some((r) => r.query.has('uploads'))).toBe(false);
    expect(
      createHash('sha256')
        .update(await readAll(await store.getStream('small.bin')))
        .digest('hex'),
    ).toBe(result.sha256);
  });

  it('uploads a large body in parallel parts, at most partsInFlight at once', async () => {
    const before = s3.requests.length;
    const src = generated(23 * MiB + 5);
    const progress: number[] = [];
    const result = await store.upload('large.bin', src.stream, { onProgress: (n) => progress.push(n) });
    expect(result.size).toBe(23 * MiB + 5);
    expect(result.sha256).toBe(src.sha256());
    const parts = s3.requests.slice(before).filter((r) => r.method === 'PUT' && r.query.has('uploadId'));
    expect(parts.length).toBe(5); // four parts of 5 MiB (whole 1 MiB chunks) and the 3 MiB rest
    expect(s3.peakConcurrentParts()).toBeLessThanOrEqual(2);
    expect(progress.at(-1)).toBe(result.size);
    expect(
      createHash('sha256')
        .update(await readAll(await store.getStream('large.bin')))
        .digest('hex'),
    ).toBe(result.sha256);
    expect(await s3.pendingUploads(bucket)).toEqual([]);
  });

  it('aborts the multipart upload when the body fails midway, leaving nothing', async () => {
    const before = s3.requests.length;
    const src = generated(40 * MiB, 17 * MiB);
    await expect(store.upload('broken.bin', src.stream)).rejects.toThrow('source died midway');
    const sent = s3.requests.slice(before);
    expect(sent.some((r) => r.method === 'PUT' && r.query.has('uploadId'))).toBe(true);
    expect(sent.some((r) => r.method === 'DELETE' && r.query.has('uploadId'))).toBe(true);
    expect(sent.some((r) => r.method === 'POST' && r.query.has('uploadId'))).toBe(false);
    expect(await store.stat('broken.bin')).toBeUndefined();
    expect(await s3.pendingUploads(bucket)).toEqual([]);
  });

  it('maps an unreachable endpoint to TransientError', async () => {
    const dead = new S3ObjectStore({ endpoint: 'http://127.0.0.1:1', accessKey: 'x', secretKey: 'y', bucket });
    await expect(dead.stat('k')).rejects.toBeInstanceOf(TransientError);
    await expect(dead.upload('k', Readable.from([Buffer.from('x')]))).rejects.toBeInstanceOf(TransientError);
    await expect(dead.ensureBucket()).rejects.toBeInstanceOf(TransientError);
  });

  it('rejects a part size below the S3 minimum', () => {
    expect(() => new S3ObjectStore(s3.storeOptions(bucket, { partSize: MiB }))).toThrow(/minimum/);
  });
});
