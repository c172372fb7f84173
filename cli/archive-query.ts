// Reads the event archive: lists only the `events/…` prefixes inside a time
// range, newest first, and selects archived events by filter or by id.
import type { Readable } from 'node:stream';
import type { ObjectStore } from '../functions/core/storage/object-store.js';
import { CHECKPOINT_ID_EXTENSION, EVENTS_PREFIX, UNDATED_PREFIX, isDeadLetter, isDeadLetterKey, keyMatchesId, keyTime, type StructuredEvent } from '../functions/event-archive/archived-event.js';

export interface TimeRange {
  since: Date;
  until: Date;
  /** Whether events archived without `time` are considered too (only when no bound was given). */
  includeUndated: boolean;
}

export interface EventFilter {
  /** Exact types, or prefixes written `io.kcr.checkpoint.*`. */
  types?: string[];
  /** Exact subject, or a prefix written `default/counter-*`. */
  subject?: string;
  checkpointId?: string;
  deadLetter?: boolean;
}

export interface ArchivedObject {
  key: string;
  /** The object's text; parsed lazily so a malformed object can be reported by key. */
  text: string;
  /** Undefined when the text is not a JSON object. */
  event: StructuredEvent | undefined;
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/**
 * The `events/` prefixes that cover the range, newest first: hour prefixes for
 * ranges up to two days, day prefixes beyond (fewer LISTs; keys are filtered by
 * their encoded time anyway).
 */
function rangePrefixes(range: { since: Date; until: Date }): string[] {
  const span = range.until.getTime() - range.since.getTime();
  if (span < 0) return [];
  const byHour = span <= 2 * DAY;
  const step = byHour ? HOUR : DAY;
  const start = Math.floor(range.since.getTime() / step) * step;
  const prefixes: string[] = [];
  for (let t = Math.floor(range.until.getTime() / step) * step; t >= start; t -= step) {
    const iso = new Date(t).toISOString();
    prefixes.push(`${EVENTS_PREFIX}${iso.slice(0, 4)}/${iso.slice(5, 7)}/${iso.slice(8, 10)}/${byHour ? `${iso.slice(11, 13)}/` : ''}`);
  }
  return prefixes;
}

/** Archive keys in the range, one batch per prefix, newest first; undated keys (when included) last. */
async function* keyBatches(store: ObjectStore, range: TimeRange): AsyncGenerator<string[]> {
  for (const prefix of rangePrefixes(range)) {
    const keys: string[] = [];
    for await (const info of store.list(prefix)) {
      const t = keyTime(info.key);
      if (t && t >= range.since && t <= range.until) keys.push(info.key);
    }
    // Within one prefix the time-encoded names sort chronologically.
    if (keys.length) yield keys.sort().reverse();
  }
  if (range.includeUndated) {
    const keys: string[] = [];
    for await (const info of store.list(UNDATED_PREFIX)) keys.push(info.key);
    if (keys.length) yield keys;
  }
}

async function readArchived(store: ObjectStore, key: string): Promise<ArchivedObject> {
  const text = await readText(await store.getStream(key));
  let event: StructuredEvent | undefined;
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) event = value as StructuredEvent;
  } catch {
    event = undefined;
  }
  return { key, text, event };
}

async function readText(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
  return Buffer.concat(chunks).toString('utf8');
}

function matchPattern(value: unknown, pattern: string): boolean {
  if (typeof value !== 'string') return false;
  return pattern.endsWith('*') ? value.startsWith(pattern.slice(0, -1)) : value === pattern;
}

/** Whether an archived object passes the filter. A malformed object passes only an empty filter, so replay can report it. */
function matches(obj: ArchivedObject, filter: EventFilter): boolean {
  const hasAttributeFilter = Boolean(filter.types?.length || filter.subject || filter.checkpointId);
  if (filter.deadLetter && !isDeadLetterKey(obj.key) && !(obj.event && isDeadLetter(obj.event))) return false;
  const e = obj.event;
  if (!e) return !hasAttributeFilter;
  if (filter.types?.length && !filter.types.some((p) => matchPattern(e.type, p))) return false;
  if (filter.subject && !matchPattern(e.subject, filter.subject)) return false;
  if (filter.checkpointId && e[CHECKPOINT_ID_EXTENSION] !== filter.checkpointId) return false;
  return true;
}

/** Archived events in the range that pass the filter, newest first, at most `limit`. */
export async function selectEvents(store: ObjectStore, range: TimeRange, filter: EventFilter, limit?: number): Promise<ArchivedObject[]> {
  const out: ArchivedObject[] = [];
  for await (const keys of keyBatches(store, range)) {
    for (const key of keys) {
      if (filter.deadLetter && !isDeadLetterKey(key)) continue;
      const obj = await readArchived(store, key);
      if (!matches(obj, filter)) continue;
      out.push(obj);
      if (limit !== undefined && out.length >= limit) return out;
    }
  }
  return out;
}

/**
 * The archived copies of the event with this id (the original, and one dead
 * letter per failed destination): they share the event's time, so the scan stops
 * at the newest prefix that holds any. The object's own id is checked, since key
 * sanitising can map two ids to one key ending.
 */
export async function findById(store: ObjectStore, id: string, range: TimeRange): Promise<ArchivedObject[]> {
  for await (const keys of keyBatches(store, range)) {
    const found: ArchivedObject[] = [];
    for (const key of keys) {
      if (!keyMatchesId(key, id)) continue;
      const obj = await readArchived(store, key);
      // A malformed object is kept (its key names the id) so the caller can report it.
      if (obj.event && obj.event.id !== id) continue;
      found.push(obj);
    }
    if (found.length) return found;
  }
  return [];
}
