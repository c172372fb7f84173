// Object keys of ARCHITECTURE.md's storage layout: the one place that names them.
import type { OwnerKind } from '../contract/events.js';

export const DEFAULT_BUCKET = 'kcr-checkpoints';

export interface CheckpointLocation {
  namespace: string;
  workload: { kind: OwnerKind; name: string };
  container: string;
  id: string;
}

export const ARTIFACT_FILES = { archive: 'archive.tar', manifest: 'manifest.json', image: 'image.json', bad: 'bad.json' } as const;

/** `checkpoints/<ns>/<kind>/<name>/<container>/` : every checkpoint of one container of one workload. */
export function containerPrefix(loc: Omit<CheckpointLocation, 'id'>): string {
  return `checkpoints/${loc.namespace}/${loc.workload.kind}/${loc.workload.name}/${loc.container}/`;
}

export function checkpointPrefix(loc: CheckpointLocation): string {
  return `${containerPrefix(loc)}${loc.id}/`;
}

export function artifactKey(loc: CheckpointLocation, file: keyof typeof ARTIFACT_FILES): string {
  return `${checkpointPrefix(loc)}${ARTIFACT_FILES[file]}`;
}

/** Parses `checkpoints/<ns>/<kind>/<name>/<container>/<id>/<file>`; undefined for any other key. */
export function parseArtifactKey(key: string): (CheckpointLocation & { file: string }) | undefined {
  const parts = key.split('/');
  if (parts.length !== 7 || parts[0] !== 'checkpoints') return undefined;
  const [, namespace, kind, name, container, id, file] = parts as [string, string, string, string, string, string, string];
  if (kind !== 'Deployment' && kind !== 'StatefulSet' && kind !== 'Pod') return undefined;
  return { namespace, workload: { kind, name }, container, id, file };
}

/** `events/<yyyy>/<mm>/<dd>/<hh>/<time>-<id>.json`, from the event's time (UTC). */
export function eventKey(time: string | Date, eventId: string): string {
  const t = time instanceof Date ? time : new Date(time);
  if (Number.isNaN(t.getTime())) throw new Error(`invalid event time ${JSON.stringify(String(time))}`);
  const iso = t.toISOString();
  const safeId = eventId.replace(/[^A-Za-z0-9._-]/g, '_');
  return `events/${iso.slice(0, 4)}/${iso.slice(5, 7)}/${iso.slice(8, 10)}/${iso.slice(11, 13)}/${iso.replace(/[:]/g, '')}-${safeId}.json`;
}

export function s3Uri(bucket: string, key: string): string {
  return `s3://${bucket}/${key}`;
}

export function parseS3Uri(uri: string): { bucket: string; key: string } {
  const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
  if (!m) throw new Error(`not an s3:// URI: ${JSON.stringify(uri)}`);
  return { bucket: m[1] as string, key: m[2] as string };
}

/**
 * `disruptions/<ns>/<kind>/<name>/<pod>.json`: restore-pod's record that a pod
 * was evicted or lost with its node, so its replacement inherits its state.
 */
export function disruptionPrefix(namespace: string, kind: OwnerKind, name: string): string {
  return `disruptions/${namespace}/${kind}/${name}/`;
}

export function disruptionKey(namespace: string, kind: OwnerKind, name: string, pod: string): string {
  return `${disruptionPrefix(namespace, kind, name)}${pod}.json`;
}
