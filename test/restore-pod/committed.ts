// A checkpoint as store-artifact and build-image commit it: manifest.json,
// then image.json, through the records' writers (no archive behind them).
import type { CheckpointStoredData } from '../../functions/core/contract/events.js';
import type { CheckpointLocation } from '../../functions/core/storage/layout.js';
import { MANIFEST_API_VERSION, writeImage, writeManifest } from '../../functions/core/storage/records.js';
import type { ObjectStore } from '../../functions/core/storage/object-store.js';

/** Commits `data`'s checkpoint; its image is `kcr.local/<repository>@<digest derived from the id>`. */
export async function commitCheckpoint(store: ObjectStore, data: CheckpointStoredData, repository: string): Promise<void> {
  const loc: CheckpointLocation = { namespace: data.namespace, workload: data.workload, container: data.container, id: data.id };
  await writeManifest(store, loc, {
    apiVersion: MANIFEST_API_VERSION,
    kind: 'CheckpointManifest',
    data,
    archive: {
      container: { pod: data.pod, namespace: data.namespace, podUid: data.podUid, container: data.container },
      entries: 4,
      checkpointFiles: 2,
      topLevel: ['checkpoint', 'config.dump', 'spec.dump'],
    },
    source: { node: data.node, archivePath: data.archivePath },
    storedAt: data.checkpointedAt,
  });
  const digest = `sha256:${data.id.slice(-12).padStart(64, '0')}`;
  await writeImage(store, loc, {
    reference: `kcr.local/${repository}@${digest}`,
    digest,
    size: 1000,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    repository,
    host: 'kcr.local',
    target: 'oci-layout',
    tag: data.id,
    indexDigest: digest,
    manifestDigest: `sha256:${'1'.repeat(64)}`,
    configDigest: `sha256:${'2'.repeat(64)}`,
    layer: { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: `sha256:${data.artifact.sha256}`, size: data.artifact.size },
  });
}
