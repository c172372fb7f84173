// Embedded s3rver on loopback (random port, temp directory) for tests and the
// benchmarks. Two additions, both outside s3rver's own code: every request is
// recorded (tests check the order of PUTs and whether an upload was aborted),
// and AbortMultipartUpload, which s3rver 3.7 answers with 405, is implemented
// here by removing the upload's parts, as S3 and MinIO do.
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';
import type { S3ObjectStoreOptions } from '../../functions/adapters/s3.js';

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

// s3rver keeps each upload's parts in <dir>/<bucket>/._S3rver_uploads/<uploadId>/.
const uploadsDir = (dir: string, bucket: string) => join(dir, bucket, '._S3rver_uploads');

export async function startS3(): Promise<S3Fixture> {
  const dir = mkdtempSync(join(tmpdir(), 'kcr-s3-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, directory: dir, silent: true });
  const { port } = await server.run();
  const requests: RecordedRequest[] = [];
  let partsNow = 0;
  let partsPeak = 0;
  const http = server.httpServer;
  const s3rverListeners = http.listeners('request') as ((req: IncomingMessage, res: ServerResponse) => void)[];
  http.removeAllListeners('request');
  http.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://s3');
    const path = decodeURIComponent(url.pathname);
    requests.push({ method: req.method ?? '', path, query: url.searchParams });
    const uploadId = url.searchParams.get('uploadId');
    if (req.method === 'PUT' && uploadId) {
      partsPeak = Math.max(partsPeak, ++partsNow);
      res.once('finish', () => partsNow--);
    }
    if (req.method === 'DELETE' && uploadId) {
      const bucket = path.split('/')[1] ?? '';
      const upload = join(uploadsDir(dir, bucket), uploadId.replace(/[^0-9a-f]/g, ''));
      if (!existsSync(upload)) {
        res.writeHead(404, { 'content-type': 'application/xml' }).end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist.</Message></Error>');
        return;
      }
      rmSync(upload, { recursive: true, force: true });
      res.writeHead(204).end();
      return;
    }
    for (const listener of s3rverListeners) listener.call(http, req, res);
  });
  const endpoint = `http://127.0.0.1:${port}`;
  const credentials = { accessKey: 'S3RVER', secretKey: 'S3RVER', region: 'us-east-1' };
  return {
    endpoint,
    ...credentials,
    dir,
    requests,
    peakConcurrentParts: () => partsPeak,
    pendingUploads: (bucket) => (existsSync(uploadsDir(dir, bucket)) ? readdirSync(uploadsDir(dir, bucket)) : []),
    storeOptions: (bucket, extra = {}) => ({ endpoint, ...credentials, bucket, ...extra }),
    async stop() {
      http.closeAllConnections();
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
