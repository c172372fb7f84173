// Embedded s3rver on loopback: the S3 of the local mode, the tests and the
// benchmarks. s3rver 3.7 answers AbortMultipartUpload with 405; this server
// implements it by removing the upload's parts, as S3 and MinIO do, so an
// aborted upload leaves nothing behind.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';

export interface EmbeddedS3Options {
  /** Where objects are kept (default: a new temp directory, removed on stop). */
  dir?: string;
  port?: number;
  /** Sees every request before s3rver does (recording, counting). */
  onRequest?: (req: IncomingMessage, res: ServerResponse, url: URL) => void;
}

export interface EmbeddedS3 {
  endpoint: string;
  accessKey: string;
  secretKey: string;
  region: string;
  dir: string;
  /** Ids of multipart uploads begun and neither completed nor aborted. */
  pendingUploads(bucket: string): string[];
  /** Answers the next `count` requests with `status` and an S3 error body (fault injection for tests). */
  failNext(count: number, status: 500 | 503): void;
  stop(): Promise<void>;
}

// s3rver keeps each upload's parts in <dir>/<bucket>/._S3rver_uploads/<uploadId>/.
const uploadsDir = (dir: string, bucket: string) => join(dir, bucket, '._S3rver_uploads');

export async function startEmbeddedS3(options: EmbeddedS3Options = {}): Promise<EmbeddedS3> {
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'kcr-s3-'));
  mkdirSync(dir, { recursive: true });
  const server = new S3rver({ address: '127.0.0.1', port: options.port ?? 0, directory: dir, silent: true });
  const { port } = await server.run();
  const http = server.httpServer;
  const s3rverListeners = http.listeners('request') as ((req: IncomingMessage, res: ServerResponse) => void)[];
  http.removeAllListeners('request');
  let failures: { count: number; status: 500 | 503 } = { count: 0, status: 503 };
  http.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://s3');
    options.onRequest?.(req, res, url);
    if (failures.count > 0) {
      failures.count--;
      const code = failures.status === 503 ? 'ServiceUnavailable' : 'InternalError';
      req.resume();
      res.writeHead(failures.status, { 'content-type': 'application/xml' }).end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>injected failure</Message></Error>`);
      return;
    }
    const uploadId = url.searchParams.get('uploadId');
    if (req.method === 'DELETE' && uploadId) {
      const bucket = decodeURIComponent(url.pathname).split('/')[1] ?? '';
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
  return {
    endpoint: `http://127.0.0.1:${port}`,
    // s3rver's fixed credentials.
    accessKey: 'S3RVER',
    secretKey: 'S3RVER',
    region: 'us-east-1',
    dir,
    pendingUploads: (bucket) => (existsSync(uploadsDir(dir, bucket)) ? readdirSync(uploadsDir(dir, bucket)) : []),
    failNext(count, status) {
      failures = { count, status };
    },
    async stop() {
      http.closeAllConnections();
      await server.close();
      if (ownDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
