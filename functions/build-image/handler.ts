// build-image: io.kcr.checkpoint.stored → the OCI checkpoint image in a
// registry or an OCI layout → image.json (written last) → io.kcr.image.built.
//
// The image reference is `<host>/<repo>@<index digest>`. The index is what
// containerd reads annotations from, and CRI-O, given an index digest, resolves
// the platform's manifest (which carries the same annotations) as for any
// multi-platform image; so one digest serves both runtimes. The manifest digest
// is recorded in image.json too, for tools that want the single manifest.
//
// Delivery is at least once, and duplicates arrive together (a stalled sender
// flushes them at once): duplicates of an event join the attempt in flight for
// their checkpoint, and later ones find its image.json. Other replicas may
// still push the same image at the same moment; the registry then fails one of
// the identical pushes, which counts as done when the image is there after all.
import { createHash } from 'node:crypto';
import { PassThrough, pipeline, Readable, Transform } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { createGzip } from 'node:zlib';
import { events, type KcrEvent } from '../core/contract/build.js';
import type { V1ObjectMeta } from '@kubernetes/client-node';
import { EventTypes, type CheckpointStoredData, type ImageBuiltData, type WorkloadKind } from '../core/contract/events.js';
import { archiveLayer, buildCheckpointImage, MediaTypes, repositoryName, type CheckpointImage, type LayerCompression, type LayerDescriptor, type Platform } from './checkpoint-image.js';
import { artifactKey, parseS3Uri, type CheckpointLocation } from '../core/storage/layout.js';
import { BlobMismatchError, type ImageTarget, type PushedBlob } from './image-target.js';
import { ObjectNotFoundError, type ObjectStore } from '../core/storage/object-store.js';
import { RegistryAuthError, RegistryError } from './registry.js';
import { PermanentFailure, TransientError, errorMessage } from '../core/runtime/errors.js';
import type { FunctionHandler, HandlerContext, IncomingEvent } from '../core/runtime/handler.js';
import { readImage, readManifest, writeImage, type ImageRecord } from '../core/storage/records.js';
import { pruneCheckpoints, type PodLister } from './retention.js';
import { retentionLimits } from './retention-policy.js';

export const NAME = 'build-image';

export interface BuildImageDeps {
  store: ObjectStore;
  target: ImageTarget;
  /** First path component(s) of every repository, e.g. `kcr` → `<host>/kcr/<ns>/<kind>-<name>-<container>`. */
  repoPrefix: string;
  /** `none` pushes the archive as is (digest already known); `gzip` compresses while pushing. */
  compression?: LayerCompression;
  /** The platform the checkpoint runs on: CRIU images are architecture-specific. */
  platform?: Platform;
  /** Unset keeps every checkpoint. */
  retention?: Retention;
}

export interface Retention {
  /** Committed checkpoints kept per container after a build; 0 keeps all. */
  keep: number;
  /** Bytes of archives kept per container; 0 (or unset) no limit. */
  maxBytes?: number;
  /** The pods whose images are never pruned. */
  pods: PodLister;
  /** The workloads whose kcr.io/checkpoint-retention(-bytes) annotations override the limits; unset: the defaults apply everywhere. */
  workloads?: WorkloadReader;
}

/** What retention reads of a workload: its annotations, on it or on its pod template. */
export interface WorkloadReader {
  getWorkload(namespace: string, kind: WorkloadKind, name: string): Promise<{ metadata?: V1ObjectMeta; spec?: { template?: { metadata?: V1ObjectMeta } } } | undefined>;
}

/** The outcome of one build, for logs and tests. */
export interface BuildReport {
  action: 'reused' | 'built';
  layer?: PushedBlob['via'];
  record: ImageRecord;
  /** The checkpoint as its committed manifest.json records it (what image.built reports). */
  stored: CheckpointStoredData;
}

/** What one attempt decided, shared by every duplicate that joined it: built, failed (permanent), or an error to throw. */
type Outcome = { built: BuildReport } | { failed: string } | { error: unknown };

export function createBuildImage(deps: BuildImageDeps): FunctionHandler<typeof EventTypes.checkpointStored> & {
  build(data: CheckpointStoredData, ctx: HandlerContext): Promise<BuildReport>;
} {
  const compression = deps.compression ?? 'none';
  const platform = deps.platform ?? { os: 'linux', architecture: 'amd64' };
  /** The attempt in flight per checkpoint id, with the event data it is for. */
  const inFlight = new Map<string, { dataJson: string; outcome: Promise<Outcome> }>();

  async function build(event: CheckpointStoredData, ctx: HandlerContext): Promise<BuildReport> {
    const loc: CheckpointLocation = { namespace: event.namespace, workload: event.workload, container: event.container, id: event.id };
    const manifestKey = artifactKey(loc, 'manifest');
    const manifest = await storeCall(`read ${manifestKey}`, () => readManifest(deps.store, loc));
    // store-artifact writes manifest.json before it emits `stored`: if it is gone, the checkpoint was deleted.
    if (!manifest) throw new PermanentFailure(`${manifestKey} does not exist (the checkpoint was deleted or never committed) or is not a checkpoint manifest`);
    const recorded = manifest.data;
    if (recorded.id !== event.id || recorded.artifact.sha256 !== event.artifact.sha256) {
      throw new PermanentFailure(`${manifestKey} records checkpoint ${recorded.id} sha256 ${recorded.artifact.sha256}, the event ${event.id} sha256 ${event.artifact.sha256}`);
    }
    // The event only named the checkpoint: what the image says (pod, archive, sizes) comes from the committed manifest.
    const data = recorded;
    const archive = parseS3Uri(data.artifact.uri);
    if (archive.bucket !== deps.store.bucket) {
      throw new PermanentFailure(`archive ${data.artifact.uri} is in bucket ${archive.bucket}, but build-image reads bucket ${deps.store.bucket}`);
    }
    let repo: string;
    try {
      repo = repositoryName(data, deps.repoPrefix);
    } catch (err) {
      throw new PermanentFailure(errorMessage(err));
    }

    const imageKey = artifactKey(loc, 'image');
    const prior = await storeCall(`read ${imageKey}`, () => readImage(deps.store, loc));
    if (prior && prior.repository === repo && prior.host === deps.target.host && prior.layer.mediaType === layerMediaType(compression)) {
      if (await deps.target.hasManifest(repo, prior.indexDigest)) {
        ctx.log.info({ reference: prior.reference }, 'image exists: emitting built again without pushing');
        return { action: 'reused', record: prior, stored: data };
      }
      ctx.log.info({ reference: prior.reference }, 'image.json names an image the target no longer has: rebuilding');
    }

    const facts = manifest.archive;
    const mountFrom = prior && prior.host === deps.target.host && prior.repository !== repo ? prior.repository : undefined;
    const started = performance.now();
    const known = knownLayer(data, prior?.layer);
    // The image this push must produce, as soon as its layer digest is known: what a failed push is checked against.
    let image = known ? buildCheckpointImage({ data, facts, layer: known, platform }) : undefined;
    let via: PushedBlob['via'];
    try {
      const layer = await pushLayer(data, archive.key, repo, known, mountFrom);
      via = layer.via;
      image = buildCheckpointImage({ data, facts, layer, platform });
      await pushImage(repo, data.id, image, mountFrom);
    } catch (err) {
      // Refused credentials are never a lost race: asking again only adds failed logins.
      if (!image || !isPermanent(err) || err instanceof RegistryAuthError || !(await pushedAfterAll(repo, data.id, image, mountFrom))) throw err;
      ctx.log.info({ err: errorMessage(err) }, `push of ${repo}@${image.index.descriptor.digest} failed, but the image is there (a concurrent identical push): ${errorMessage(err)}`);
      via = 'exists';
    }
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
      layer: { mediaType: image.layer.mediaType, digest: image.layer.digest, size: image.layer.size },
    };
    await storeCall(`write ${imageKey}`, () => writeImage(deps.store, loc, record));
    ctx.log.info({ reference: record.reference, layer: via, mountedFrom: mountFrom }, 'image built');
    return { action: 'built', layer: via, record, stored: data };
  }

  /** The layer's descriptor before pushing, when it can be known: a gzip layer's digest only after compressing, unless a previous build recorded it. */
  function knownLayer(data: CheckpointStoredData, priorLayer: ImageRecord['layer'] | undefined): LayerDescriptor | undefined {
    if (compression === 'none') return archiveLayer(data);
    return priorLayer?.mediaType === MediaTypes.layerTarGzip ? { mediaType: MediaTypes.layerTarGzip, digest: priorLayer.digest, size: priorLayer.size } : undefined;
  }

  /** The layer: skipped when present, mounted when in our previous repository, else streamed from S3. */
  async function pushLayer(
    data: CheckpointStoredData,
    archiveKey: string,
    repo: string,
    known: LayerDescriptor | undefined,
    mountFrom: string | undefined,
  ): Promise<LayerDescriptor & { via: PushedBlob['via'] }> {
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

  /**
   * Config blob, then the manifest by digest, then the index under the tag (it
   * references the manifest). A manifest already there is not put again: a
   * registry rewrites it in place, and a concurrent push of the index that
   * reads it meanwhile fails.
   */
  async function pushImage(repo: string, tag: string, image: CheckpointImage, mountFrom: string | undefined): Promise<void> {
    const config = image.config.descriptor;
    if (!(await deps.target.hasBlob(repo, config.digest)) && !(mountFrom && (await deps.target.mountBlob(repo, config.digest, mountFrom)))) {
      await deps.target.uploadBlob(repo, bufferStream(image.config.bytes), { digest: config.digest, size: config.size });
    }
    const manifest = image.manifest.descriptor.digest;
    if (!(await deps.target.hasManifest(repo, manifest))) await deps.target.putManifest(repo, manifest, MediaTypes.manifest, image.manifest.bytes);
    await deps.target.putManifest(repo, tag, MediaTypes.index, image.index.bytes);
  }

  /**
   * Whether a push that failed permanently left the image whole after all: a
   * concurrent identical push (another replica, a redelivered event) makes the
   * registry answer the loser DIGEST_INVALID, BLOB_UPLOAD_UNKNOWN or
   * MANIFEST_BLOB_UNKNOWN, and 500 while the winner is still writing. So the
   * image part is pushed again after short pauses (the winner is usually done
   * by then), then the index is looked up by digest. Whatever fails here, the
   * first failure stands.
   */
  async function pushedAfterAll(repo: string, tag: string, image: CheckpointImage, mountFrom: string | undefined): Promise<boolean> {
    for (const ms of REPUSH_DELAYS_MS) {
      await sleep(ms);
      try {
        await pushImage(repo, tag, image, mountFrom);
        return true;
      } catch {
        // Pushed again after the next pause, then decided by the lookup below.
      }
    }
    return deps.target.hasManifest(repo, image.index.descriptor.digest).catch(() => false);
  }

  /** Builds once per checkpoint at a time: an identical event joins the attempt in flight. */
  function attemptOnce(data: CheckpointStoredData, ctx: HandlerContext): Promise<Outcome> {
    const dataJson = JSON.stringify(data);
    const flight = inFlight.get(data.id);
    if (flight?.dataJson === dataJson) {
      ctx.log.info({ checkpointId: data.id }, `joining the build of checkpoint ${data.id} in flight`);
      return flight.outcome;
    }
    // The same id with other data (forged, or a bug upstream) never shares another event's outcome: it waits its turn.
    if (flight) return flight.outcome.then(() => attemptOnce(data, ctx));
    const outcome = attempt(data, ctx).finally(() => inFlight.delete(data.id));
    inFlight.set(data.id, { dataJson, outcome });
    return outcome;
  }

  /** Builds, decides the outcome, then prunes the container whatever it was: S3 must not grow while builds fail. */
  async function attempt(data: CheckpointStoredData, ctx: HandlerContext): Promise<Outcome> {
    const outcome = await build(data, ctx).then(
      (built): Outcome => ({ built }),
      (err: unknown): Outcome => {
        if (!isPermanent(err)) return { error: err };
        const reason = `build-image ${data.namespace}/${data.pod}/${data.container} checkpoint ${data.id}: ${errorMessage(err)}`;
        ctx.log.warn({ reason }, 'build failed permanently');
        return { failed: reason };
      },
    );
    if (deps.retention) await retain(deps.retention, data, ctx);
    return outcome;
  }

  /** Prunes the container to its workload's limits; a failure only waits for the next pass. */
  async function retain(retention: Retention, data: CheckpointStoredData, ctx: HandlerContext): Promise<void> {
    const ref = { namespace: data.namespace, workload: data.workload, container: data.container };
    const where = `${data.namespace}/${data.workload.kind}/${data.workload.name}/${data.container}`;
    try {
      const defaults = { keep: retention.keep, maxBytes: retention.maxBytes ?? 0 };
      const kind = data.workload.kind;
      // A workload that cannot be read now prunes nothing rather than by limits it may override.
      const workload = retention.workloads && kind !== 'Pod' ? await retention.workloads.getWorkload(data.namespace, kind, data.workload.name) : undefined;
      const annotations = { ...workload?.spec?.template?.metadata?.annotations, ...workload?.metadata?.annotations };
      const { limits, problems } = retentionLimits(defaults, annotations);
      for (const problem of problems) ctx.log.warn({ workload: where }, `retention: ${problem}`);
      if (limits.keep === 0 && limits.maxBytes === 0) return;
      await pruneCheckpoints({ store: deps.store, target: deps.target, pods: retention.pods, log: ctx.log }, ref, limits, data.id);
    } catch (err) {
      // The build's outcome stands; what was not pruned now is pruned by the next pass.
      ctx.log.warn({ err: errorMessage(err) }, `retention: pruning ${where} failed: ${errorMessage(err)}`);
    }
  }

  return {
    name: NAME,
    accepts: [EventTypes.checkpointStored],
    emits: true,
    build,
    async handle(event: IncomingEvent<typeof EventTypes.checkpointStored>, ctx: HandlerContext): Promise<KcrEvent[]> {
      const data = event.data;
      const common = { source: NAME, ...(ctx.traceparent ? { traceparent: ctx.traceparent } : {}) };
      const outcome = await attemptOnce(data, ctx);
      if ('error' in outcome) throw outcome.error;
      if ('failed' in outcome) return [events.checkpointFailed({ ...data, stage: 'build', reason: outcome.failed }, common)];
      const { record, stored } = outcome.built;
      const built: ImageBuiltData = { ...stored, image: { reference: record.reference, digest: record.digest, size: record.size } };
      return [events.imageBuilt(built, common)];
    },
  };
}

/** Auth refused, registry 4xx, bytes that do not match their digest, a missing archive: retrying cannot help. */
function isPermanent(err: unknown): boolean {
  return err instanceof PermanentFailure || err instanceof RegistryError || err instanceof BlobMismatchError || err instanceof ObjectNotFoundError;
}

/** Pauses before pushing the image part again after a failed push: a concurrent push of the same image finishes within them. */
const REPUSH_DELAYS_MS = [50, 250, 1000];

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
