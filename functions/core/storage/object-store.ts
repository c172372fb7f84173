// What the functions need of S3-compatible storage. The S3 adapter (s3.ts)
// implements it over the minio client; tests may use that against s3rver.
import type { Readable } from 'node:stream';

export interface ObjectInfo {
  key: string;
  size: number;
  lastModified?: Date;
}

export interface UploadResult {
  size: number;
  /** Lowercase hex sha256 of the bytes uploaded, computed while streaming. */
  sha256: string;
}

export interface UploadOptions {
  contentType?: string;
  /** Called with the bytes uploaded so far (progress for long transfers). */
  onProgress?: (bytes: number) => void;
  signal?: AbortSignal;
}

export interface ObjectStore {
  readonly bucket: string;
  /** Creates the bucket when missing. */
  ensureBucket(): Promise<void>;
  /** Streams an object; throws ObjectNotFoundError when it does not exist. */
  getStream(key: string): Promise<Readable>;
  /** `length` bytes from `offset` (fewer at the object's end): a range read; throws ObjectNotFoundError when it does not exist. */
  getRange(key: string, offset: number, length: number): Promise<Buffer>;
  /** The parsed JSON object, or undefined when the key does not exist. */
  getJson(key: string): Promise<unknown>;
  putJson(key: string, value: unknown): Promise<void>;
  stat(key: string): Promise<ObjectInfo | undefined>;
  list(prefix: string): AsyncIterable<ObjectInfo>;
  /**
   * Streams `body` into `key` with a multipart upload (parts uploaded in
   * parallel, memory bounded by parts in flight × part size). On any failure the
   * multipart upload is aborted and nothing is left under `key`.
   */
  upload(key: string, body: Readable, options?: UploadOptions): Promise<UploadResult>;
  remove(key: string): Promise<void>;
}

/**
 * The parsed object, or undefined when the key does not exist or holds no JSON
 * (written by hand, say): for records whose absence is a valid state. Any other
 * failure to read is thrown.
 */
export async function getJsonIfParsable(store: ObjectStore, key: string): Promise<unknown> {
  return store.getJson(key).catch((err: unknown) => {
    if (err instanceof Error && err.cause instanceof SyntaxError) return undefined;
    throw err;
  });
}

export class ObjectNotFoundError extends Error {
  override readonly name = 'ObjectNotFoundError';
  constructor(
    readonly bucket: string,
    readonly key: string,
  ) {
    super(`s3://${bucket}/${key} does not exist`);
  }
}
