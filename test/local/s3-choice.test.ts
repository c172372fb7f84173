// The local mode's choice of S3 (local/s3-server.ts): `--s3` and KCR_S3_ENDPOINT.
import { describe, expect, it } from 'vitest';
import { resolveS3Kind, s3Target } from '../../local/s3-server.js';

describe('the local S3 choice', () => {
  it('auto is Swift when installed, s3rver otherwise; an explicit choice stays', () => {
    expect(resolveS3Kind('auto', true)).toBe('swift');
    expect(resolveS3Kind('auto', false)).toBe('s3rver');
    expect(resolveS3Kind('swift', false)).toBe('swift');
    expect(resolveS3Kind('s3rver', true)).toBe('s3rver');
  });

  it('KCR_S3_ENDPOINT names an external S3 with the functions’ own credential variables', () => {
    expect(s3Target('auto', {})).toBe('auto');
    expect(s3Target('swift', { KCR_S3_ENDPOINT: ' ' })).toBe('swift');
    expect(s3Target('auto', { KCR_S3_ENDPOINT: 'http://127.0.0.1:9000', KCR_S3_ACCESS_KEY: 'minio', KCR_S3_SECRET_KEY: 'minio123' })).toEqual({
      endpoint: 'http://127.0.0.1:9000',
      accessKey: 'minio',
      secretKey: 'minio123',
      region: 'us-east-1',
    });
    expect(s3Target('auto', { KCR_S3_ENDPOINT: 'https://s3.example', KCR_S3_ACCESS_KEY: 'a', KCR_S3_SECRET_KEY: 'b', KCR_S3_REGION: 'eu-west-3' })).toMatchObject({ region: 'eu-west-3' });
  });

  it("ignores the S3 of a local mode's env file, sourced for the CLI", () => {
    const sourced = { KCR_S3_ENDPOINT: 'http://127.0.0.1:33601', KCR_S3_ACCESS_KEY: 'test:tester', KCR_S3_SECRET_KEY: 'testing123', KCR_LOCAL_ENV_FILE: '/repo/.state/run/env' };
    expect(s3Target('auto', sourced)).toBe('auto');
    expect(s3Target('s3rver', sourced)).toBe('s3rver');
  });

  it('refuses an external S3 without credentials, a non-URL, or one that --s3 contradicts', () => {
    expect(() => s3Target('auto', { KCR_S3_ENDPOINT: 'http://127.0.0.1:9000' })).toThrow(/needs KCR_S3_ACCESS_KEY and KCR_S3_SECRET_KEY/);
    expect(() => s3Target('auto', { KCR_S3_ENDPOINT: 'minio:9000', KCR_S3_ACCESS_KEY: 'a', KCR_S3_SECRET_KEY: 'b' })).toThrow(/must be an http\(s\) URL/);
    expect(() => s3Target('s3rver', { KCR_S3_ENDPOINT: 'http://127.0.0.1:9000', KCR_S3_ACCESS_KEY: 'a', KCR_S3_SECRET_KEY: 'b' })).toThrow(/--s3 s3rver and KCR_S3_ENDPOINT/);
  });
});
