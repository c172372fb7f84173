// The S3 of the tests, with every request recorded: tests check the order of
// PUTs, parallel parts, and whether an upload was aborted. KCR_TEST_S3 picks
// the server: `s3rver` (the embedded one, the default) or `swift` (OpenStack
// Swift with s3api, behind a recording front); CI runs the S3 suites on both.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from 'minio';
import type { S3ObjectStoreOptions } from '../../functions/core/storage/s3.js';
import { startEmbeddedS3 } from '../../local/embedded-s3.js';
import { startS3Front } from '../../local/s3-front.js';
import type { S3Kind } from '../../local/s3-server.js';
import { startSwiftS3 } from '../../local/swift-s3.js';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface RecordedRequest {
  method: string;
  /** Decoded path without the query, e.g. `/bucket/checkpoints/…/manifest.json`. */
  path: string;
  query: URLSearchParams;
}

export interface S3Fixture {
  kind: S3Kind;
  endpoint: string;
  accessKey: string;
  secretKey: string;
  region: string;
  requests: RecordedRequest[];
  /** The most UploadPart requests that were being served at the same time. */
  peakConcurrentParts(): number;
  /** Ids of multipart uploads begun and neither completed nor aborted. */
  pendingUploads(bucket: string): Promise<string[]>;
  /** Answers the next `count` requests with `status`. */
  failNext(count: number, status: 500 | 503): void;
  storeOptions(bucket: string, extra?: Partial<S3ObjectStoreOptions>): S3ObjectStoreOptions;
  stop(): Promise<void>;
}

/**
 * Rings for the Swifts of this vitest worker, reused from file to file: a
 * worker runs one file at a time, and building them costs seconds of CPU.
 * In the repository's .state/, so no other checkout's tests share them.
 */
export function testRingsDir(): string {
  return join(REPO_ROOT, '.state', 'test-swift-rings', `worker-${process.env.VITEST_POOL_ID ?? process.pid}`);
}

/** How long a hook that starts Swift may take: its four Python servers take seconds of CPU, minutes on a loaded machine. */
export const SWIFT_START_TIMEOUT_MS = 180_000;

/** KCR_TEST_S3: which server the S3 suites run against (default s3rver). */
export function testS3Kind(): S3Kind {
  const kind = process.env.KCR_TEST_S3 ?? 's3rver';
  if (kind !== 'swift' && kind !== 's3rver') throw new Error(`KCR_TEST_S3 must be swift or s3rver, not ${kind}`);
  return kind;
}

/** Starts the server `kind` (default KCR_TEST_S3's); Swift missing fails with the packages to install. */
export async function startS3(kind: S3Kind = testS3Kind()): Promise<S3Fixture> {
  const requests: RecordedRequest[] = [];
  let partsNow = 0;
  let partsPeak = 0;
  const onRequest: Parameters<typeof startS3Front>[1] = (req, res, url) => {
    requests.push({ method: req.method ?? '', path: decodeURIComponent(url.pathname), query: url.searchParams });
    if (req.method === 'PUT' && url.searchParams.get('uploadId')) {
      partsPeak = Math.max(partsPeak, ++partsNow);
      res.once('close', () => partsNow--);
    }
  };
  const common = {
    kind,
    requests,
    peakConcurrentParts: () => partsPeak,
  };
  if (kind === 's3rver') {
    const s3 = await startEmbeddedS3({ onRequest });
    const credentials = { accessKey: s3.accessKey, secretKey: s3.secretKey, region: s3.region };
    return {
      ...common,
      endpoint: s3.endpoint,
      ...credentials,
      // s3rver has no ListMultipartUploads: its upload directories say.
      pendingUploads: async (bucket) => s3.pendingUploads(bucket),
      failNext: s3.failNext,
      storeOptions: (bucket, extra = {}) => ({ endpoint: s3.endpoint, ...credentials, bucket, ...extra }),
      stop: s3.stop,
    };
  }
  const swift = await startSwiftS3({ ringsDir: testRingsDir() });
  const front = await startS3Front(swift.endpoint, onRequest).catch(async (err: unknown) => {
    await swift.stop();
    throw err;
  });
  const credentials = { accessKey: swift.accessKey, secretKey: swift.secretKey, region: swift.region };
  const url = new URL(swift.endpoint);
  // Straight to Swift: the listing is not one of the test's requests.
  const client = new Client({ endPoint: url.hostname, port: Number(url.port), useSSL: false, ...credentials });
  return {
    ...common,
    endpoint: front.endpoint,
    ...credentials,
    async pendingUploads(bucket) {
      const ids: string[] = [];
      for await (const u of client.listIncompleteUploads(bucket, '', true) as AsyncIterable<{ uploadId: string }>) ids.push(u.uploadId);
      return ids;
    },
    failNext: front.failNext,
    storeOptions: (bucket, extra = {}) => ({ endpoint: front.endpoint, ...credentials, bucket, ...extra }),
    async stop() {
      await front.stop();
      await swift.stop();
    },
  };
}
