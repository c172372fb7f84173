// ObjectStore over the minio client, for any S3-compatible endpoint (MinIO in
// the cluster, s3rver in tests and the local mode). Uploads drive the multipart
// calls themselves: minio's putObject looks for an earlier upload with
// ListMultipartUploads, which s3rver lacks, and buffers less predictably.
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { Client } from 'minio';
import type { Logger } from 'pino';
import { ObjectNotFoundError, type ObjectInfo, type ObjectStore, type UploadOptions, type UploadResult } from './object-store.js';
import { ENV, readEnv } from '../runtime/config.js';
import { TransientError, errorMessage } from '../runtime/errors.js';
import { isConnectionError } from '../runtime/transient.js';

const MiB = 1024 * 1024;
/** S3's minimum size of every part but the last. */
const MIN_PART_SIZE = 5 * MiB;

export interface S3ObjectStoreOptions {
  /** http(s)://host:port of the S3 API. */
  endpoint: string;
  accessKey: string;
  secretKey: string;
  bucket: string;
  /** Region used for signing; also the region of a bucket this store creates. */
  region?: string;
  /** Bytes per multipart part (≥ 5 MiB); default KCR_S3_PART_SIZE_MB's. */
  partSize?: number;
  /** Parts uploaded in parallel; default KCR_S3_PARTS_IN_FLIGHT's. Upload memory ≈ (partsInFlight + 1) × partSize. */
  partsInFlight?: number;
  logger?: Logger;
}

const TRANSIENT_S3_CODES = new Set([
  'SlowDown',
  'InternalError',
  'ServiceUnavailable',
  'RequestTimeout',
  'Throttling',
  'ThrottlingException',
  'RequestTimeTooSkewed',
  'OperationAborted',
  'XMinioServerNotInitialized',
]);
const NOT_FOUND_CODES = new Set(['NoSuchKey', 'NotFound']);

function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

// minio v8 keeps no HTTP status on its errors. A status it retries (408, 429,
// 499, 500, 502, 503, 504, 520) ends, once its retry is spent, as a plain Error
// whose message alone names it (requestWithRetry in minio's internal/request),
// before any S3 error body is read. Other statuses (501, 505-511 among the
// 5xx) become an S3Error carrying the body's code, or one minio derives from
// the status, and are classified by that code alone.
const RETRIED_STATUS = /\bRetryable HTTP status: (\d{3})\b/;

function httpStatus(err: unknown): number | undefined {
  const m = err instanceof Error ? RETRIED_STATUS.exec(err.message) : null;
  return m ? Number(m[1]) : undefined;
}

function isTransientS3Error(err: unknown): boolean {
  if (isConnectionError(err)) return true;
  const code = errorCode(err);
  if (code !== undefined && TRANSIENT_S3_CODES.has(code)) return true;
  const status = httpStatus(err);
  return status !== undefined && (status >= 500 || status === 429 || status === 408);
}

function isNotFound(err: unknown): boolean {
  const code = errorCode(err);
  return code !== undefined && NOT_FOUND_CODES.has(code);
}

/** Transient causes become TransientError (the broker retries); others keep their code, with the operation named. */
function s3Failure(what: string, err: unknown): Error {
  const message = `${what} failed: ${errorMessage(err)}${errorCode(err) ? ` (${errorCode(err)})` : ''}`;
  if (isTransientS3Error(err)) return new TransientError(message, { cause: err });
  const wrapped = new Error(message, { cause: err });
  return wrapped;
}

/** Reads the S3 options from the environment (the ENV catalog's KCR_S3_* variables). */
export function s3OptionsFromEnv(source: NodeJS.ProcessEnv = process.env): S3ObjectStoreOptions {
  const env = readEnv(['KCR_S3_ENDPOINT', 'KCR_S3_ACCESS_KEY', 'KCR_S3_SECRET_KEY', 'KCR_S3_REGION', 'KCR_S3_BUCKET', 'KCR_S3_PART_SIZE_MB', 'KCR_S3_PARTS_IN_FLIGHT'], source);
  return {
    endpoint: env.KCR_S3_ENDPOINT,
    accessKey: env.KCR_S3_ACCESS_KEY,
    secretKey: env.KCR_S3_SECRET_KEY,
    region: env.KCR_S3_REGION,
    bucket: env.KCR_S3_BUCKET,
    partSize: env.KCR_S3_PART_SIZE_MB * MiB,
    partsInFlight: env.KCR_S3_PARTS_IN_FLIGHT,
  };
}

export class S3ObjectStore implements ObjectStore {
  readonly bucket: string;
  readonly partSize: number;
  readonly partsInFlight: number;
  private readonly client: Client;
  private readonly region: string;
  private readonly log: Logger | undefined;
  private readonly where: string;

  constructor(options: S3ObjectStoreOptions) {
    const url = new URL(options.endpoint);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`S3 endpoint ${options.endpoint} must be an http(s) URL`);
    this.partSize = options.partSize ?? Number(ENV.KCR_S3_PART_SIZE_MB.default) * MiB;
    this.partsInFlight = options.partsInFlight ?? Number(ENV.KCR_S3_PARTS_IN_FLIGHT.default);
    if (this.partSize < MIN_PART_SIZE) throw new Error(`S3 part size ${this.partSize} is below S3's minimum of ${MIN_PART_SIZE} bytes`);
    if (!Number.isInteger(this.partsInFlight) || this.partsInFlight < 1) throw new Error(`S3 parts in flight must be a positive integer, got ${this.partsInFlight}`);
    this.bucket = options.bucket;
    this.region = options.region ?? 'us-east-1';
    this.log = options.logger;
    this.where = `${url.origin}/${options.bucket}`;
    const useSSL = url.protocol === 'https:';
    this.client = new Client({
      endPoint: url.hostname.replace(/^\[|\]$/g, ''),
      port: url.port ? Number(url.port) : useSSL ? 443 : 80,
      useSSL,
      accessKey: options.accessKey,
      secretKey: options.secretKey,
      // A fixed region spares a GetBucketLocation round trip per request.
      region: this.region,
      pathStyle: true,
      // The client's own threshold: a Buffer smaller than this goes out in one PUT (putJson, small uploads).
      partSize: Math.max(this.partSize, 64 * MiB),
    });
    // Over plain http minio hashes every payload for its SigV4 signature: a
    // second sha256 of every part on the upload's hot path (UNSIGNED-PAYLOAD
    // instead, as minio does over https). Integrity does not rest on it: the
    // archive's sha256, computed in upload(), is checked again when build-image
    // reads the archive back (by the registry for a plain layer, by build-image
    // itself before gzip).
    this.client.enableSHA256 = false;
  }

  async ensureBucket(): Promise<void> {
    try {
      if (await this.client.bucketExists(this.bucket)) return;
      await this.client.makeBucket(this.bucket, this.region);
      this.log?.info({ bucket: this.bucket }, `created bucket ${this.bucket}`);
    } catch (err) {
      // Another replica may have created it between the check and the create.
      if (errorCode(err) === 'BucketAlreadyOwnedByYou' || errorCode(err) === 'BucketAlreadyExists') return;
      throw s3Failure(`creating bucket ${this.where}`, err);
    }
  }

  async getStream(key: string): Promise<Readable> {
    try {
      return await this.client.getObject(this.bucket, key);
    } catch (err) {
      if (isNotFound(err)) throw new ObjectNotFoundError(this.bucket, key);
      throw s3Failure(`reading ${this.where}/${key}`, err);
    }
  }

  async getRange(key: string, offset: number, length: number): Promise<Buffer> {
    if (length <= 0) return Buffer.alloc(0);
    try {
      const stream = await this.client.getPartialObject(this.bucket, key, offset, length);
      const chunks: Buffer[] = [];
      for await (const chunk of stream) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks);
    } catch (err) {
      if (isNotFound(err)) throw new ObjectNotFoundError(this.bucket, key);
      throw s3Failure(`reading bytes ${offset}-${offset + length - 1} of ${this.where}/${key}`, err);
    }
  }

  async getJson(key: string): Promise<unknown> {
    let text: string;
    try {
      const stream = await this.client.getObject(this.bucket, key);
      const chunks: Buffer[] = [];
      for await (const chunk of stream) chunks.push(chunk as Buffer);
      text = Buffer.concat(chunks).toString('utf8');
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw s3Failure(`reading ${this.where}/${key}`, err);
    }
    try {
      return JSON.parse(text) as unknown;
    } catch (err) {
      throw new Error(`${this.where}/${key} is not valid JSON: ${errorMessage(err)}`, { cause: err });
    }
  }

  async putJson(key: string, value: unknown): Promise<void> {
    const body = Buffer.from(`${JSON.stringify(value, null, 2)}\n`);
    try {
      await this.client.putObject(this.bucket, key, body, body.length, { 'Content-Type': 'application/json' });
    } catch (err) {
      throw s3Failure(`writing ${this.where}/${key}`, err);
    }
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    try {
      const st = await this.client.statObject(this.bucket, key);
      return { key, size: st.size, lastModified: st.lastModified };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw s3Failure(`stat ${this.where}/${key}`, err);
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const stream = this.client.listObjectsV2(this.bucket, prefix, true);
    try {
      for await (const item of stream as AsyncIterable<{ name?: string; size: number; lastModified?: Date }>) {
        if (item.name === undefined) continue; // common prefixes, not objects
        yield { key: item.name, size: item.size, ...(item.lastModified ? { lastModified: item.lastModified } : {}) };
      }
    } catch (err) {
      throw s3Failure(`listing ${this.where}/${prefix}`, err);
    }
  }

  async remove(key: string): Promise<void> {
    try {
      await this.client.removeObject(this.bucket, key);
    } catch (err) {
      if (isNotFound(err)) return;
      throw s3Failure(`deleting ${this.where}/${key}`, err);
    }
  }

  /**
   * Copies `body` into parts of exactly `partSize` bytes (the last one shorter)
   * and uploads up to `partsInFlight` of them at once; reading pauses while
   * that many are in flight. A part's buffer is reused once its upload is
   * done: memory is (partsInFlight + 1) × partSize whatever the size, and no
   * part buffer is left for the garbage collector (released buffers of many
   * MiB outlive young collections and pile up until a full one). A body
   * shorter than one part goes out in a single PUT. Errors of `body` itself
   * are rethrown as they are (the caller knows what they mean); S3 errors are
   * mapped (transient → TransientError).
   */
  async upload(key: string, body: Readable, options: UploadOptions = {}): Promise<UploadResult> {
    const hash = createHash('sha256');
    let size = 0;
    const spare: Buffer[] = [];
    let current: Buffer | undefined;
    let filled = 0;
    let uploadId: string | undefined;
    const parts: { part: number; etag: string }[] = [];
    const inFlight = new Set<Promise<void>>();
    let s3Error: unknown;
    let partNumber = 0;

    const startPart = (buffer: Buffer, length: number) => {
      const part = ++partNumber;
      const id = uploadId as string;
      const p = this.client
        .uploadPart({ bucketName: this.bucket, objectName: key, uploadID: id, partNumber: part, headers: { 'Content-Length': length } }, buffer.subarray(0, length))
        .then((r) => void parts.push({ part, etag: r.etag }))
        .catch((err: unknown) => void (s3Error ??= err))
        .finally(() => {
          inFlight.delete(p);
          // The request has settled (retries included): nothing reads the buffer any more.
          spare.push(buffer);
        });
      inFlight.add(p);
    };
    /** Waits until fewer than partsInFlight parts are uploading. */
    const slot = async () => {
      while (inFlight.size >= this.partsInFlight) await Promise.race(inFlight);
      if (s3Error) throw s3Error;
    };
    const s3 = async <T>(op: () => Promise<T>): Promise<T> => {
      try {
        return await op();
      } catch (err) {
        s3Error ??= err;
        throw err;
      }
    };
    const contentType = { 'Content-Type': options.contentType ?? 'application/octet-stream' };

    try {
      for await (const raw of body) {
        options.signal?.throwIfAborted();
        const chunk = Buffer.isBuffer(raw) ? raw : Buffer.from(raw as Uint8Array);
        hash.update(chunk);
        size += chunk.length;
        options.onProgress?.(size);
        for (let offset = 0; offset < chunk.length;) {
          current ??= spare.pop() ?? Buffer.allocUnsafe(this.partSize);
          const copied = chunk.copy(current, filled, offset);
          filled += copied;
          offset += copied;
          if (filled < this.partSize) continue;
          if (uploadId === undefined) uploadId = await s3(() => this.client.initiateNewMultipartUpload(this.bucket, key, contentType));
          await slot();
          startPart(current, filled);
          current = undefined;
          filled = 0;
        }
      }
      options.signal?.throwIfAborted();
      if (uploadId === undefined) {
        const data = (current ?? Buffer.alloc(0)).subarray(0, filled);
        await s3(() => this.client.putObject(this.bucket, key, data, data.length, contentType));
      } else {
        if (current && filled > 0) {
          await slot();
          startPart(current, filled);
        }
        await Promise.all(inFlight);
        if (s3Error) throw s3Error;
        parts.sort((a, b) => a.part - b.part);
        const id = uploadId;
        await s3(() => this.client.completeMultipartUpload(this.bucket, key, id, parts));
      }
    } catch (err) {
      body.destroy();
      await Promise.allSettled(inFlight);
      if (uploadId !== undefined) await this.abort(key, uploadId);
      if (s3Error !== undefined && err === s3Error) throw s3Failure(`uploading ${this.where}/${key}`, err);
      throw err;
    }
    this.log?.debug({ key, size, parts: partNumber }, `uploaded ${this.where}/${key}`);
    return { size, sha256: hash.digest('hex') };
  }

  /** Best effort: a failed abort leaves parts that a bucket lifecycle rule (AbortIncompleteMultipartUpload) removes. */
  private async abort(key: string, uploadId: string): Promise<void> {
    try {
      await this.client.abortMultipartUpload(this.bucket, key, uploadId);
      this.log?.info({ key, uploadId }, `aborted multipart upload of ${this.where}/${key}`);
    } catch (err) {
      this.log?.warn({ key, uploadId, err: errorMessage(err) }, `could not abort multipart upload ${uploadId} of ${this.where}/${key}`);
    }
  }
}
