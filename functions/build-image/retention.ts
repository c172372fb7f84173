// Retention: after every build, failed ones too, the container's committed
// checkpoints beyond the newest `keep` go. The image to delete is first
// written to prune.json; then in S3 image.json goes (no longer restorable),
// then manifest.json (no longer committed), then the archive and any bad
// marker; then the image leaves the registry or layout, and only then
// prune.json. A crash or a failed deletion (the registry down) leaves
// prune.json, and every pass first finishes what such records name. So the
// S3 side is pruned even while the registry is unreachable, and no image is
// orphaned. Uncommitted checkpoints (an upload in flight) and the checkpoint
// just built are never touched; files left of a pruned checkpoint (a bad
// marker written afterwards) go too.
import type { Logger } from 'pino';
import type { ImageTarget } from './image-target.js';
import { getJsonIfParsable, type ObjectStore } from '../core/storage/object-store.js';
import { CheckpointCatalog, type ContainerRef } from '../core/storage/checkpoint-catalog.js';
import { ARTIFACT_FILES, artifactKey, type CheckpointLocation } from '../core/storage/layout.js';
import { errorMessage } from '../core/runtime/errors.js';
import { ImageRecord } from './image-record.js';

export interface RetentionDeps {
  store: ObjectStore;
  target: ImageTarget;
  log: Logger;
}

/** A checkpoint's files in S3, by name. */
type Files = ReadonlySet<string>;

/** What is still there of a checkpoint being pruned, in the order it goes: image.json first, so restore stops picking it. */
const PRUNED_FILES = ['image', 'manifest', 'archive', 'bad'] as const;

/**
 * Finishes the prunes earlier passes left, then deletes the committed
 * checkpoints of `ref` older than the newest `keep`, except `current` (their
 * images may still wait in prune.json).
 */
export async function pruneCheckpoints(deps: RetentionDeps, ref: ContainerRef, keep: number, current: string): Promise<void> {
  const all = await new CheckpointCatalog(deps.store).checkpointFiles(ref);
  const uncommitted = all.filter(([id, files]) => id !== current && !files.has(ARTIFACT_FILES.manifest));
  // Only where manifest.json is gone: next to one, prune.json is stale (the checkpoint was stored anew after its prune) and the image its own again.
  for (const [id, files] of uncommitted.filter(([, files]) => files.has(ARTIFACT_FILES.prune))) await finishPrune(deps, { ...ref, id }, files);

  const committed = all.filter(([, files]) => files.has(ARTIFACT_FILES.manifest));
  // Leftovers of a checkpoint pruned before restore-pod marked it bad: no manifest, no upload in flight, no prune record (finished above).
  const leftovers = uncommitted.filter(([, files]) => !files.has(ARTIFACT_FILES.archive) && !files.has(ARTIFACT_FILES.prune));
  const victims = [...committed.slice(keep).filter(([id]) => id !== current), ...leftovers];
  for (const [id, files] of victims) {
    const loc: CheckpointLocation = { ...ref, id };
    // An image.json that is not JSON names no image; any other read failure stops the prune (retried by the next pass).
    const raw = files.has(ARTIFACT_FILES.image) ? await getJsonIfParsable(deps.store, artifactKey(loc, 'image')) : undefined;
    const record = raw === undefined ? undefined : ImageRecord.safeParse(raw);
    const image = record?.success && ownImage(deps, record.data) ? record.data : undefined;
    if (image) await deps.store.putJson(artifactKey(loc, 'prune'), image);
    await removeFiles(deps, loc, files);
    if (image) await removeImage(deps, loc, image);
    deps.log.info({ checkpointId: id, keep }, `retention: deleted checkpoint ${id}`);
  }
}

/** The rest of a prune a crash or a failed image deletion interrupted: S3 leftovers, the image, then the record. */
async function finishPrune(deps: RetentionDeps, loc: CheckpointLocation, files: Files): Promise<void> {
  const record = ImageRecord.safeParse(await getJsonIfParsable(deps.store, artifactKey(loc, 'prune')));
  await removeFiles(deps, loc, files);
  if (record.success && ownImage(deps, record.data)) {
    await removeImage(deps, loc, record.data);
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
    deps.log.warn({ checkpointId: loc.id, reference: image.reference, err: errorMessage(err) }, `retention: could not delete image ${image.reference} yet (kept in ${artifactKey(loc, 'prune')}): ${errorMessage(err)}`);
    return;
  }
  await deps.store.remove(artifactKey(loc, 'prune'));
}

function ownImage(deps: RetentionDeps, image: ImageRecord): boolean {
  return image.target === deps.target.kind && image.host === deps.target.host;
}
