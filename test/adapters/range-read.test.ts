// ObjectStore.getRange over real S3 HTTP (the embedded s3rver): the bytes of
// a range, a range past the end cut short, a missing key ObjectNotFoundError.
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ObjectNotFoundError } from '../../functions/core/storage/object-store.js';
import { S3ObjectStore } from '../../functions/core/storage/s3.js';
import { startEmbeddedS3, type EmbeddedS3 } from '../../local/embedded-s3.js';

describe('range reads', () => {
  let s3: EmbeddedS3;
  let store: S3ObjectStore;
  const body = Buffer.from(Array.from({ length: 100_000 }, (_, i) => i % 251));
  beforeAll(async () => {
    s3 = await startEmbeddedS3();
    store = new S3ObjectStore({ endpoint: s3.endpoint, accessKey: s3.accessKey, secretKey: s3.secretKey, bucket: 'kcr-range' });
    await store.ensureBucket();
    await store.upload('a.tar', Readable.from([body]));
  });
  afterAll(async () => {
    await s3?.stop();
  });

  it('reads exactly the bytes asked for', async () => {
    expect(await store.getRange('a.tar', 0, 512)).toEqual(body.subarray(0, 512));
    expect(await store.getRange('a.tar', 77_777, 1000)).toEqual(body.subarray(77_777, 78_777));
    expect(await store.getRange('a.tar', 99_990, 100)).toEqual(body.subarray(99_990));
    expect(await store.getRange('a.tar', 5, 0)).toEqual(Buffer.alloc(0));
  });

  it('says a missing object is missing', async () => {
    await expect(store.getRange('nothing.tar', 0, 10)).rejects.toBeInstanceOf(ObjectNotFoundError);
  });
});
