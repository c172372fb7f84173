// store-artifact: io.kcr.checkpoint.created → the kubelet archive streamed from
// the node-agent into S3 (archive.tar, inspected on the way), manifest.json
// written last as the commit marker, io.kcr.checkpoint.stored; then the node
// copy is deleted. Nothing is buffered: memory is the upload's parts in flight.
// The event only says where the archive is: its id must be the one the archive
// name and pod uid give, its workload the pod's owner, and spec.dump must name
// the same pod; otherwise nothing is stored.
import { Transform, pipeline } from 'node:stream';
import type { ObjectStore } from '../core/storage/object-store.js';
import { NodeAgentLookupError } from '../core/node-agent/locator.js';
import { ArchiveGoneError, NodeAgentRefusedError, type ArchiveSource } from './node-agent-client.js';
import { events, type KcrEvent } from '../core/contract/build.js';
import { EventTypes, type CheckpointCreatedData, type CheckpointStoredData } from '../core/contract/events.js';
import { parseKubeletArchivePath } from '../core/contract/kubelet-archive.js';
import { checkpointId } from '../core/contract/checkpoint-id.js';
import { podOwner } from '../core/kubernetes/pods.js';
import type { V1Pod } from '@kubernetes/client-node';
import { ArchiveInvalidError, createArchiveInspector, type CheckpointArchiveInfo } from './checkpoint-archive.js';
import { TarIndexer, type TarIndexEntry } from '../core/storage/tar-index.js';

/** More entries than this (a rootfs unpacked in the archive, say) and manifest.json keeps no index. */
const MAX_INDEXED_ENTRIES = 4096;
import { artifactKey, s3Uri, type CheckpointLocation } from '../core/storage/layout.js';
import { MANIFEST_API_VERSION, readManifest, writeManifest, type CheckpointManifest } from '../core/storage/records.js';
import { BadInputError, PermanentFailure, TransientError, errorMessage } from '../core/runtime/errors.js';
import type { FunctionHandler, HandlerContext, IncomingEvent } from '../core/runtime/handler.js';

const NAME = 'store-artifact';

/** What store-artifact reads of the API: the checkpointed pod, to check whose checkpoint it is. */
export interface PodReader {
  getPod(namespace: string, name: string): Promise<V1Pod | undefined>;
}

export interface StoreArtifactDeps {
  store: ObjectStore;
  agents: ArchiveSource;
  pods: PodReader;
  /** Cap on config.dump/spec.dump/stats-dump sizes; default 1 MiB. */
  maxDumpBytes?: number;
  now?: () => Date;
}

export function createStoreArtifact(deps: StoreArtifactDeps): FunctionHandler<typeof EventTypes.checkpointCreated> {
  const now = deps.now ?? (() => new Date());
  let bucketReady: Promise<void> | undefined;
  const ensureBucket = () => {
    bucketReady ??= deps.store.ensureBucket().catch((err: unknown) => {
      bucketReady = undefined; // try again on the next event
      throw err;
    });
    return bucketReady;
  };
  // Duplicates of one checkpoint (at-least-once delivery) join the attempt in flight instead of uploading it again.
  const inFlight = new Map<string, Promise<KcrEvent[]>>();

  return {
    name: NAME,
    accepts: [EventTypes.checkpointCreated],
    emits: true,
    handle(event: IncomingEvent<typeof EventTypes.checkpointCreated>, ctx: HandlerContext): Promise<KcrEvent[]> {
      const key = JSON.stringify(event.data);
      const running = inFlight.get(key);
      if (running) return running;
      const attempt = store(event.data, ctx).finally(() => inFlight.delete(key));
      inFlight.set(key, attempt);
      return attempt;
    },
  };

  async function store(data: CheckpointCreatedData, ctx: HandlerContext): Promise<KcrEvent[]> {
    const common = { source: NAME, ...(ctx.traceparent ? { traceparent: ctx.traceparent } : {}) };
    const loc: CheckpointLocation = { namespace: data.namespace, workload: data.workload, container: data.container, id: data.id };
    const archiveKey = artifactKey(loc, 'archive');
    const manifestKey = artifactKey(loc, 'manifest');
    const log = ctx.log.child({ checkpointId: data.id, node: data.node, archivePath: data.archivePath });
    const fail = (reason: string) => {
      log.warn({ reason }, `checkpoint ${data.id} cannot be stored: ${reason}`);
      return [events.checkpointFailed({ ...data, stage: 'store', reason }, common)];
    };
    let archiveName;
    try {
      archiveName = parseKubeletArchivePath(data.archivePath, { pod: data.pod, namespace: data.namespace, container: data.container });
    } catch (err) {
      throw new BadInputError(`${EventTypes.checkpointCreated} ${data.id}: ${errorMessage(err)}`);
    }
    // The id is derived, never chosen: a made-up "newest" id would win every restore and push real checkpoints out.
    const identity = identityMismatch(data, archiveName.timestamp);
    if (identity) return fail(identity);

    await ensureBucket();
    const committed = await committedManifest(deps.store, loc);
    if (committed) {
      log.info({ key: manifestKey }, `checkpoint ${data.id} is already stored; emitting stored again`);
      return [events.checkpointStored({ ...data, artifact: committed.artifact }, common)];
    }
    const owner = await ownerMismatch(deps.pods, data);
    if (owner) return fail(owner);

    let stored: { artifact: CheckpointStoredData['artifact']; info: CheckpointArchiveInfo };
    const started = performance.now();
    try {
      stored = await uploadArchive(deps, data, archiveKey);
    } catch (err) {
      if (!(err instanceof PermanentFailure)) throw err;
      // Another delivery of this checkpoint may have stored it (and deleted the node's copy) meanwhile:
      // its commit stands, and nothing of it is removed.
      const meanwhile = await committedManifest(deps.store, loc);
      if (meanwhile) {
        log.info({ key: manifestKey, reason: err.message }, `checkpoint ${data.id} was stored by another attempt`);
        return [events.checkpointStored({ ...data, artifact: meanwhile.artifact }, common)];
      }
      return fail(err.message);
    }

    ctx.observe?.('transferSeconds', (performance.now() - started) / 1000, { stage: 'store' });
    ctx.observe?.('archiveBytes', stored.artifact.size);
    const manifest = buildManifest(data, stored.artifact, stored.info, now());
    await writeManifest(deps.store, loc, manifest);
    log.info({ key: manifestKey, size: stored.artifact.size, sha256: stored.artifact.sha256 }, `stored checkpoint ${data.id} (${stored.artifact.size} bytes)`);

    // The archive is safe in S3 now; the node copy only fills the node's disk. A failure here changes nothing about the result.
    try {
      const outcome = await deps.agents.remove(data.node, data.archivePath);
      log.info({ outcome }, outcome === 'deleted' ? `deleted ${data.archivePath} on ${data.node}` : `node-agent kept ${data.archivePath} on ${data.node}`);
    } catch (err) {
      log.warn({ err: errorMessage(err) }, `could not delete ${data.archivePath} on ${data.node}: ${errorMessage(err)}`);
    }
    return [events.checkpointStored(manifest.data, common)];
  }
}

/** Why the event's id and time are not the ones the kubelet's archive name gives, or undefined when they are. */
function identityMismatch(data: CheckpointCreatedData, archiveTimestamp: string): string | undefined {
  if (Date.parse(data.checkpointedAt) !== Date.parse(archiveTimestamp)) return `checkpointedAt ${data.checkpointedAt} is not the time of archive ${data.archivePath} (${archiveTimestamp})`;
  const expected = checkpointId({ podUid: data.podUid, container: data.container, checkpointedAt: archiveTimestamp });
  return data.id === expected ? undefined : `id ${data.id} is not the checkpoint id of pod uid ${data.podUid}, container ${data.container} at ${archiveTimestamp} (${expected})`;
}

/**
 * Why the event's workload is not the checkpointed pod's, or undefined when it
 * is: the pod's controller as the API has it, or once the pod is gone (evicted
 * after its checkpoint), the name its controller gave it.
 */
async function ownerMismatch(pods: PodReader, data: CheckpointCreatedData): Promise<string | undefined> {
  const pod = await pods.getPod(data.namespace, data.pod);
  const claimed = `${data.workload.kind} ${data.workload.name}`;
  if (pod && pod.metadata?.uid === data.podUid) {
    const owner = podOwner(pod);
    return owner.kind === data.workload.kind && owner.name === data.workload.name ? undefined : `pod ${data.namespace}/${data.pod} belongs to ${owner.kind} ${owner.name}, not ${claimed}`;
  }
  return nameFits(data.pod, data.workload) ? undefined : `pod ${data.namespace}/${data.pod} (gone from the API) cannot be a pod of ${claimed}`;
}

/** Whether a controller of this kind and name names its pods so. */
function nameFits(pod: string, workload: CheckpointCreatedData['workload']): boolean {
  if (workload.kind === 'Pod') return pod === workload.name;
  if (workload.kind === 'StatefulSet') return pod.startsWith(`${workload.name}-`) && /^\d+$/.test(pod.slice(workload.name.length + 1));
  // <deployment>-<pod-template-hash>-<5 random>
  return pod.startsWith(`${workload.name}-`) && /^[a-z0-9]+-[a-z0-9]{5}$/.test(pod.slice(workload.name.length + 1));
}

/** The artifact of a complete manifest.json for this checkpoint, or undefined when there is none to trust. */
async function committedManifest(store: ObjectStore, loc: CheckpointLocation): Promise<{ artifact: CheckpointStoredData['artifact'] } | undefined> {
  // A manifest that is not one (not JSON, another shape, another id) is no commit: the upload redoes it.
  const manifest = await readManifest(store, loc);
  return manifest && manifest.data.id === loc.id ? { artifact: manifest.data.artifact } : undefined;
}

/**
 * Streams the archive from the node-agent into S3, teeing every chunk to the
 * inspector (with backpressure: the upload waits for the parser). The tee
 * finishes only after the inspection does, so an archive found invalid at its
 * very end still aborts the upload before it completes.
 */
async function uploadArchive(deps: StoreArtifactDeps, data: CheckpointCreatedData, key: string): Promise<{ artifact: CheckpointStoredData['artifact']; info: CheckpointArchiveInfo }> {
  let download;
  try {
    download = await deps.agents.open(data.node, data.archivePath);
  } catch (err) {
    if (err instanceof ArchiveGoneError) throw new PermanentFailure(`archive ${data.archivePath} is gone from node ${data.node}: ${err.message}`);
    if (err instanceof NodeAgentRefusedError) throw new PermanentFailure(`node-agent of ${data.node} refused the archive: ${err.message}`);
    if (err instanceof NodeAgentLookupError) throw new PermanentFailure(`node-agent of ${data.node} not found: ${err.message}`);
    throw err;
  }

  const inspector = createArchiveInspector(deps.maxDumpBytes !== undefined ? { maxDumpBytes: deps.maxDumpBytes } : {});
  // The entries' offsets, for range reads later; a forensic aid only, so a failure to index drops the index, not the checkpoint.
  let indexer: TarIndexer | undefined = new TarIndexer();
  let info: (CheckpointArchiveInfo & { index?: TarIndexEntry[] }) | undefined;
  const tee = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      try {
        indexer?.push(chunk);
      } catch {
        indexer = undefined;
      }
      inspector.write(chunk).then(() => cb(null, chunk), cb);
    },
    flush(cb) {
      inspector.end().then((result) => {
        // Checked before the upload completes: an archive of another container never becomes archive.tar.
        const mismatch = containerMismatch(data, result);
        if (mismatch) return cb(new ArchiveInvalidError(mismatch));
        const index = indexer && indexer.entries.length <= MAX_INDEXED_ENTRIES ? indexer.entries : undefined;
        info = { ...result, ...(index ? { index } : {}) };
        cb();
      }, cb);
    },
  });
  const body = pipeline(download.body, tee, (err) => {
    if (err) inspector.destroy(err);
  });

  let result;
  try {
    result = await deps.store.upload(key, body, { contentType: 'application/x-tar' });
  } catch (err) {
    if (err instanceof ArchiveInvalidError) throw new PermanentFailure(`archive ${data.archivePath} from node ${data.node} is not a usable checkpoint: ${err.message}`);
    throw err;
  }
  if (!info) throw new Error(`inspection of ${data.archivePath} produced no result although the upload completed`);
  if (result.size !== download.size) throw new TransientError(`uploaded ${result.size} bytes of ${data.archivePath}, the node-agent announced ${download.size}`);
  return { artifact: { uri: s3Uri(deps.store.bucket, key), size: result.size, sha256: result.sha256 }, info };
}

/** Why the archive's own idea of its container (spec.dump) differs from the event's, or undefined when it matches. */
function containerMismatch(data: CheckpointCreatedData, info: CheckpointArchiveInfo): string | undefined {
  const c = info.container;
  if (!c.pod || !c.namespace || !c.container || !c.podUid) return 'does not name its pod, pod uid, namespace and container in spec.dump';
  const differences: string[] = [];
  if (c.namespace !== data.namespace) differences.push(`namespace ${c.namespace} ≠ ${data.namespace}`);
  if (c.pod !== data.pod) differences.push(`pod ${c.pod} ≠ ${data.pod}`);
  if (c.container !== data.container) differences.push(`container ${c.container} ≠ ${data.container}`);
  if (c.podUid !== data.podUid) differences.push(`pod uid ${c.podUid} ≠ ${data.podUid}`);
  return differences.length ? `belongs to another container (${differences.join(', ')})` : undefined;
}

function buildManifest(data: CheckpointCreatedData, artifact: CheckpointStoredData['artifact'], info: CheckpointArchiveInfo & { index?: TarIndexEntry[] }, storedAt: Date): CheckpointManifest {
  const cfg = info.config;
  const optional = <K extends string>(key: K, value: string | undefined) => (value ? ({ [key]: value } as Record<K, string>) : {});
  return {
    apiVersion: MANIFEST_API_VERSION,
    kind: 'CheckpointManifest',
    data: { ...data, artifact },
    archive: {
      ...optional('rootfsImageName', cfg.rootfsImageName),
      ...optional('rootfsImageRef', cfg.rootfsImageRef ?? cfg.rootfsImageID),
      ...optional('rootfsImage', cfg.rootfsImage),
      ...optional('runtime', cfg.runtime),
      ...optional('containerId', cfg.id),
      ...optional('containerName', cfg.name),
      ...optional('createdTime', cfg.createdTime),
      ...optional('checkpointedTime', cfg.checkpointedTime),
      container: info.container,
      ...(info.stats ? { criuDumpStats: info.stats } : {}),
      entries: info.entries,
      checkpointFiles: info.checkpointFiles,
      topLevel: info.topLevel,
      ...(info.index ? { index: info.index } : {}),
    },
    source: { node: data.node, archivePath: data.archivePath },
    storedAt: storedAt.toISOString(),
  };
}
