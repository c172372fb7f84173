// The records kcr's functions commit to S3 (docs/architecture.md, "Storage
// layout"): one schema, one reader and one writer each, at the keys layout.ts
// builds. Every reader returns undefined for a record that is absent, not JSON
// or not of its shape (written by hand, or by no writer of kcr): to every
// caller such a record is not there. Any other read failure is thrown.
import { z } from 'zod';
import { CheckpointStoredData, ImageRef, type OwnerKind } from '../contract/events.js';
import { getJsonIfParsable, type ObjectStore } from './object-store.js';
import { artifactKey, disruptionKey, disruptionPrefix, type CheckpointLocation } from './layout.js';

async function readRecord<T>(store: ObjectStore, key: string, schema: z.ZodType<T>): Promise<T | undefined> {
  const raw = await getJsonIfParsable(store, key);
  if (raw === undefined) return undefined;
  const parsed = schema.safeParse(raw);
  return parsed.success ? parsed.data : undefined;
}

/** Checked before writing: a record no reader would accept is a bug here, never something to commit. */
async function writeRecord<T>(store: ObjectStore, key: string, schema: z.ZodType<T>, record: T): Promise<void> {
  schema.parse(record);
  await store.putJson(key, record);
}

// ---------- manifest.json: store-artifact's commit marker ----------

export const MANIFEST_API_VERSION = 'kcr.io/v1alpha1';

/** store-artifact leaves out what the archive does not say rather than writing empty strings. */
const known = z.string().min(1).optional();

const CriuDumpStats = z.discriminatedUnion('decoded', [
  z.object({ decoded: z.literal(true), dump: z.record(z.string(), z.number()) }),
  z.object({ decoded: z.literal(false), reason: z.string(), bytes: z.number() }),
]);

/** What store-artifact found in the archive, for build-image's annotations, restore and forensics. */
export const ManifestArchive = z.object({
  rootfsImageName: known,
  rootfsImageRef: known,
  rootfsImage: known,
  runtime: known,
  /** Container id and name as the runtime knew them (config.dump). */
  containerId: known,
  containerName: known,
  createdTime: known,
  checkpointedTime: known,
  /** Who the archive says it is (spec.dump annotations); checked against the event. */
  container: z.object({ pod: z.string().optional(), namespace: z.string().optional(), podUid: z.string().optional(), container: z.string().optional() }),
  /** CRIU dump statistics from stats-dump; `decoded: false` with the reason when unreadable; absent without stats-dump. */
  criuDumpStats: CriuDumpStats.optional(),
  entries: z.number().int().nonnegative(),
  checkpointFiles: z.number().int().nonnegative(),
  topLevel: z.array(z.string()),
  /** Each regular file's data offset and size in archive.tar, for range reads (`kcr inspect`); absent for archives stored before it, or with too many entries. */
  index: z.array(z.object({ name: z.string(), offset: z.number().int().nonnegative(), size: z.number().int().nonnegative() })).optional(),
});
export type ManifestArchive = z.infer<typeof ManifestArchive>;

/** manifest.json: the stored event's data under `data` (what readers key on), and what the archive holds under `archive`. */
export const CheckpointManifest = z.object({
  apiVersion: z.literal(MANIFEST_API_VERSION),
  kind: z.literal('CheckpointManifest'),
  data: CheckpointStoredData,
  archive: ManifestArchive,
  source: z.object({ node: z.string(), archivePath: z.string() }),
  storedAt: z.string(),
});
export type CheckpointManifest = z.infer<typeof CheckpointManifest>;

/** The manifest at `loc`, whatever checkpoint it names: callers check that against what they act on. */
export function readManifest(store: ObjectStore, loc: CheckpointLocation): Promise<CheckpointManifest | undefined> {
  return readRecord(store, artifactKey(loc, 'manifest'), CheckpointManifest);
}

export function writeManifest(store: ObjectStore, loc: CheckpointLocation, manifest: CheckpointManifest): Promise<void> {
  return writeRecord(store, artifactKey(loc, 'manifest'), CheckpointManifest, manifest);
}

/** Whether the manifest's data names the checkpoint at `loc`: never across namespaces, workloads or container names, whatever the key says. */
export function manifestNames(manifest: CheckpointManifest, loc: CheckpointLocation): boolean {
  const d = manifest.data;
  return d.id === loc.id && d.namespace === loc.namespace && d.container === loc.container && d.workload.kind === loc.workload.kind && d.workload.name === loc.workload.name;
}

// ---------- image.json: build-image's commit marker; prune.json: retention's image still to delete ----------

/** image.json: deterministic content only, so a rebuild writes the same bytes. Images are only ever named by digest. */
export const ImageRecord = z.object({
  reference: ImageRef.shape.reference,
  digest: ImageRef.shape.digest,
  size: z.number().int().nonnegative(),
  mediaType: z.string(),
  repository: z.string(),
  host: z.string(),
  target: z.enum(['registry', 'oci-layout']),
  tag: z.string(),
  indexDigest: z.string(),
  manifestDigest: z.string(),
  configDigest: z.string(),
  layer: z.object({ mediaType: z.string(), digest: z.string(), size: z.number().int().nonnegative() }),
});
export type ImageRecord = z.infer<typeof ImageRecord>;

export function readImage(store: ObjectStore, loc: CheckpointLocation): Promise<ImageRecord | undefined> {
  return readRecord(store, artifactKey(loc, 'image'), ImageRecord);
}

export function writeImage(store: ObjectStore, loc: CheckpointLocation, image: ImageRecord): Promise<void> {
  return writeRecord(store, artifactKey(loc, 'image'), ImageRecord, image);
}

/** prune.json holds the image.json of a pruned checkpoint whose image is not deleted yet. */
export function readPrune(store: ObjectStore, loc: CheckpointLocation): Promise<ImageRecord | undefined> {
  return readRecord(store, artifactKey(loc, 'prune'), ImageRecord);
}

export function writePrune(store: ObjectStore, loc: CheckpointLocation, image: ImageRecord): Promise<void> {
  return writeRecord(store, artifactKey(loc, 'prune'), ImageRecord, image);
}

// ---------- bad.json: restore-pod's marker that restoring from the checkpoint failed ----------

/** Only its presence counts (restore skips the checkpoint); the content is for people. */
export const BadRecord = z.object({ id: z.string(), reason: z.string(), markedAt: z.string() });
export type BadRecord = z.infer<typeof BadRecord>;

export function readBad(store: ObjectStore, loc: CheckpointLocation): Promise<BadRecord | undefined> {
  return readRecord(store, artifactKey(loc, 'bad'), BadRecord);
}

export function writeBad(store: ObjectStore, loc: CheckpointLocation, record: BadRecord): Promise<void> {
  return writeRecord(store, artifactKey(loc, 'bad'), BadRecord, record);
}

// ---------- pin.json: `kcr pin`, a checkpoint retention never removes ----------

/** Its presence pins the checkpoint; who and why are for people. */
export const PinRecord = z.object({ id: z.string(), pinnedAt: z.string(), by: z.string().optional(), reason: z.string().optional() });
export type PinRecord = z.infer<typeof PinRecord>;

export function readPin(store: ObjectStore, loc: CheckpointLocation): Promise<PinRecord | undefined> {
  return readRecord(store, artifactKey(loc, 'pin'), PinRecord);
}

/** Whether a pin.json is there at all: even one no reader accepts pins (retention errs on keeping). */
export async function isPinned(store: ObjectStore, loc: CheckpointLocation): Promise<boolean> {
  return (await store.stat(artifactKey(loc, 'pin'))) !== undefined;
}

export function writePin(store: ObjectStore, loc: CheckpointLocation, record: PinRecord): Promise<void> {
  return writeRecord(store, artifactKey(loc, 'pin'), PinRecord, record);
}

export function removePin(store: ObjectStore, loc: CheckpointLocation): Promise<void> {
  return store.remove(artifactKey(loc, 'pin'));
}

// ---------- disruptions/…/<pod>.json: a pod evicted or lost, whose replacement inherits its checkpoints ----------

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

/** Every disruption record of the workload, in listing order. */
export async function readDisruptions(store: ObjectStore, namespace: string, kind: OwnerKind, name: string): Promise<DisruptionRecord[]> {
  const out: DisruptionRecord[] = [];
  for await (const o of store.list(disruptionPrefix(namespace, kind, name))) {
    const record = await readRecord(store, o.key, DisruptionRecord);
    if (record) out.push(record);
  }
  return out;
}

export function writeDisruption(store: ObjectStore, record: DisruptionRecord): Promise<void> {
  return writeRecord(store, disruptionKey(record.namespace, record.workload.kind, record.workload.name, record.pod), DisruptionRecord, record);
}
