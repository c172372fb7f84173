// The embedded s3rver (local/embedded-s3.ts): credentials every S3 client
// accepts, and on Node 20 the very continuation tokens s3rver makes with
// OpenSSL's legacy provider (test/cli/events-paging.test.ts lists through them).
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3ObjectStore } from '../../functions/core/storage/s3.js';
import { EMBEDDED_S3_CREDENTIALS, startEmbeddedS3, type EmbeddedS3 } from '../../local/embedded-s3.js';

describe('embedded S3', () => {
  let s3: EmbeddedS3;
  beforeAll(async () => {
    s3 = await startEmbeddedS3();
  });
  afterAll(async () => {
    await s3?.stop();
  });

  it('has credentials mc and MinIO accept (access key ≥ 3, secret key ≥ 8 characters), usable in a URL', () => {
    expect(s3).toMatchObject(EMBEDDED_S3_CREDENTIALS);
    expect(s3.accessKey.length).toBeGreaterThanOrEqual(3);
    expect(s3.secretKey.length).toBeGreaterThanOrEqual(8);
    for (const k of [s3.accessKey, s3.secretKey]) expect(k).toMatch(/^[A-Za-z0-9]+$/);
  });

  it("serves those credentials, and no longer s3rver's S3RVER/S3RVER", async () => {
    const options = { endpoint: s3.endpoint, bucket: 'kcr-credentials' };
    const store = new S3ObjectStore({ ...options, accessKey: s3.accessKey, secretKey: s3.secretKey });
    await store.ensureBucket();
    await store.putJson('x.json', { ok: true });
    expect(await store.getJson('x.json')).toEqual({ ok: true });
    const old = new S3ObjectStore({ ...options, accessKey: 'S3RVER', secretKey: 'S3RVER' });
    await expect(old.getJson('x.json')).rejects.toThrow(/InvalidAccessKeyId/);
  });

  it("makes DES-CBC tokens byte for byte as OpenSSL's legacy provider does, and leaves other ciphers alone", () => {
    // s3rver's key and IV layout (lib/controllers/bucket.js).
    const key = Buffer.alloc(8, 'S3RVER', 'utf8');
    const iv = Buffer.from('d5a1b2c3d4e5f607', 'hex');
    const text = 'us-east-1/kcr-checkpoints/events/2026/11/23/18/2026-11-23T181505.000Z-ev-1.json';
    const script = `const c = require('node:crypto'); const x = c.createCipheriv('des', Buffer.from('${key.toString('hex')}', 'hex'), Buffer.from('${iv.toString('hex')}', 'hex')); process.stdout.write(Buffer.concat([x.update(${JSON.stringify(text)}, 'utf8'), x.final()]).toString('hex'));`;
    const legacy = execFileSync(process.execPath, ['--openssl-legacy-provider', '-e', script], { encoding: 'utf8' });
    const cipher = crypto.createCipheriv('des', key, iv);
    const token = Buffer.concat([cipher.update(text, 'utf8'), cipher.final()]);
    expect(token.toString('hex')).toBe(legacy);
    const decipher = crypto.createDecipheriv('des', key, iv);
    expect(Buffer.concat([decipher.update(token), decipher.final()]).toString('utf8')).toBe(text);
    // Another 8-byte-block cipher is still OpenSSL's answer, not a stand-in.
    expect(() => crypto.createCipheriv('bf-cbc', Buffer.alloc(16), Buffer.alloc(8))).toThrow(/unsupported/);
  });
});
