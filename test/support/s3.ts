// Embedded S3 for tests (local/embedded-s3.ts) with every request recorded:
// tests check the order of PUTs, parallel parts, and whether an upload was aborted.
import type { S3ObjectStoreOptions } from '../../functions/core/storage/s3.js';
import { startEmbeddedS3 } from '../../local/embedded-s3.js';

export interface RecordedRequest {
  method: string;
  /** Decoded path without the query, e.g. `/bucket/checkpoints/…/manifest.json`. */
  path: string;
  query: URLSearchParams;
}

export interface S3Fixture {
  endpoint: string;
  accessKey: string;
  secretKey: string;
  region: string;
  /** s3rver's storage directory. */
  dir: string;
  requests: RecordedRequest[];
  /** The most UploadPart requests that were being served at the same time. */
  peakConcurrentParts(): number;
  /** Ids of multipart uploads begun and neither completed nor aborted. */
  pendingUploads(bucket: string): string[];
  storeOptions(bucket: string, extra?: Partial<S3ObjectStoreOptions>): S3ObjectStoreOptions;
  stop(): Promise<void>;
}

export async function startS3(): Promise<S3Fixture> {
  const requests: RecordedRequest[] = [];
  let partsNow = 0;
  let partsPeak = 0;
  const s3 = await startEmbeddedS3({
    onRequest(req, res, url) {
      requests.push({ method: req.method ?? '', path: decodeURIComponent(url.pathname), query: url.searchParams });
      if (req.method === 'PUT' && url.searchParams.get('uploadId')) {
        partsPeak = Math.max(partsPeak, ++partsNow);
        res.once('finish', () => partsNow--);
      }
    },
  });
  const credentials = { accessKey: s3.accessKey, secretKey: s3.secretKey, region: s3.region };
  return {
    endpoint: s3.endpoint,
    ...credentials,
    dir: s3.dir,
    requests,
    peakConcurrentParts: () => partsPeak,
    pendingUploads: s3.pendingUploads,
    storeOptions: (bucket, extra = {}) => ({ endpoint: s3.endpoint, ...credentials, bucket, ...extra }),
    stop: s3.stop,
  };
}
