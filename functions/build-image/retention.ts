// Retention: after every build, failed ones too, the container's committed
// checkpoints over its limits go (retention-policy.ts: the newest that fit the
// count and the bytes stay; pinned ones are never removed, and a pin written
// while a pass runs is checked again just before each deletion). The image to delete is first
// written to prune.json; then in S3 image.json goes (no longer restorable),
// then manifest.json (no longer committed), then the archive and any bad
// marker; then the image leaves the registry or layout, and only then
// prune.json. A crash or a failed deletion (the registry down) leaves
// prune.json, and every pass first finishes what such records name. So the
// S3 side is pruned even while the registry is unreachable, and no image is
// orphaned. Uncommitted checkpoints (an upload in flight) and the checkpoint
// just built are never touched; files left of a pruned checkpoint (a bad
// marker written afterwards) go too.
// A checkpoint whose image a pod still references (spec or status, by index
// or manifest digest, in any phase but Succeeded/Failed) is never pruned: a
// restored pod's restart or reschedule pulls that image again. Pods are listed
// only when something with an image would go, in the checkpoint's namespace
// (the only one restore-pod patches pods in).
import type { V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { ImageTarget } from './image-target.js';
import type { ObjectStore } from '../core/storage/object-store.js';
import { CheckpointCatalog, type ContainerRef } from '../core/storage/checkpoint-catalog.js';
import { ARTIFACT_FILES, artifactKey, type CheckpointLocation } from '../core/storage/layout.js';
import { errorMessage } from '../core/runtime/errors.js';
import { isPinned, readImage, readPrune, writePrune, type ImageRecord } from '../core/storage/records.js';
import { overLimits, type RetentionLimits } from './retention-policy.js';

/** The API server's pod list: build-image's only API call. */
export interface PodLister {
  listPods(namespace: string, labelSelector?: string, fieldSelector?: string): Promise<V1Pod[]>;
}

export interface RetentionDeps {
  store: ObjectStore;
  target: ImageTarget;
  pods: PodLister;
  log: Logger;
}

/** Pods that may still start containers: ended ones never pull again. */
const NOT_ENDED = 'status.phase!=Succeeded,status.phase!=Failed';

/** Whether a pod references the image; the first call lists the namespace's pods, a failed list fails the pass. */
type InUse = (image: ImageRecord) => Promise<boolean>;

/** A checkpoint's files in S3, by name. */
type Files = ReadonlySet<string>;

/** What is still there of a checkpoint being pruned, in the order it goes: image.json first, so restore stops picking it. */
const PRUNED_FILES = ['image', 'manifest', 'archive', 'bad'] as const;

/**
 * Finishes the prunes earlier passes left, then deletes the committed
 * checkpoints of `ref` over `limits`, except `current` and pinned ones (their
 * images may still wait in prune.json).
 */
export async function pruneCheckpoints(deps: RetentionDeps, ref: ContainerRef, limits: RetentionLimits, current: string): Promise<void> {
  const objects = await new CheckpointCatalog(deps.store).checkpointObjects(ref);
  const all = objects.map(([id, files]): [string, Set<string>] => [id, new Set(files.keys())]);
  const inUse = imagesInUse(deps.pods, ref.namespace);
  const uncommitted = all.filter(([id, files]) => id !== current && !files.has(ARTIFACT_FILES.manifest));
  // Only where manifest.json is gone: next to one, prune.json is stale (the checkpoint was stored anew after its prune) and the image its own again.
  for (const [id, files] of uncommitted.filter(([, files]) => files.has(ARTIFACT_FILES.prune))) await finishPrune(deps, { ...ref, id }, files, inUse);

  const committed = objects
    .filter(([, files]) => files.has(ARTIFACT_FILES.manifest))
    .map(([id, files]) => ({ id, bytes: files.get(ARTIFACT_FILES.archive) ?? 0, pinned: files.has(ARTIFACT_FILES.pin) }));
  const over = new Set(overLimits(committed, limits, current));
  // Leftovers of a checkpoint pruned before restore-pod marked it bad: no manifest, no upload in flight, no prune record (finished above).
  const leftovers = uncommitted.filter(([, files]) => !files.has(ARTIFACT_FILES.archive) && !files.has(ARTIFACT_FILES.prune) && !files.has(ARTIFACT_FILES.pin));
  const victims = [...all.filter(([id]) => over.has(id)), ...leftovers];
  for (const [id, files] of victims) {
    const loc: CheckpointLocation = { ...ref, id };
    if (await isPinned(deps.store, loc)) {
      deps.log.info({ checkpointId: id }, `retention: keeping checkpoint ${id}: pinned`);
      continue;
    }
    // An image.json that is not one names no image; any other read failure stops the prune (retried by the next pass).
    const recorded = files.has(ARTIFACT_FILES.image) ? await readImage(deps.store, loc) : undefined;
    if (recorded && (await inUse(recorded))) {
      deps.log.debug({ checkpointId: id, reference: recorded.reference }, `retention: keeping checkpoint ${id}: a pod uses ${recorded.reference}`);
      continue;
    }
    const image = recorded && ownImage(deps, recorded) ? recorded : undefined;
    if (image) await writePrune(deps.store, loc, image);
    await removeFiles(deps, loc, files);
    if (image) await removeImage(deps, loc, image);
    deps.log.info({ checkpointId: id, keep: limits.keep, maxBytes: limits.maxBytes }, `retention: deleted checkpoint ${id}`);
  }
}

/** The rest of a prune a crash or a failed image deletion interrupted: S3 leftovers, the image, then the record. */
async function finishPrune(deps: RetentionDeps, loc: CheckpointLocation, files: Files, inUse: InUse): Promise<void> {
  const record = await readPrune(deps.store, loc);
  await removeFiles(deps, loc, files);
  if (record && ownImage(deps, record)) {
    // A pod started from it after all (patched by a restore that read image.json just before the prune): the image waits in prune.json until that pod ends.
    if (!(await inUse(record))) await removeImage(deps, loc, record);
    return;
  }
  // Names no image this target holds (written by hand, or the target changed since): nothing left to retry.
  deps.log.warn({ checkpointId: loc.id }, `retention: ${artifactKey(loc, 'prune')} names no image in ${deps.target.kind} ${deps.target.host}; dropping it`);
  await deps.store.remove(artifactKey(loc, 'prune'));
}

async function removeFiles(deps: RetentionDeps, loc: CheckpointLocation, files: Files): Promise<void> {
  for (const file of PRUNED_FILES) {
    if (files.has(ARTIFACT_FILES[file])) await deps.store.remove(artifactKey(loc, file));
  }
}

/** Deletes the image, then its prune record; a failed deletion keeps the record for the next pass. */
async function removeImage(deps: RetentionDeps, loc: CheckpointLocation, image: ImageRecord): Promise<void> {
  try {
    await deps.target.removeImage(image.repository, { indexDigest: image.indexDigest, manifestDigest: image.manifestDigest, configDigest: image.configDigest, layerDigest: image.layer.digest });
  } catch (err) {
    // S3 no longer names it as restorable; prune.json does, until a later pass deletes it.
    deps.log.warn(
      { checkpointId: loc.id, reference: image.reference, err: errorMessage(err) },
      `retention: could not delete image ${image.reference} yet (kept in ${artifactKey(loc, 'prune')}): ${errorMessage(err)}`,
    );
    return;
  }
  await deps.store.remove(artifactKey(loc, 'prune'));
}

function ownImage(deps: RetentionDeps, image: ImageRecord): boolean {
  return image.target === deps.target.kind && image.host === deps.target.host;
}

/** Lists the namespace's pods once, at the first question: most passes have nothing with an image to delete. */
function imagesInUse(pods: PodLister, namespace: string): InUse {
  let digests: Promise<ReadonlySet<string>> | undefined;
  return async (image) => {
    const used = await (digests ??= pods.listPods(namespace, undefined, NOT_ENDED).then(podImageDigests));
    return used.has(image.indexDigest) || used.has(image.manifestDigest);
  };
}

/** `…@sha256:<hex>` at the end of an image reference or image ID (`docker-pullable://repo@sha256:…` too). */
const DIGEST = /@(sha256:[0-9a-f]{64})$/;

/**
 * The digests every pod that has not ended references: what its containers
 * run or will pull (spec, by the index digest restore-pod patches in) and what
 * the runtime resolved (status imageID, often the platform manifest's digest).
 */
export function podImageDigests(pods: readonly V1Pod[]): Set<string> {
  const digests = new Set<string>();
  for (const pod of pods) {
    // Checked here too, whatever the list's field selector did: the answer decides what is deleted.
    if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') continue;
    const spec = pod.spec;
    const status = pod.status;
    const references = [
      ...[...(spec?.initContainers ?? []), ...(spec?.containers ?? []), ...(spec?.ephemeralContainers ?? [])].map((c) => c.image),
      ...[...(status?.initContainerStatuses ?? []), ...(status?.containerStatuses ?? []), ...(status?.ephemeralContainerStatuses ?? [])].flatMap((s) => [s.image, s.imageID]),
    ];
    for (const reference of references) {
      const digest = reference && DIGEST.exec(reference)?.[1];
      if (digest) digests.add(digest);
    }
  }
  return digests;
}
