// Retention: after a build, the container's committed checkpoints beyond the
// newest `keep` go. In S3 image.json goes first (no longer restorable), then
// manifest.json (no longer committed), then the archive and any bad marker; then
// the image leaves the registry or layout. Uncommitted checkpoints (an upload in
// flight) and the checkpoint just built are never touched; files left of a
// pruned checkpoint (a bad marker written afterwards) go too.
import type { Logger } from 'pino';
import type { ImageTarget } from '../adapters/image-target.js';
import { getJsonIfParsable, type ObjectStore } from '../adapters/object-store.js';
import { CheckpointCatalog, type ContainerRef } from '../domain/checkpoint-catalog.js';
import { ARTIFACT_FILES, artifactKey, type CheckpointLocation } from '../domain/storage-layout.js';
import { errorMessage } from '../runtime/errors.js';
import { ImageRecord } from './image-record.js';

export interface RetentionDeps {
  store: ObjectStore;
  target: ImageTarget;
  log: Logger;
}

/** Deletes the committed checkpoints of `ref` older than the newest `keep`, except `current`; returns their ids. */
export async function pruneCheckpoints(deps: RetentionDeps, ref: ContainerRef, keep: number, current: string): Promise<string[]> {
  const all = await new CheckpointCatalog(deps.store).checkpointFiles(ref);
  const committed = all.filter(([, files]) => files.has(ARTIFACT_FILES.manifest));
  // Leftovers of a checkpoint pruned before restore-pod marked it bad: no manifest, no upload in flight.
  const leftovers = all.filter(([, files]) => !files.has(ARTIFACT_FILES.manifest) && !files.has(ARTIFACT_FILES.archive));
  const victims = [...committed.slice(keep), ...leftovers].filter(([id]) => id !== current);
  for (const [id, files] of victims) {
    const loc: CheckpointLocation = { ...ref, id };
    // An image.json that is not JSON names no image; any other read failure stops the prune (retried after the next build).
    const raw = files.has(ARTIFACT_FILES.image) ? await getJsonIfParsable(deps.store, artifactKey(loc, 'image')) : undefined;
    const record = raw === undefined ? undefined : ImageRecord.safeParse(raw);
    for (const file of ['image', 'manifest', 'archive', 'bad'] as const) {
      if (files.has(ARTIFACT_FILES[file])) await deps.store.remove(artifactKey(loc, file));
    }
    if (record?.success && record.data.target === deps.target.kind && record.data.host === deps.target.host) {
      const r = record.data;
      try {
        await deps.target.removeImage(r.repository, { indexDigest: r.indexDigest, manifestDigest: r.manifestDigest, configDigest: r.configDigest, layerDigest: r.layer.digest });
      } catch (err) {
        // S3 no longer names it, so nothing restores from it; the image is only space now.
        deps.log.warn({ checkpointId: id, reference: r.reference, err: errorMessage(err) }, `retention: could not delete image ${r.reference}: ${errorMessage(err)}`);
      }
    }
    deps.log.info({ checkpointId: id, keep }, `retention: deleted checkpoint ${id}`);
  }
  return victims.map(([id]) => id);
}
