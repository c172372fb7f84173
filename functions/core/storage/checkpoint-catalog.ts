// What S3 says about the checkpoints of one container of one workload:
// committed (manifest.json), restorable (image.json), or marked bad. Only
// images recorded in a committed image.json are ever used, by digest, so a
// tag pushed by someone else can never be restored from.
import { z } from 'zod';
import { CheckpointStoredData, type OwnerKind } from '../contract/events.js';
import type { ObjectStore } from './object-store.js';
import { ARTIFACT_FILES, artifactKey, containerPrefix, disruptionKey, disruptionPrefix, type CheckpointLocation } from './layout.js';

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

const DIGEST_REFERENCE = /^[^@\s]+@sha256:[0-9a-f]{64}$/;
const ImageJson = z.object({ reference: z.string().regex(DIGEST_REFERENCE) }).loose();

/** The stored event's data, whether manifest.json keeps it at the top or under `checkpoint`/`data`. */
function checkpointOfManifest(manifest: unknown): z.infer<typeof CheckpointStoredData> | undefined {
  for (const candidate of [manifest, (manifest as { checkpoint?: unknown } | undefined)?.checkpoint, (manifest as { data?: unknown } | undefined)?.data]) {
    const r = CheckpointStoredData.safeParse(pickStored(candidate));
    if (r.success) return r.data;
  }
  return undefined;
}

function pickStored(value: unknown): unknown {
  if (!value || typeof value !== 'object') return value;
  const keys = Object.keys(CheckpointStoredData.shape);
  return Object.fromEntries(Object.entries(value).filter(([k]) => keys.includes(k)));
}

export class CheckpointCatalog {
  constructor(private readonly store: ObjectStore) {}

  /** Each checkpoint id of the container, newest first, with the files it has in S3. */
  async checkpointFiles(ref: ContainerRef): Promise<[id: string, files: Set<string>][]> {
    const files = new Map<string, Set<string>>();
    const prefix = containerPrefix(ref);
    for await (const o of this.store.list(prefix)) {
      const [id, file] = o.key.slice(prefix.length).split('/');
      if (!id || !file) continue;
      const set = files.get(id) ?? new Set<string>();
      set.add(file);
      files.set(id, set);
    }
    // Ids sort by time.
    return [...files.entries()].sort(([a], [b]) => (a < b ? 1 : a > b ? -1 : 0));
  }

  /** Ids, newest first, that have image.json and no bad marker. */
  async restorableIds(ref: ContainerRef): Promise<string[]> {
    return (await this.checkpointFiles(ref))
      .filter(([, f]) => f.has(ARTIFACT_FILES.manifest) && f.has(ARTIFACT_FILES.image) && !f.has(ARTIFACT_FILES.bad))
      .map(([id]) => id);
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
    const manifest = checkpointOfManifest(await this.store.getJson(artifactKey(loc, 'manifest')));
    if (!manifest) return undefined;
    // Never across namespaces, workloads or container names, whatever the key says.
    if (manifest.id !== loc.id || manifest.namespace !== loc.namespace || manifest.container !== loc.container) return undefined;
    if (manifest.workload.kind !== loc.workload.kind || manifest.workload.name !== loc.workload.name) return undefined;
    // Another pod's checkpoint (a sibling replica's, an earlier pod's): its image.json is not needed.
    if ((pod !== undefined && manifest.pod !== pod) || (podUid !== undefined && manifest.podUid !== podUid)) return undefined;
    const image = ImageJson.safeParse(await this.store.getJson(artifactKey(loc, 'image')));
    if (!image.success) return undefined;
    return { id: loc.id, pod: manifest.pod, podUid: manifest.podUid, image: image.data.reference };
  }

  async markBad(loc: CheckpointLocation, reason: string, at: Date): Promise<void> {
    await this.store.putJson(artifactKey(loc, 'bad'), { id: loc.id, reason, markedAt: at.toISOString() });
  }

  async putDisruption(record: DisruptionRecord): Promise<void> {
    await this.store.putJson(disruptionKey(record.namespace, record.workload.kind, record.workload.name, record.pod), record);
  }

  async disruptions(namespace: string, kind: OwnerKind, name: string): Promise<DisruptionRecord[]> {
    const out: DisruptionRecord[] = [];
    for await (const o of this.store.list(disruptionPrefix(namespace, kind, name))) {
      const r = DisruptionRecord.safeParse(await this.store.getJson(o.key));
      if (r.success) out.push(r.data);
    }
    return out.sort((a, b) => b.at.localeCompare(a.at));
  }
}

export const DisruptionRecord = z.object({
  namespace: z.string(),
  workload: z.object({ kind: z.enum(['Deployment', 'StatefulSet', 'Pod']), name: z.string() }),
  pod: z.string(),
  podUid: z.string(),
  /** pod-template-hash (Deployment) or controller-revision-hash (StatefulSet): a replacement must run the same template. */
  templateHash: z.string(),
  reason: z.string(),
  at: z.string(),
  claimedBy: z.object({ pod: z.string(), uid: z.string() }).optional(),
});
export type DisruptionRecord = z.infer<typeof DisruptionRecord>;
