// What S3 says about the checkpoints of one container of one workload:
// committed (manifest.json), restorable (image.json), or marked bad. Only
// images recorded in a committed image.json are ever used, by digest, so a
// tag pushed by someone else can never be restored from.
import type { OwnerKind } from '../contract/events.js';
import type { ObjectStore } from './object-store.js';
import { ARTIFACT_FILES, artifactKey, containerPrefix, type CheckpointLocation } from './layout.js';
import { manifestNames, readDisruptions, readImage, readManifest, writeBad, writeDisruption, type DisruptionRecord } from './records.js';

export interface ContainerRef {
  namespace: string;
  workload: { kind: OwnerKind; name: string };
  container: string;
}

export interface RestorableCheckpoint {
  id: string;
  pod: string;
  podUid: string;
  /** `repo@sha256:…`, from image.json. */
  image: string;
}

/** Manifests read at once while walking past other pods' checkpoints. */
const MAX_READ_WINDOW = 8;

export class CheckpointCatalog {
  constructor(private readonly store: ObjectStore) {}

  /** Each checkpoint id of the container, newest first, with the files it has in S3. */
  async checkpointFiles(ref: ContainerRef): Promise<[id: string, files: Set<string>][]> {
    return (await this.checkpointObjects(ref)).map(([id, files]) => [id, new Set(files.keys())]);
  }

  /** Each checkpoint id of the container, newest first, with the size of each file it has in S3. */
  async checkpointObjects(ref: ContainerRef): Promise<[id: string, files: Map<string, number>][]> {
    const files = new Map<string, Map<string, number>>();
    const prefix = containerPrefix(ref);
    for await (const o of this.store.list(prefix)) {
      const [id, file] = o.key.slice(prefix.length).split('/');
      if (!id || !file) continue;
      const sizes = files.get(id) ?? new Map<string, number>();
      sizes.set(file, o.size);
      files.set(id, sizes);
    }
    // Ids sort by time.
    return [...files.entries()].sort(([a], [b]) => (a < b ? 1 : a > b ? -1 : 0));
  }

  /** Ids, newest first, that have image.json and no bad marker. */
  async restorableIds(ref: ContainerRef): Promise<string[]> {
    return (await this.checkpointFiles(ref)).filter(([, f]) => f.has(ARTIFACT_FILES.manifest) && f.has(ARTIFACT_FILES.image) && !f.has(ARTIFACT_FILES.bad)).map(([id]) => id);
  }

  /**
   * The newest restorable checkpoint taken of `pod` (by name: a StatefulSet's
   * pod keeps its name across replacements; given `podUid`, of that pod only),
   * skipping `exclude`.
   */
  async newestOfPod(ref: ContainerRef, pod: string, exclude: ReadonlySet<string> = new Set(), podUid?: string): Promise<RestorableCheckpoint | undefined> {
    const ids = (await this.restorableIds(ref)).filter((id) => !exclude.has(id));
    // Usually the newest is the pod's own: read it alone. Past it, read in
    // doubling windows, so a walk over many other pods' checkpoints takes a few
    // round trips instead of one per checkpoint; the newest match still wins.
    for (let start = 0, size = 1; start < ids.length; start += size, size = Math.min(size * 2, MAX_READ_WINDOW)) {
      const window = ids.slice(start, start + size);
      const found = (await Promise.all(window.map((id) => this.read({ ...ref, id }, pod, podUid)))).find((c) => c !== undefined);
      if (found) return found;
    }
    return undefined;
  }

  /**
   * Reads and cross-checks one checkpoint; undefined unless manifest and
   * image.json agree with its location and, given `pod` (and `podUid`), it was taken of that pod.
   */
  async read(loc: CheckpointLocation, pod?: string, podUid?: string): Promise<RestorableCheckpoint | undefined> {
    const manifest = await readManifest(this.store, loc);
    if (!manifest || !manifestNames(manifest, loc)) return undefined;
    const { pod: takenOf, podUid: takenOfUid } = manifest.data;
    // Another pod's checkpoint (a sibling replica's, an earlier pod's): its image.json is not needed.
    if ((pod !== undefined && takenOf !== pod) || (podUid !== undefined && takenOfUid !== podUid)) return undefined;
    const image = await readImage(this.store, loc);
    if (!image) return undefined;
    return { id: loc.id, pod: takenOf, podUid: takenOfUid, image: image.reference };
  }

  /** The checkpoint at `loc` when it is restorable: committed, its image built, not marked bad, and its manifest naming `loc`. */
  async restorable(loc: CheckpointLocation): Promise<RestorableCheckpoint | undefined> {
    if (await this.store.stat(artifactKey(loc, 'bad'))) return undefined;
    return this.read(loc);
  }

  async markBad(loc: CheckpointLocation, reason: string, at: Date): Promise<void> {
    await writeBad(this.store, loc, { id: loc.id, reason, markedAt: at.toISOString() });
  }

  async putDisruption(record: DisruptionRecord): Promise<void> {
    await writeDisruption(this.store, record);
  }

  /** The workload's disruption records, newest first. */
  async disruptions(namespace: string, kind: OwnerKind, name: string): Promise<DisruptionRecord[]> {
    return (await readDisruptions(this.store, namespace, kind, name)).sort((a, b) => b.at.localeCompare(a.at));
  }
}
