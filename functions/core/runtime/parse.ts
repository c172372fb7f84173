// Turns an HTTP request into contract events, or a precise 400 message. The
// SDK neither validates incoming events nor notices a missing id (it invents
// one), so both are checked here.
import { HTTP, CloudEvent, ValidationError } from 'cloudevents';
import { checkData, isContractType, type EventType } from '../contract/events.js';
import { checkRequired, checkSpecVersion, flattenHeaders, isJson, requireMode, structuredObject, type HttpHeaders } from './cloudevents-http.js';
import { BadInputError, errorMessage } from './errors.js';
import type { IncomingEvent, RawEvent } from './handler.js';

/**
 * Deepest JSON nesting accepted in a body or in JSON data. The deepest real
 * events are ApiServerSource events carrying a whole Deployment: its
 * managedFields (fieldsV1 per field path, e.g. an env var's secretKeyRef) reach
 * about 16 levels counting the envelope; 64 leaves four times that.
 */
export const MAX_JSON_DEPTH = 64;

/** A CloudEvent as received, and whether it carried `time` (the SDK invents one when it did not). */
interface Received {
  event: CloudEvent<unknown>;
  hadTime: boolean;
}

function receive(headers: HttpHeaders, body: string): Received[] {
  const flat = flattenHeaders(headers);
  const mode = requireMode(flat);

  if (mode === 'batch') {
    const items = parseJson(body, 'batch body');
    if (!Array.isArray(items)) throw new BadInputError('a CloudEvents batch must be a JSON array');
    return items.map((item, i) => {
      try {
        return { event: validated(checkStructured(item)), hadTime: hasTime(item) };
      } catch (err) {
        throw new BadInputError(`batch event ${i}: ${errorMessage(err)}`);
      }
    });
  }

  let hadTime: boolean;
  if (mode === 'structured') {
    const obj = parseJson(body, 'structured CloudEvent');
    checkStructured(obj);
    hadTime = hasTime(obj);
  } else {
    checkSpecVersion(flat['ce-specversion']);
    // The SDK parses a JSON body itself (and decodeData/toIncoming parse +json ones).
    if (sdkMayParseJson(flat['content-type'])) checkJsonDepth(body, 'binary-mode data');
    hadTime = !!flat['ce-time'];
  }
  let event: CloudEvent<unknown>;
  try {
    const parsed = HTTP.toEvent({ headers: flat, body });
    if (Array.isArray(parsed)) throw new BadInputError('unexpected batch');
    event = parsed as CloudEvent<unknown>;
  } catch (err) {
    throw new BadInputError(`not a valid CloudEvent: ${describe(err)}`);
  }
  return [{ event: validated(event), hadTime }];
}

/**
 * The SDK parses data as JSON whenever its content type contains "json"
 * (looser than isJson), so the depth scan must run for all of those.
 */
function sdkMayParseJson(contentType: string | undefined): boolean {
  return /json/i.test(contentType ?? '');
}

function hasTime(value: unknown): boolean {
  return typeof value === 'object' && value !== null && typeof (value as { time?: unknown }).time === 'string';
}

/** Parses events for a contract handler: type accepted, data valid for the type. */
export function parseRequest(headers: HttpHeaders, body: string, accepts: readonly EventType[]): IncomingEvent[] {
  return receive(headers, body).map((r, i, all) => {
    try {
      return toIncoming(r, accepts);
    } catch (err) {
      throw all.length > 1 ? new BadInputError(`batch event ${i}: ${errorMessage(err)}`) : err;
    }
  });
}

/** Parses events for a handler that takes any valid CloudEvent (the archive): attributes as received. */
export function parseRawRequest(headers: HttpHeaders, body: string): RawEvent[] {
  return receive(headers, body).map(({ event, hadTime }) => {
    const attributes: Record<string, unknown> = { ...event.toJSON() };
    if (!hadTime) delete attributes.time;
    delete attributes.data_base64;
    attributes.data = decodeData(event);
    if (attributes.data === undefined) delete attributes.data;
    return { id: event.id, type: event.type, source: event.source, attributes };
  });
}

/** JSON data parsed; other text kept as a string; binary data as base64 (`data_base64` on the wire). */
function decodeData(event: CloudEvent<unknown>): unknown {
  const data: unknown = event.data;
  if (data instanceof Uint8Array || data instanceof Uint32Array) return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64');
  if (typeof data === 'string' && sdkMayParseJson(event.datacontenttype)) {
    // Structured mode can carry JSON data as a string, which the body's scan did not see into.
    checkJsonDepth(data, 'data');
    try {
      return JSON.parse(data);
    } catch {
      return data;
    }
  }
  return data;
}

function validated(event: CloudEvent<unknown>): CloudEvent<unknown> {
  try {
    event.validate();
  } catch (err) {
    throw new BadInputError(`CloudEvent fails spec validation: ${describe(err)}`);
  }
  return event;
}

function checkStructured(value: unknown): CloudEvent<unknown> {
  const obj = structuredObject(value);
  checkRequired('id', obj.id);
  checkSpecVersion(obj.specversion);
  try {
    return new CloudEvent<unknown>(obj as ConstructorParameters<typeof CloudEvent>[0], false);
  } catch (err) {
    throw new BadInputError(`not a valid CloudEvent: ${describe(err)}`);
  }
}

function toIncoming({ event, hadTime }: Received, accepts: readonly EventType[]): IncomingEvent {
  const type = event.type;
  if (!isContractType(type) || !accepts.includes(type)) {
    throw new BadInputError(`event type ${JSON.stringify(type)} is not handled here (accepts ${accepts.join(', ')})`);
  }
  let data: unknown = event.data;
  if (typeof data === 'string' || data instanceof Uint8Array) {
    const ct = (event.datacontenttype ?? 'application/json').toLowerCase();
    if (!isJson(ct)) throw new BadInputError(`data of ${type} must be JSON, not ${ct}`);
    data = parseJson(Buffer.from(data).toString('utf8'), `data of ${type}`);
  }
  const check = checkData(type, data);
  if (!check.ok) throw new BadInputError(check.error);
  const extensions: Record<string, string> = {};
  for (const [k, v] of Object.entries(event.toJSON())) {
    if (!CORE_ATTRIBUTES.has(k) && v !== undefined && v !== null) extensions[k] = String(v);
  }
  return {
    type,
    data: check.data,
    id: event.id,
    source: event.source,
    ...(event.subject ? { subject: event.subject } : {}),
    ...(hadTime && event.time ? { time: event.time } : {}),
    ...(event.datacontenttype ? { datacontenttype: event.datacontenttype } : {}),
    ...(event.dataschema ? { dataschema: event.dataschema } : {}),
    extensions,
  } as IncomingEvent;
}

const CORE_ATTRIBUTES = new Set(['id', 'source', 'specversion', 'type', 'datacontenttype', 'dataschema', 'subject', 'time', 'data', 'data_base64']);

function parseJson(text: string, what: string): unknown {
  checkJsonDepth(text, what);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new BadInputError(`${what} is not valid JSON: ${errorMessage(err)}`);
  }
}

/**
 * One pass counting `[`/`{` outside strings, before any parser runs: parsing a
 * deeply nested body costs seconds of CPU, and whatever walks the result
 * recursively (JSON.stringify when archiving) overflows the stack. Malformed
 * JSON is left to the parser that follows.
 */
function checkJsonDepth(text: string, what: string): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // a backslash: the next character is escaped, a quote included
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > MAX_JSON_DEPTH) throw new BadInputError(`${what}: JSON nesting deeper than ${MAX_JSON_DEPTH} levels`);
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
}

function describe(err: unknown): string {
  if (err instanceof ValidationError && Array.isArray(err.errors) && err.errors.length) {
    return `${err.message}: ${err.errors.map((e) => (typeof e === 'string' ? e : JSON.stringify(e))).join('; ')}`;
  }
  return errorMessage(err);
}
