// The archived form of a CloudEvent and where it lives under `events/`: shared by
// the event-archive function (writer) and `kcr events` (reader, replay, and
// writer of the replays it sends straight to a function, past the broker).
import { createHash } from 'node:crypto';
import { CloudEvent } from 'cloudevents';
import { checkData, isContractType, type EventType } from '../core/contract/events.js';
import { TransientError, errorMessage } from '../core/runtime/errors.js';
import type { RawEvent } from '../core/runtime/handler.js';
import { eventKey } from '../core/storage/layout.js';
import type { ObjectStore } from '../core/storage/object-store.js';

export const EVENTS_PREFIX = 'events/';
/** Events that arrive without `time` (see archiveKey). */
export const UNDATED_PREFIX = 'events/undated/';

/** Extensions Knative adds to an event it sends to a dead-letter sink. */
export const DEAD_LETTER_EXTENSIONS = ['knativeerrorcode', 'knativeerrordest', 'knativeerrordata'] as const;
export const REPLAY_OF_EXTENSION = 'kcrreplayof';
export const CHECKPOINT_ID_EXTENSION = 'kcrcheckpointid';

/** A CloudEvent in structured mode (what `CloudEvent.toJSON()` yields): attributes, extensions and `data`. */
export interface StructuredEvent {
  specversion: '1.0';
  id: string;
  source: string;
  type: string;
  subject?: string;
  time?: string;
  datacontenttype?: string;
  data?: unknown;
  [extension: string]: unknown;
}

/** What event-archive receives: the runtime's IncomingEvent, whose data already passed the contract. */
export interface ArchivableEvent {
  type: string;
  id: string;
  source: string;
  subject?: string;
  time?: string;
  data: unknown;
  extensions: Readonly<Record<string, string>>;
}

/**
 * Rebuilds the structured form. Built by hand rather than through `new CloudEvent()`,
 * which would invent a `time` for an event that has none. The runtime has already
 * parsed `data` as JSON, so the content type is JSON whatever the wire said.
 */
export function toStructured(event: ArchivableEvent): StructuredEvent {
  return {
    ...event.extensions,
    specversion: '1.0',
    id: event.id,
    source: event.source,
    type: event.type,
    ...(event.subject !== undefined ? { subject: event.subject } : {}),
    ...(event.time !== undefined ? { time: new Date(event.time).toISOString() } : {}),
    datacontenttype: 'application/json',
    data: event.data,
  };
}

const CORE_ATTRIBUTES = new Set(['specversion', 'id', 'source', 'type', 'subject', 'time', 'datacontenttype', 'dataschema', 'data']);

/** The key-relevant view of an event as received (the runtime's RawEvent). */
function archivable(event: RawEvent): ArchivableEvent {
  const a = event.attributes;
  const extensions = Object.fromEntries(
    Object.entries(a)
      .filter(([k, v]) => !CORE_ATTRIBUTES.has(k) && v !== undefined && v !== null)
      .map(([k, v]) => [k, String(v)]),
  );
  return {
    type: event.type,
    id: event.id,
    source: event.source,
    ...(typeof a.subject === 'string' ? { subject: a.subject } : {}),
    ...(typeof a.time === 'string' ? { time: a.time } : {}),
    data: a.data,
    extensions,
  };
}

/**
 * Stores an event as received, in structured form, under its archiveKey; the
 * key is returned. Same event, same key, same bytes: a redelivery overwrites
 * with identical content. S3's transient failures stay TransientError.
 */
export async function archiveEvent(store: ObjectStore, event: RawEvent): Promise<string> {
  const key = archiveKey(archivable(event));
  try {
    await store.putJson(key, event.attributes);
  } catch (err) {
    const message = `archiving event ${event.id} (${event.type}) to s3://${store.bucket}/${key} failed: ${errorMessage(err)}`;
    throw err instanceof TransientError ? new TransientError(message, { cause: err }) : new Error(message, { cause: err });
  }
  return key;
}

/** Whether the extensions (an IncomingEvent's, or a structured event itself) mark a dead letter. */
export function isDeadLetter(extensions: Readonly<Record<string, unknown>>): boolean {
  return typeof extensions.knativeerrordest === 'string' || typeof extensions.knativeerrorcode === 'string';
}

/** Dead letters keep the original id and time, so they get a suffix of their own: one copy per failed destination. */
const DEAD_LETTER_MARK = '.deadletter-';

function shortHash(...parts: string[]): string {
  return createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 16);
}

/**
 * The object key of an event, the same on every redelivery:
 * - with `time`: `events/<yyyy>/<mm>/<dd>/<hh>/<time>-<id>.json` (ARCHITECTURE.md);
 * - without `time`: `events/undated/<sha256(source, id)[:16]>-<id>.json`, since an
 *   arrival time would give each redelivery its own key;
 * - a dead letter: the same with `<id>.deadletter-<sha256(knativeerrordest)[:16]>`,
 *   so it neither overwrites the archived original nor another destination's failure.
 */
export function archiveKey(event: ArchivableEvent): string {
  const idPart = isDeadLetter(event.extensions) ? `${event.id}${DEAD_LETTER_MARK}${shortHash(event.extensions.knativeerrordest ?? event.extensions.knativeerrorcode ?? '')}` : event.id;
  if (event.time !== undefined) return eventKey(event.time, idPart);
  return `${UNDATED_PREFIX}${shortHash(event.source, event.id)}-${safeIdPart(idPart)}.json`;
}

// The dated key of the epoch, to cut eventKey's output at the id: keeps the id's
// sanitising in storage-layout.ts, the one place that names keys.
const EPOCH_KEY_HEAD = eventKey(new Date(0), 'x').slice(0, -'x.json'.length);

function safeIdPart(idPart: string): string {
  return eventKey(new Date(0), idPart).slice(EPOCH_KEY_HEAD.length, -'.json'.length);
}

/** Whether the key is that of an event with this id: `…-<id>.json` or a dead letter `…-<id>.deadletter-<hash>.json`. */
export function keyMatchesId(key: string, id: string): boolean {
  const safe = safeIdPart(id);
  const base = key.slice(key.lastIndexOf('/') + 1);
  if (base.endsWith(`-${safe}.json`)) return true;
  const mark = base.lastIndexOf(DEAD_LETTER_MARK);
  return mark > 0 && base.slice(0, mark).endsWith(`-${safe}`);
}

export function isDeadLetterKey(key: string): boolean {
  return /\.deadletter-[0-9a-f]{16}\.json$/.test(key);
}

const DATED_KEY = /^events\/\d{4}\/\d{2}\/\d{2}\/\d{2}\/(\d{4}-\d{2}-\d{2})T(\d{2})(\d{2})(\d{2}(?:\.\d+)?)Z-.+\.json$/;

/** The event time encoded in a dated key; undefined for undated or foreign keys. */
export function keyTime(key: string): Date | undefined {
  const m = DATED_KEY.exec(key);
  if (!m) return undefined;
  const t = new Date(`${m[1]}T${m[2]}:${m[3]}:${m[4]}Z`);
  return Number.isNaN(t.getTime()) ? undefined : t;
}

export type ArchivedCheck = { ok: true; event: StructuredEvent; type: EventType } | { ok: false; error: string };

/**
 * Checks an archived object before anything is replayed from it: JSON, a valid
 * CloudEvent 1.0, a contract type, and data the contract accepts.
 */
export function checkArchived(text: string): ArchivedCheck {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { ok: false, error: `not JSON: ${errorMessage(err)}` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, error: 'not a CloudEvent: the JSON is not an object' };
  const obj = value as Record<string, unknown>;
  // The SDK would invent a missing id, so check the attributes it cannot fill in.
  for (const attr of ['id', 'source', 'type'] as const) {
    if (typeof obj[attr] !== 'string' || obj[attr] === '') return { ok: false, error: `not a valid CloudEvent: attribute ${attr} is missing or empty` };
  }
  if (obj.specversion !== '1.0') return { ok: false, error: `not a valid CloudEvent: specversion ${JSON.stringify(obj.specversion ?? null)}, expected "1.0"` };
  try {
    new CloudEvent<unknown>(obj as ConstructorParameters<typeof CloudEvent>[0], false).validate();
  } catch (err) {
    return { ok: false, error: `not a valid CloudEvent: ${validationMessage(err)}` };
  }
  const type = obj.type as string;
  if (!isContractType(type)) return { ok: false, error: `event type ${JSON.stringify(type)} is not in the kcr contract` };
  const check = checkData(type, obj.data);
  if (!check.ok) return { ok: false, error: check.error };
  return { ok: true, event: obj as StructuredEvent, type };
}

function validationMessage(err: unknown): string {
  const errors = typeof err === 'object' && err !== null && 'errors' in err && Array.isArray(err.errors) ? err.errors : [];
  const details = errors.map((e: unknown) => (typeof e === 'string' ? e : JSON.stringify(e)));
  return details.length ? `${errorMessage(err)}: ${details.join('; ')}` : errorMessage(err);
}
