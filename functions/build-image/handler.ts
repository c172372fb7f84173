// build-image: io.kcr.checkpoint.stored → the OCI checkpoint image in a
// registry or an OCI layout → image.json (written last) → io.kcr.image.built.
//
// The image reference is `<host>/<repo>@<index digest>`. The index is what
// containerd reads annotations from, and CRI-O, given an index digest, resolves
// the platform's manifest (which carries the same annotations) as for any
// multi-platform image; so one digest serves both runtimes. The manifest digest
// is recorded in image.json too, for tools that want the single manifest.
import { createHash } from 'node:crypto';
import { PassThrough, pipeline, Readable, Transform } from 'node:stream';
import { createGzip } from 'node:zlib';
import { events, type KcrEvent } from '../contract/build.js';
import { EventTypes, type CheckpointStoredData, type ImageBuiltData } from '../contract/events.js';
import {
  archiveFactsFromManifest,
  archiveLayer,
  buildCheckpointImage,
  manifestIdentity,
  MediaTypes,
  repositoryName,
  type CheckpointImage,
  type LayerCompression,
  type LayerDescriptor,
  type Platform,
} from '../domain/checkpoint-image.js';
import { artifactKey, parseS3Uri, type CheckpointLocation } from '../domain/storage-layout.js';
import { BlobMismatchError, type ImageTarget, type PushedBlob } from '../adapters/image-target.js';
import { ObjectNotFoundError, type ObjectStore } from '../adapters/object-store.js';
import { RegistryError } from '../adapters/registry.js';
import { TransientError, errorMessage } from '../runtime/errors.js';
import type { FunctionHandler, HandlerContext, IncomingEvent } from '../runtime/handler.js';
import { ImageRecord } from './image-record.js';
import { pruneCheckpoints } from './retention.js';

export const FUNCTION_NAME = 'build-image';

export interface BuildImageDeps {
  store: ObjectStore;
  target: ImageTarget;
  /** First path component(s) of every repository, e.g. `kcr` → `<host>/kcr/<ns>/<kind>-<name>-<container>`. */
  repoPrefix: string;
  /** `none` pushes the archive as is (digest already known); `gzip` compresses while pushing. */
  compression?: LayerCompression;
  /** The platform the checkpoint runs on: CRIU images are architecture-specific. */
  platform?: Platform;
  /** Committed checkpoints kept per container after a build; 0 or unset keeps all. */
  retention?: number;
}

/** The outcome of one build, for logs and tests. */
export interface BuildReport {
  action: 'reused' | 'built';
  layer?: PushedBlob['via'];
  record: ImageRecord;
}

/** A permanent failure of this checkpoint's build: reported as checkpoint.failed, not retried. */
class BuildFailure extends Error {
  override readonly name = 'BuildFailure';
}

export function createBuildImage(deps: BuildImageDeps): FunctionHandler<typeof EventTypes.checkpointStored> & {
  build(data: CheckpointStoredData, ctx: HandlerContext): Promise<BuildReport>;
} {
  const compression = deps.compression ?? 'none';
  const platform = deps.platform ?? { os: 'linux', architecture: 'amd64' };

  async function build(data: CheckpointStoredData, ctx: HandlerContext): Promise<BuildReport> {
    const loc: CheckpointLocation = { namespace: data.namespace, workload: data.workload, container: data.container, id: data.id };
    const archive = parseS3Uri(data.artifact.uri);
    if (archive.bucket !== deps.store.bucket) {
      throw new BuildFailure(`archive ${data.artifact.uri} is in bucket ${archive.bucket}, but build-image reads bucket ${deps.store.bucket}`);
    }
    const manifestKey = artifactKey(loc, 'manifest');
    const manifest = await storeCall(`read ${manifestKey}`, () => deps.store.getJson(manifestKey));
    // store-artifact writes manifest.json before it emits `stored`: if it is gone, the checkpoint was deleted.
    if (manifest === undefined) throw new BuildFailure(`${manifestKey} does not exist (the checkpoint was deleted or never committed)`);
    const identity = manifestIdentity(manifest);
    if ((identity.id && identity.id !== data.id) || (identity.sha256 && identity.sha256 !== data.artifact.sha256)) {
      throw new BuildFailure(`${manifestKey} records checkpoint ${identity.id ?? '?'} sha256 ${identity.sha256 ?? '?'}, the event ${data.id} sha256 ${data.artifact.sha256}`);
    }
    let repo: string;
    try {
      repo = repositoryName(data, deps.repoPrefix);
    } catch (err) {
      throw new BuildFailure(errorMessage(err));
    }

    const imageKey = artifactKey(loc, 'image');
    const previous = ImageRecord.safeParse(await storeCall(`read ${imageKey}`, () => deps.store.getJson(imageKey)));
    const prior = previous.success ? previous.data : undefined;
    if (prior && prior.repository === repo && prior.host === deps.target.host && prior.layer.mediaType === layerMediaType(compression)) {
      if (await deps.target.hasManifest(repo, prior.indexDigest)) {
        ctx.log.info({ reference: prior.reference }, 'image exists: emitting built again without pushing');
        return { action: 'reused', record: prior };
      }
      ctx.log.info({ reference: prior.reference }, 'image.json names an image the target no longer has: rebuilding');
    }

    const facts = archiveFactsFromManifest(manifest);
    const mountFrom = prior && prior.host === deps.target.host && prior.repository !== repo ? prior.repository : undefined;
    const started = performance.now();
    const layer = await pushLayer(data, archive.key, repo, prior?.layer, mountFrom);
    const image = buildCheckpointImage({ data, facts, layer, platform });
    await pushImage(repo, data.id, image, mountFrom);
    ctx.observe?.('transferSeconds', (performance.now() - started) / 1000, { stage: 'build' });

    const record: ImageRecord = {
      reference: `${deps.target.host}/${repo}@${image.index.descriptor.digest}`,
      digest: image.index.descriptor.digest,
      size: image.index.descriptor.size,
      mediaType: MediaTypes.index,
      repository: repo,
      host: deps.target.host,
      target: deps.target.kind,
      tag: data.id,
      indexDigest: image.index.descriptor.digest,
      manifestDigest: image.manifest.descriptor.digest,
      configDigest: image.config.descriptor.digest,
      layer: { mediaType: layer.mediaType, digest: layer.digest, size: layer.size },
    };
    await storeCall(`write ${imageKey}`, () => deps.store.putJson(imageKey, record));
    ctx.log.info({ reference: record.reference, layer: layer.via, mountedFrom: mountFrom }, 'image built');
    return { action: 'built', layer: layer.via, record };
  }

  /** The layer: skipped when present, mounted when in our previous repository, else streamed from S3. */
  async function pushLayer(
    data: CheckpointStoredData,
    archiveKey: string,
    repo: string,
    priorLayer: ImageRecord['layer'] | undefined,
    mountFrom: string | undefined,
  ): Promise<LayerDescriptor & { via: PushedBlob['via'] }> {
    // A gzip layer's digest is known only after compressing; a previous build recorded it.
    const known: LayerDescriptor | undefined =
      compression === 'none'
        ? archiveLayer(data)
        : priorLayer?.mediaType === MediaTypes.layerTarGzip
          ? { mediaType: MediaTypes.layerTarGzip, digest: priorLayer.digest, size: priorLayer.size }
          : undefined;
    if (known) {
      if (await deps.target.hasBlob(repo, known.digest)) return { ...known, via: 'exists' };
      if (mountFrom && (await deps.target.mountBlob(repo, known.digest, mountFrom))) return { ...known, via: 'mounted' };
    }
    const source = s3Source(await storeCall(`read ${archiveKey}`, () => deps.store.getStream(archiveKey)), archiveKey);
    if (compression === 'none') {
      const layer = archiveLayer(data);
      await deps.target.uploadBlob(repo, source, { digest: layer.digest, size: layer.size });
      return { ...layer, via: 'uploaded' };
    }
    // pipeline() destroys every stage with the first error, so the upload sees it as its body's error.
    const gzipped = pipeline(source, verifyingStream(data), createGzip(), () => undefined);
    const pushed = await deps.target.uploadBlob(repo, gzipped);
    return { mediaType: MediaTypes.layerTarGzip, digest: pushed.digest, size: pushed.size, via: 'uploaded' };
  }

  /** Config blob, then the manifest by digest, then the index under the tag (it references the manifest). */
  async function pushImage(repo: string, tag: string, image: CheckpointImage, mountFrom: string | undefined): Promise<void> {
    const config = image.config.descriptor;
    if (!(await deps.target.hasBlob(repo, config.digest)) && !(mountFrom && (await deps.target.mountBlob(repo, config.digest, mountFrom)))) {
      await deps.target.uploadBlob(repo, bufferStream(image.config.bytes), { digest: config.digest, size: config.size });
    }
    await deps.target.putManifest(repo, image.manifest.descriptor.digest, MediaTypes.manifest, image.manifest.bytes);
    await deps.target.putManifest(repo, tag, MediaTypes.index, image.index.bytes);
  }

  return {
    name: FUNCTION_NAME,
    accepts: [EventTypes.checkpointStored],
    emits: true,
    build,
    async handle(event: IncomingEvent<typeof EventTypes.checkpointStored>, ctx: HandlerContext): Promise<KcrEvent[]> {
      const data = event.data;
      const common = { source: FUNCTION_NAME, ...(ctx.traceparent ? { traceparent: ctx.traceparent } : {}) };
      let report: BuildReport;
      try {
        report = await build(data, ctx);
      } catch (err) {
        if (err instanceof TransientError) throw err;
        // Auth refused, registry 4xx, bytes that do not match their digest: retrying cannot help.
        if (err instanceof BuildFailure || err instanceof RegistryError || err instanceof BlobMismatchError || err instanceof ObjectNotFoundError) {
          const reason = `build-image ${data.namespace}/${data.pod}/${data.container} checkpoint ${data.id}: ${errorMessage(err)}`;
          ctx.log.warn({ reason }, 'build failed permanently');
          return [events.checkpointFailed({ ...data, stage: 'build', reason }, common)];
        }
        throw err;
      }
      if (deps.retention) {
        const ref = { namespace: data.namespace, workload: data.workload, container: data.container };
        try {
          await pruneCheckpoints({ store: deps.store, target: deps.target, log: ctx.log }, ref, deps.retention, data.id);
        } catch (err) {
          // The image is built and recorded; what was not pruned now is pruned after the next build.
          ctx.log.warn({ err: errorMessage(err) }, `retention: pruning ${data.namespace}/${data.workload.kind}/${data.workload.name}/${data.container} failed: ${errorMessage(err)}`);
        }
      }
      const built: ImageBuiltData = {
        ...data,
        image: { reference: report.record.reference, digest: report.record.digest, size: report.record.size },
      };
      return [events.imageBuilt(built, common)];
    },
  };
}

function layerMediaType(compression: LayerCompression): string {
  return compression === 'gzip' ? MediaTypes.layerTarGzip : MediaTypes.layerTar;
}

/**
 * Passes the archive through while hashing it: with gzip the registry can only
 * check the compressed digest, so the archive's own sha256 (the diff_id) is
 * checked here, and a mismatch fails the stream before the blob is committed.
 */
function verifyingStream(data: CheckpointStoredData): Transform {
  const hash = createHash('sha256');
  let size = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      size += chunk.length;
      done(null, chunk);
    },
    flush(done) {
      const sha = hash.digest('hex');
      if (sha !== data.artifact.sha256 || size !== data.artifact.size) {
        done(new BlobMismatchError(`${data.artifact.uri} streamed ${size} bytes with sha256 ${sha}, but was stored as ${data.artifact.size} bytes with sha256 ${data.artifact.sha256}`));
      } else done();
    },
  });
}

function bufferStream(bytes: Buffer): Readable {
  return Readable.from([bytes]);
}

/** The archive stream, whose read errors (S3 unreachable mid-stream) are transient. */
function s3Source(stream: Readable, key: string): Readable {
  const out = new PassThrough();
  stream.once('error', (err) => out.destroy(new TransientError(`reading ${key} from S3 failed: ${errorMessage(err)}`, { cause: err })));
  return stream.pipe(out);
}

/** S3 failures other than a missing object are transient (unreachable, 5xx, throttled). */
async function storeCall<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ObjectNotFoundError || err instanceof TransientError) throw err;
    throw new TransientError(`${what} in S3 failed: ${errorMessage(err)}`, { cause: err });
  }
}
