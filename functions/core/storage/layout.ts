// Object keys of the storage layout (docs/architecture.md): the one place that names them,
// and so the one place that checks every name before it becomes part of a key.
import type { OwnerKind } from '../contract/events.js';
import { CHECKPOINT_ID_PATTERN } from '../contract/checkpoint-id.js';
import { BadInputError } from '../runtime/errors.js';

export const DEFAULT_BUCKET = 'kcr-checkpoints';

export interface CheckpointLocation {
  namespace: string;
  workload: { kind: OwnerKind; name: string };
  container: string;
  id: string;
}

export const ARTIFACT_FILES = { archive: 'archive.tar', manifest: 'manifest.json', image: 'image.json', bad: 'bad.json', prune: 'prune.json', pin: 'pin.json' } as const;

const DNS1123_LABEL = /^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$/;
const OWNER_KINDS: ReadonlySet<string> = new Set<OwnerKind>(['Deployment', 'StatefulSet', 'Pod']);

/**
 * The names a key is built from, as the API server requires them: namespaces
 * and container names are DNS-1123 labels, pod and workload names DNS-1123
 * subdomains (no `/`, no `..`, lowercase). A name from an event that breaks
 * them is refused before it can address anything outside the layout.
 */
const KEY_NAME_RULES = {
  namespace: DNS1123_LABEL,
  container: DNS1123_LABEL,
  pod: DNS1123_SUBDOMAIN,
  workload: DNS1123_SUBDOMAIN,
  id: CHECKPOINT_ID_PATTERN,
} as const;

export type KeyName = keyof typeof KEY_NAME_RULES;

/** The name, when it may stand in an object key; else BadInputError naming what and why. */
export function keyName(what: KeyName, value: unknown): string {
  if (typeof value !== 'string' || !KEY_NAME_RULES[what].test(value)) {
    const shown = typeof value === 'string' ? JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value) : String(value);
    const rule = what === 'id' ? 'a kcr checkpoint id' : KEY_NAME_RULES[what] === DNS1123_LABEL ? 'a DNS-1123 label' : 'a DNS-1123 subdomain';
    throw new BadInputError(`${what} ${shown} cannot be part of a storage key: it must be ${rule}`);
  }
  return value;
}

function keyKind(kind: unknown): OwnerKind {
  if (typeof kind !== 'string' || !OWNER_KINDS.has(kind)) throw new BadInputError(`workload kind ${JSON.stringify(kind)} cannot be part of a storage key: it must be Deployment, StatefulSet or Pod`);
  return kind as OwnerKind;
}

/** `checkpoints/<ns>/<kind>/<name>/<container>/` : every checkpoint of one container of one workload. */
export function containerPrefix(loc: Omit<CheckpointLocation, 'id'>): string {
  return `checkpoints/${keyName('namespace', loc.namespace)}/${keyKind(loc.workload.kind)}/${keyName('workload', loc.workload.name)}/${keyName('container', loc.container)}/`;
}

export function checkpointPrefix(loc: CheckpointLocation): string {
  return `${containerPrefix(loc)}${keyName('id', loc.id)}/`;
}

/** Whether every name of `loc` may stand in a key (for keys read back from a listing). */
function isValidLocation(loc: CheckpointLocation): boolean {
  try {
    checkpointPrefix(loc);
    return true;
  } catch {
    return false;
  }
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
  const loc: CheckpointLocation = { namespace, workload: { kind, name }, container, id };
  return isValidLocation(loc) ? { ...loc, file } : undefined;
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
  return `disruptions/${keyName('namespace', namespace)}/${keyKind(kind)}/${keyName('workload', name)}/`;
}

export function disruptionKey(namespace: string, kind: OwnerKind, name: string, pod: string): string {
  return `${disruptionPrefix(namespace, kind, name)}${keyName('pod', pod)}.json`;
}
