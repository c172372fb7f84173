// What bench/restore.ts (the cluster, S3 and the failures) and
// bench/restore-worker.ts (restore-pod in a process of its own) share: the
// messages they exchange over the IPC channel, and the S3 documents of one
// seeded checkpoint, built the same way on both sides so the driver knows
// which image each restore must patch in.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { checkpointId } from '../functions/core/contract/checkpoint-id.js';
import { CheckpointStoredData } from '../functions/core/contract/events.js';
import { KUBELET_CHECKPOINT_DIR, kubeletArchiveName } from '../functions/core/contract/kubelet-archive.js';
import { artifactKey, s3Uri, type CheckpointLocation } from '../functions/core/storage/layout.js';
import { MANIFEST_API_VERSION, type CheckpointManifest, type ImageRecord } from '../functions/core/storage/records.js';

export const CONTAINER = 'app';
export const ORIGINAL_IMAGE = `quay.io/kcr/${CONTAINER}:1`;
export const IMAGE_HOST = 'kcr.local';
export const CASES = ['a', 'b', 'c'] as const;
export type CaseName = (typeof CASES)[number];
/** Which bucket each case's restore-pod reads: (a) and (c) share the 10-checkpoint history. */
export const BUCKET_OF: Record<CaseName, 'history' | 'single'> = { a: 'history', b: 'single', c: 'history' };

/** One checkpoint to seed: who was checkpointed, where, when. */
export const Seed = z.object({
  namespace: z.string(),
  workload: z.string(),
  pod: z.string(),
  podUid: z.string(),
  node: z.string(),
  checkpointedAt: z.string(),
});
export type Seed = z.infer<typeof Seed>;

export interface SeedDocuments {
  loc: CheckpointLocation;
  manifest: CheckpointManifest;
  image: ImageRecord;
}

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/**
 * manifest.json as store-artifact writes it (the stored event's data, checked
 * against the contract, under `data`) and image.json as build-image writes it.
 * Digests are derived from the id: no archive or image exists behind them.
 */
export function seedDocuments(bucket: string, seed: Seed): SeedDocuments {
  const id = checkpointId({ podUid: seed.podUid, container: CONTAINER, checkpointedAt: seed.checkpointedAt });
  const loc: CheckpointLocation = { namespace: seed.namespace, workload: { kind: 'Deployment', name: seed.workload }, container: CONTAINER, id };
  const archivePath = `${KUBELET_CHECKPOINT_DIR}/${kubeletArchiveName({ pod: seed.pod, namespace: seed.namespace, container: CONTAINER, timestamp: seed.checkpointedAt })}`;
  const data = CheckpointStoredData.parse({
    id,
    namespace: seed.namespace,
    workload: loc.workload,
    pod: seed.pod,
    podUid: seed.podUid,
    container: CONTAINER,
    node: seed.node,
    archivePath,
    checkpointedAt: seed.checkpointedAt,
    artifact: { uri: s3Uri(bucket, artifactKey(loc, 'archive')), size: 4 * 1024 * 1024, sha256: sha256(`archive:${id}`) },
  });
  const manifest: CheckpointManifest = {
    apiVersion: MANIFEST_API_VERSION,
    kind: 'CheckpointManifest',
    data,
    archive: {
      rootfsImageName: ORIGINAL_IMAGE,
      runtime: 'runc',
      containerName: CONTAINER,
      checkpointedTime: seed.checkpointedAt,
      container: { pod: seed.pod, namespace: seed.namespace, podUid: seed.podUid, container: CONTAINER },
      entries: 14,
      checkpointFiles: 9,
      topLevel: ['bind.mounts', 'checkpoint', 'config.dump', 'deleted.files', 'dump.log', 'rootfs-diff.tar', 'spec.dump', 'stats-dump'],
    },
    source: { node: seed.node, archivePath },
    storedAt: seed.checkpointedAt,
  };
  const repository = `kcr/${seed.namespace}/deployment-${seed.workload}-${CONTAINER}`;
  const digest = `sha256:${sha256(`image:${id}`)}`;
  const layer = { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: `sha256:${data.artifact.sha256}`, size: data.artifact.size };
  const image: ImageRecord = {
    reference: `${IMAGE_HOST}/${repository}@${digest}`,
    digest,
    size: 1234,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    repository,
    host: IMAGE_HOST,
    target: 'oci-layout',
    tag: id,
    indexDigest: digest,
    manifestDigest: `sha256:${sha256(`manifest:${id}`)}`,
    configDigest: `sha256:${sha256(`config:${id}`)}`,
    layer,
  };
  return { loc, manifest, image };
}

// ---------- IPC: the driver asks, the worker answers ----------

const S3Endpoint = z.object({ endpoint: z.string(), accessKey: z.string(), secretKey: z.string(), region: z.string() });

export const Request = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('init'), kubeconfigPath: z.string(), s3: S3Endpoint, buckets: z.object({ history: z.string(), single: z.string() }) }),
  z.object({ kind: z.literal('seed'), bucket: z.enum(['history', 'single']), seeds: z.array(Seed), parallelism: z.number().int().positive() }),
  z.object({ kind: z.literal('serve') }),
  /** The worker's clock, to check that both processes read the same wall clock. */
  z.object({ kind: z.literal('clock') }),
  z.object({ kind: z.literal('report') }),
  z.object({ kind: z.literal('stop') }),
]);
export type Request = z.infer<typeof Request>;
export const Envelope = z.object({ id: z.number().int(), request: Request });

export const Reply = z.discriminatedUnion('ok', [
  z.object({ id: z.number().int(), ok: z.literal(true), value: z.unknown() }),
  z.object({ id: z.number().int(), ok: z.literal(false), error: z.string() }),
]);
export type Reply = z.infer<typeof Reply>;

export const Done = z.object({});
export const Seeded = z.object({ objects: z.number().int(), ms: z.number() });
export const Served = z.record(z.enum(CASES), z.string());
export const Clock = z.object({ now: z.number() });

/** What restore-pod did with one event, measured inside the worker. */
export const HandledEvent = z.object({
  case: z.enum(CASES),
  pod: z.string(),
  /** Wall-clock ms (performance.timeOrigin + performance.now()) when the handler got the event. */
  handlerAt: z.number(),
  doneAt: z.number().optional(),
  /** Every patchPod call, with the wall-clock ms just before it was sent and the images it sets. */
  patches: z.array(z.object({ at: z.number(), images: z.array(z.string()) })),
  /** S3 and API calls made for this event, and the time spent waiting on those made before its first patch. */
  s3: z.object({ list: z.number().int(), get: z.number().int(), put: z.number().int(), msBeforePatch: z.number(), listMsBeforePatch: z.number() }),
  kube: z.object({ calls: z.number().int(), msBeforePatch: z.number() }),
  emitted: z.array(z.string()),
  error: z.string().optional(),
});
export type HandledEvent = z.infer<typeof HandledEvent>;
export const Report = z.object({ events: z.array(HandledEvent) });

/** A high-resolution wall clock shared by both processes (µs resolution, same origin as Date.now()). */
export function wallNow(): number {
  return performance.timeOrigin + performance.now();
}
