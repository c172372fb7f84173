// The checkpoints S3 holds, as `kcr get/describe checkpoints` shows them: one
// listing of the layout, then each committed checkpoint's records, read
// through the one records module. A checkpoint without a manifest naming it
// does not exist for any reader, here neither.
import pLimit from 'p-limit';
import type { ObjectStore } from '../functions/core/storage/object-store.js';
import { ARTIFACT_FILES, keyName, parseArtifactKey, type CheckpointLocation } from '../functions/core/storage/layout.js';
import { manifestNames, readBad, readImage, readManifest, readPin, type BadRecord, type CheckpointManifest, type ImageRecord, type PinRecord } from '../functions/core/storage/records.js';

export type CheckpointState = 'committed' | 'building' | 'bad' | 'pinned';

export interface CheckpointInfo {
  loc: CheckpointLocation;
  /** The archive's size in S3. */
  size: number;
  manifest: CheckpointManifest;
  image?: ImageRecord;
  pin?: PinRecord;
  bad?: BadRecord;
  state: CheckpointState;
}

const READS_AT_ONCE = 8;

/** Bad wins (never restored), then pinned, then whether its image is built. */
export function stateOf(c: Pick<CheckpointInfo, 'image' | 'pin' | 'bad'> & { hasBad?: boolean; hasPin?: boolean }): CheckpointState {
  if (c.bad || c.hasBad) return 'bad';
  if (c.pin || c.hasPin) return 'pinned';
  return c.image ? 'committed' : 'building';
}

/** Every committed checkpoint in the namespace (all with undefined), newest first. */
export async function listCheckpoints(store: ObjectStore, namespace?: string, only: (loc: CheckpointLocation) => boolean = () => true): Promise<CheckpointInfo[]> {
  const prefix = namespace === undefined ? 'checkpoints/' : `checkpoints/${keyName('namespace', namespace)}/`;
  const found = new Map<string, { loc: CheckpointLocation; files: Map<string, number> }>();
  for await (const o of store.list(prefix)) {
    const parsed = parseArtifactKey(o.key);
    if (!parsed) continue;
    const { file, ...loc } = parsed;
    if (!only(loc)) continue;
    const key = o.key.slice(0, o.key.length - file.length);
    const entry = found.get(key) ?? { loc, files: new Map<string, number>() };
    entry.files.set(file, o.size);
    found.set(key, entry);
  }
  const limit = pLimit(READS_AT_ONCE);
  const read = await Promise.all([...found.values()].filter((e) => e.files.has(ARTIFACT_FILES.manifest)).map((e) => limit(() => readInfo(store, e.loc, e.files))));
  return read.filter((c): c is CheckpointInfo => c !== undefined).sort((a, b) => (a.loc.id < b.loc.id ? 1 : a.loc.id > b.loc.id ? -1 : 0));
}

async function readInfo(store: ObjectStore, loc: CheckpointLocation, files: Map<string, number>): Promise<CheckpointInfo | undefined> {
  const manifest = await readManifest(store, loc);
  if (!manifest || !manifestNames(manifest, loc)) return undefined;
  const [image, pin, bad] = await Promise.all([
    files.has(ARTIFACT_FILES.image) ? readImage(store, loc) : undefined,
    files.has(ARTIFACT_FILES.pin) ? readPin(store, loc) : undefined,
    files.has(ARTIFACT_FILES.bad) ? readBad(store, loc) : undefined,
  ]);
  const info = { loc, size: files.get(ARTIFACT_FILES.archive) ?? manifest.data.artifact.size, manifest, ...(image ? { image } : {}), ...(pin ? { pin } : {}), ...(bad ? { bad } : {}) };
  return { ...info, state: stateOf({ ...info, hasPin: files.has(ARTIFACT_FILES.pin), hasBad: files.has(ARTIFACT_FILES.bad) }) };
}

/** The checkpoint with this id, in the namespace (any with undefined); undefined when none is committed. */
export async function findCheckpoint(store: ObjectStore, id: string, namespace?: string): Promise<CheckpointInfo | undefined> {
  keyName('id', id);
  return (await listCheckpoints(store, namespace, (loc) => loc.id === id))[0];
}
