// Embedded s3rver on loopback: the S3 of the local mode, the tests and the
// benchmarks. s3rver 3.7 answers AbortMultipartUpload with 405; this server
// implements it by removing the upload's parts, as S3 and MinIO do, so an
// aborted upload leaves nothing behind. It also pages ListObjectsV2 on Node 20
// (singleDesFromTripleDes) and has credentials every S3 client takes.
import crypto from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TransformOptions } from 'node:stream';
import S3rver from 's3rver';

interface EmbeddedS3Options {
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

/**
 * s3rver's own key pair, S3RVER/S3RVER, is too short for MinIO's client `mc`
 * (and MinIO), which want a secret key of 8 characters. These have the shape of
 * AWS keys (20 and 40 alphanumerics), which every S3 client takes, also inside
 * a URL (`MC_HOST_local=http://KEY:SECRET@127.0.0.1:PORT`).
 */
export const EMBEDDED_S3_CREDENTIALS = { accessKey: 'KCRLOCALS3ACCESSKEY0', secretKey: 'kcrLocalS3SecretKeyNotSecretOnLoopback00' } as const;

/** The part of s3rver's account registry (lib/models/account.js, not exported by the package) that holds key pairs. */
interface S3rverAccount {
  createKeyPair(accessKeyId: string, secretAccessKey: string): void;
  revokeAccessKey(accessKeyId: string): void;
}

function useEmbeddedCredentials(): void {
  // The registry is s3rver's module state: the same key pair for every server of the process.
  const { DUMMY_ACCOUNT } = createRequire(import.meta.url)('s3rver/lib/models/account.js') as { DUMMY_ACCOUNT: S3rverAccount };
  DUMMY_ACCOUNT.revokeAccessKey('S3RVER');
  DUMMY_ACCOUNT.createKeyPair(EMBEDDED_S3_CREDENTIALS.accessKey, EMBEDDED_S3_CREDENTIALS.secretKey);
}

let singleDesServed = false;

/**
 * s3rver encrypts its ListObjectsV2 continuation tokens with single DES, which
 * OpenSSL 3 (Node 17 and later) keeps in its legacy provider: every listing of
 * more than one page (1,000 keys) answered 500. DES-EDE3 with one key repeated
 * three times is single DES (encrypt, decrypt, encrypt with the same key) and
 * is in OpenSSL's default provider, so DES-CBC is served that way, in the
 * process that runs s3rver: the tokens are byte for byte those of the legacy
 * provider, without `--openssl-legacy-provider` on every process that starts
 * the embedded S3 (vitest workers, the local mode, the benchmarks). Nothing
 * else changes: any other cipher goes to OpenSSL as asked.
 */
function singleDesFromTripleDes(): void {
  if (singleDesServed) return;
  singleDesServed = true;
  const asTripleDes = (algorithm: string, key: crypto.CipherKey): [string, crypto.CipherKey] =>
    /^des(-cbc)?$/i.test(algorithm) && Buffer.isBuffer(key) && key.length === 8 ? ['des-ede3-cbc', Buffer.concat([key, key, key])] : [algorithm, key];
  const { createCipheriv, createDecipheriv } = crypto;
  crypto.createCipheriv = ((algorithm: string, key: crypto.CipherKey, iv: crypto.BinaryLike | null, options?: TransformOptions) =>
    createCipheriv(...asTripleDes(algorithm, key), iv, options)) as typeof crypto.createCipheriv;
  crypto.createDecipheriv = ((algorithm: string, key: crypto.CipherKey, iv: crypto.BinaryLike | null, options?: TransformOptions) =>
    createDecipheriv(...asTripleDes(algorithm, key), iv, options)) as typeof crypto.createDecipheriv;
}

export async function startEmbeddedS3(options: EmbeddedS3Options = {}): Promise<EmbeddedS3> {
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'kcr-s3-'));
  mkdirSync(dir, { recursive: true });
  singleDesFromTripleDes();
  useEmbeddedCredentials();
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
        res
          .writeHead(404, { 'content-type': 'application/xml' })
          .end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist.</Message></Error>');
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
    ...EMBEDDED_S3_CREDENTIALS,
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
