// An OCI image layout directory (image-spec "image-layout"): the embedded
// default target when no registry is configured. One layout holds every
// repository; index.json names each image `<repo>:<tag>` in
// `org.opencontainers.image.ref.name`, and references to it read
// `<layoutHost>/<repo>@sha256:…` (the simulated kubelet maps that host here).
//
// Writers may run concurrently (several build-image replicas on one volume):
// blobs are written to a temp file and renamed into place (content-addressed,
// so a lost race leaves the same bytes), and index.json is rewritten under an
// exclusive lock file, again via temp + rename, so readers never see it torn.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, type ReadStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { MediaTypes } from './checkpoint-image.js';
import { BlobMismatchError, type BlobRef, type ImageDigests, type ImageTarget, type StoredManifest } from './image-target.js';

export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';
/** containerd's import reads the full image name from this annotation. */
const CONTAINERD_NAME_ANNOTATION = 'io.containerd.image.name';

const LAYOUT_VERSION = '1.0.0';
const DIGEST = /^sha256:([0-9a-f]{64})$/;
const LOCK_STALE_MS = 30_000;
const LOCK_TIMEOUT_MS = 20_000;

export interface LayoutIndexEntry {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

export interface LayoutIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: LayoutIndexEntry[];
}

export class OciLayout implements ImageTarget {
  readonly kind = 'oci-layout' as const;
  private ready: Promise<void> | undefined;

  constructor(
    readonly dir: string,
    /** The pseudo-registry host that references to images in this layout use, e.g. `kcr.local`. */
    readonly host: string,
  ) {}

  /** Creates the layout (oci-layout, index.json, blobs/sha256) unless it exists. */
  init(): Promise<void> {
    this.ready ??= this.create().catch((err: unknown) => {
      this.ready = undefined;
      throw new Error(`cannot create OCI layout in ${this.dir}`, { cause: err });
    });
    return this.ready;
  }

  async hasBlob(_repo: string, digest: string): Promise<boolean> {
    await this.init();
    return (await statOrUndefined(this.blobPath(digest))) !== undefined;
  }

  /** One blob store serves every repository: a blob present anywhere is present for all. */
  async mountBlob(repo: string, digest: string): Promise<boolean> {
    return this.hasBlob(repo, digest);
  }

  async uploadBlob(_repo: string, body: Readable, expected?: BlobRef): Promise<BlobRef> {
    await this.init();
    const tmp = this.tempPath();
    const hash = createHash('sha256');
    let size = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _enc, done) {
        hash.update(chunk);
        size += chunk.length;
        done(null, chunk);
      },
    });
    try {
      await pipeline(body, meter, createWriteStream(tmp, { flags: 'wx' }));
      await fsyncFile(tmp);
      const digest = `sha256:${hash.digest('hex')}`;
      if (expected && (expected.digest !== digest || expected.size !== size)) {
        throw new BlobMismatchError(`blob announced as ${expected.digest} (${expected.size} bytes) streamed as ${digest} (${size} bytes)`);
      }
      await rename(tmp, this.blobPath(digest));
      return { digest, size };
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  async putManifest(repo: string, reference: string, mediaType: string, bytes: Buffer): Promise<void> {
    await this.init();
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    if (DIGEST.test(reference) && reference !== digest) {
      throw new BlobMismatchError(`manifest put as ${reference} has digest ${digest}`);
    }
    if (!(await this.hasBlob(repo, digest))) await this.writeSmallBlob(digest, bytes);
    if (DIGEST.test(reference)) return;
    const refName = `${repo}:${reference}`;
    await this.updateIndex((index) => {
      const others = index.manifests.filter((m) => m.annotations?.[REF_NAME_ANNOTATION] !== refName);
      const entry: LayoutIndexEntry = {
        mediaType,
        digest,
        size: bytes.length,
        annotations: { [REF_NAME_ANNOTATION]: refName, [CONTAINERD_NAME_ANNOTATION]: `${this.host}/${refName}` },
      };
      return { ...index, manifests: [...others, entry] };
    });
  }

  /** An image exists in a repository when index.json names it there: untagged blobs are garbage. */
  async hasManifest(repo: string, digest: string): Promise<boolean> {
    const index = await this.readIndex();
    return index.manifests.some((m) => m.digest === digest && refRepo(m) === repo) && (await this.hasBlob(repo, digest));
  }

  async getManifest(repo: string, reference: string): Promise<StoredManifest | undefined> {
    const index = await this.readIndex();
    let digest: string;
    let mediaType: string | undefined;
    if (DIGEST.test(reference)) {
      digest = reference;
      mediaType = index.manifests.find((m) => m.digest === reference)?.mediaType;
    } else {
      const entry = index.manifests.find((m) => m.annotations?.[REF_NAME_ANNOTATION] === `${repo}:${reference}`);
      if (!entry) return undefined;
      digest = entry.digest;
      mediaType = entry.mediaType;
    }
    const bytes = await readFile(this.blobPath(digest)).catch((err: unknown) => {
      if (isNotFound(err)) return undefined;
      throw err;
    });
    if (!bytes) return undefined;
    mediaType ??= mediaTypeOf(bytes);
    return { mediaType, digest, bytes };
  }

  async readIndex(): Promise<LayoutIndex> {
    await this.init();
    const text = await readFile(join(this.dir, 'index.json'), 'utf8');
    const parsed: unknown = JSON.parse(text);
    if (!isLayoutIndex(parsed)) throw new Error(`${join(this.dir, 'index.json')} is not an OCI image index`);
    return parsed;
  }

  /** The index entry named `<repo>:<tag>`, if any. */
  async resolve(repo: string, tag: string): Promise<LayoutIndexEntry | undefined> {
    const index = await this.readIndex();
    return index.manifests.find((m) => m.annotations?.[REF_NAME_ANNOTATION] === `${repo}:${tag}`);
  }

  openBlob(digest: string): ReadStream {
    return createReadStream(this.blobPath(digest));
  }

  /** Removes every name of `digest` in `repo` from index.json (its blobs stay until garbage-collected). */
  async untag(repo: string, digest: string): Promise<number> {
    let removed = 0;
    await this.updateIndex((index) => {
      const kept = index.manifests.filter((m) => !(m.digest === digest && refRepo(m) === repo));
      removed = index.manifests.length - kept.length;
      return { ...index, manifests: kept };
    });
    return removed;
  }

  /** Untags the image in `repo` and deletes its blobs that no image left in the layout uses. */
  async removeImage(repo: string, image: ImageDigests): Promise<void> {
    await this.init();
    await this.withIndexLock(async () => {
      const index = await this.readIndex();
      const kept = index.manifests.filter((m) => !(m.digest === image.indexDigest && refRepo(m) === repo));
      if (kept.length !== index.manifests.length) await this.atomicWrite(join(this.dir, 'index.json'), JSON.stringify({ ...index, manifests: kept }));
      const inUse = await this.blobsUsedBy(kept);
      for (const digest of [image.indexDigest, image.manifestDigest, image.configDigest, image.layerDigest]) {
        if (!inUse.has(digest)) await rm(this.blobPath(digest), { force: true });
      }
    });
  }

  /** Every blob the images named by `entries` use: indexes, manifests, configs, layers (layers are not read). */
  private async blobsUsedBy(entries: readonly LayoutIndexEntry[]): Promise<Set<string>> {
    const used = new Set<string>();
    const visit = async (digest: string): Promise<void> => {
      if (used.has(digest)) return;
      used.add(digest);
      const doc = await readFile(this.blobPath(digest), 'utf8')
        .then((text) => JSON.parse(text) as { manifests?: { digest?: unknown }[]; config?: { digest?: unknown }; layers?: { digest?: unknown }[] })
        .catch((err: unknown) => {
          // A blob that is gone or not JSON names nothing; any other failure stops the removal rather than guess.
          if (isNotFound(err) || err instanceof SyntaxError) return undefined;
          throw err;
        });
      for (const m of doc?.manifests ?? []) if (typeof m.digest === 'string') await visit(m.digest);
      for (const b of [doc?.config, ...(doc?.layers ?? [])]) if (typeof b?.digest === 'string') used.add(b.digest);
    };
    for (const e of entries) await visit(e.digest);
    return used;
  }

  blobPath(digest: string): string {
    const m = DIGEST.exec(digest);
    if (!m) throw new Error(`unsupported digest ${JSON.stringify(digest)} (only sha256)`);
    return join(this.dir, 'blobs', 'sha256', m[1] as string);
  }

  private async create(): Promise<void> {
    await mkdir(join(this.dir, 'blobs', 'sha256'), { recursive: true });
    await mkdir(join(this.dir, '.kcr-tmp'), { recursive: true });
    await this.createIfAbsent('oci-layout', JSON.stringify({ imageLayoutVersion: LAYOUT_VERSION }));
    const empty: LayoutIndex = { schemaVersion: 2, mediaType: MediaTypes.index, manifests: [] };
    await this.createIfAbsent('index.json', JSON.stringify(empty));
  }

  /** Writes a file only if it does not exist yet, without a window where it exists half-written. */
  private async createIfAbsent(name: string, content: string): Promise<void> {
    const path = join(this.dir, name);
    if (await statOrUndefined(path)) return;
    await this.withIndexLock(async () => {
      if (await statOrUndefined(path)) return;
      await this.atomicWrite(path, content);
    });
  }

  private async writeSmallBlob(digest: string, bytes: Buffer): Promise<void> {
    await this.atomicWrite(this.blobPath(digest), bytes);
  }

  private async atomicWrite(path: string, content: string | Buffer): Promise<void> {
    const tmp = this.tempPath();
    try {
      await writeFile(tmp, content, { flag: 'wx' });
      await fsyncFile(tmp);
      await rename(tmp, path);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  private async updateIndex(change: (index: LayoutIndex) => LayoutIndex): Promise<void> {
    await this.init();
    await this.withIndexLock(async () => {
      const next = change(await this.readIndex());
      await this.atomicWrite(join(this.dir, 'index.json'), JSON.stringify(next));
    });
  }

  /**
   * An exclusive lock file; one left behind by a crashed writer is taken over
   * once stale (two writers finding the same stale lock at once could both take
   * it: only after a crash, and the index is still never torn, as writes rename).
   */
  private async withIndexLock<T>(fn: () => Promise<T>): Promise<T> {
    const lock = join(this.dir, 'index.json.lock');
    const deadline = Date.now() + LOCK_TIMEOUT_MS;
    for (let delay = 5; ; delay = Math.min(delay * 2, 100)) {
      try {
        const handle = await open(lock, 'wx');
        await handle.close();
        break;
      } catch (err) {
        if (!isExists(err)) throw err;
        const info = await statOrUndefined(lock);
        if (info && Date.now() - info.mtimeMs > LOCK_STALE_MS) {
          await unlink(lock).catch(() => undefined);
          continue;
        }
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${lock} (another writer holds it)`);
        await new Promise((r) => setTimeout(r, delay + Math.random() * delay));
      }
    }
    try {
      return await fn();
    } finally {
      await unlink(lock).catch(() => undefined);
    }
  }

  private tempPath(): string {
    return join(this.dir, '.kcr-tmp', `${process.pid}-${randomBytes(8).toString('hex')}`);
  }
}

function refRepo(entry: LayoutIndexEntry): string | undefined {
  const name = entry.annotations?.[REF_NAME_ANNOTATION];
  if (!name) return undefined;
  const colon = name.lastIndexOf(':');
  return colon > 0 ? name.slice(0, colon) : undefined;
}

function mediaTypeOf(bytes: Buffer): string {
  try {
    const parsed: unknown = JSON.parse(bytes.toString('utf8'));
    if (typeof parsed === 'object' && parsed !== null && 'mediaType' in parsed && typeof parsed.mediaType === 'string') return parsed.mediaType;
  } catch {
    // not JSON: fall through to the generic type
  }
  return 'application/octet-stream';
}

function isLayoutIndex(value: unknown): value is LayoutIndex {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return v.schemaVersion === 2 && Array.isArray(v.manifests);
}

async function fsyncFile(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function statOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await stat(path);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

function isExists(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'EEXIST';
}
