// An in-memory ObjectStore for unit tests: same contract as the S3 adapter
// (missing keys, streamed reads and uploads with sha256), no server.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { ObjectNotFoundError, type ObjectInfo, type ObjectStore, type UploadOptions, type UploadResult } from '../../functions/core/storage/object-store.js';

export class MemoryStore implements ObjectStore {
  readonly objects = new Map<string, Buffer>();
  /** Keys in the order they were written: tests check what was written last. */
  readonly writes: string[] = [];

  constructor(readonly bucket = 'kcr-checkpoints') {}

  async ensureBucket(): Promise<void> {}

  async getStream(key: string): Promise<Readable> {
    const body = this.objects.get(key);
    if (!body) throw new ObjectNotFoundError(this.bucket, key);
    // Several chunks, as a network stream would deliver them.
    const chunks: Buffer[] = [];
    for (let i = 0; i < body.length; i += 16 * 1024) chunks.push(body.subarray(i, i + 16 * 1024));
    return Readable.from(chunks);
  }

  async getRange(key: string, offset: number, length: number): Promise<Buffer> {
    const body = this.objects.get(key);
    if (!body) throw new ObjectNotFoundError(this.bucket, key);
    return Buffer.from(body.subarray(offset, offset + Math.max(0, length)));
  }

  async getJson(key: string): Promise<unknown> {
    const body = this.objects.get(key);
    if (!body) return undefined;
    try {
      return JSON.parse(body.toString('utf8')) as unknown;
    } catch (err) {
      // As the S3 adapter reports it: the parse error is the cause.
      throw new Error(`${this.bucket}/${key} is not valid JSON`, { cause: err });
    }
  }

  async putJson(key: string, value: unknown): Promise<void> {
    this.put(key, Buffer.from(JSON.stringify(value)));
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    const body = this.objects.get(key);
    return body ? { key, size: body.length } : undefined;
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    for (const [key, body] of [...this.objects].sort(([a], [b]) => a.localeCompare(b))) {
      if (key.startsWith(prefix)) yield { key, size: body.length };
    }
  }

  async upload(key: string, body: Readable, _options: UploadOptions = {}): Promise<UploadResult> {
    const chunks: Buffer[] = [];
    const hash = createHash('sha256');
    for await (const chunk of body) {
      const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
      hash.update(buf);
      chunks.push(buf);
    }
    const all = Buffer.concat(chunks);
    this.put(key, all);
    return { size: all.length, sha256: hash.digest('hex') };
  }

  async remove(key: string): Promise<void> {
    this.objects.delete(key);
  }

  put(key: string, body: Buffer): void {
    this.objects.set(key, body);
    this.writes.push(key);
  }
}
