// The CloudEvents HTTP protocol binding 1.0, once for the function runtime and
// the local broker: which mode a message is in, header flattening, the
// specversion check, JSON content types, and the byte-exact wire form the
// broker and sources forward (the SDK re-serializes data and invents ids,
// which a broker must not do). Binary and structured mode in, binary mode out.
import { HTTP, type CloudEvent } from 'cloudevents';
import { BadInputError, errorMessage } from './errors.js';

export const STRUCTURED_CONTENT_TYPE = 'application/cloudevents+json';
export const BATCH_CONTENT_TYPE = 'application/cloudevents-batch+json';

export type HttpHeaders = Record<string, string | string[] | undefined>;

export type Mode = 'binary' | 'structured' | 'batch';

export interface WireEvent {
  /** Context attributes and extensions, lower-case names, string values (datacontenttype included). */
  attributes: Record<string, string>;
  /** The data bytes, absent when the event has no data. */
  data?: Buffer;
}

const NAME = /^[a-z0-9]+$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/** Header names lower-cased, repeated headers joined as HTTP joins them. */
export function flattenHeaders(headers: HttpHeaders): Record<string, string> {
  const flat: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined) flat[k.toLowerCase()] = Array.isArray(v) ? v.join(',') : v;
  return flat;
}

export function isBatch(contentType: string | undefined): boolean {
  return (contentType ?? '').toLowerCase().startsWith('application/cloudevents-batch');
}

/** The mode of a message (flattened headers), or undefined when it carries no CloudEvent. */
function modeOf(flat: Record<string, string>): Mode | undefined {
  const contentType = (flat['content-type'] ?? '').toLowerCase();
  if (isBatch(contentType)) return 'batch';
  if (contentType.startsWith(STRUCTURED_CONTENT_TYPE)) return 'structured';
  return flat['ce-id'] !== undefined ? 'binary' : undefined;
}

/** The mode of a message (flattened headers); BadInputError when it carries no CloudEvent. */
export function requireMode(flat: Record<string, string>): Mode {
  const mode = modeOf(flat);
  if (!mode) throw new BadInputError('not a CloudEvent: no ce-id header (binary mode) and no application/cloudevents+json body (structured mode)');
  return mode;
}

/** True when an HTTP message carries one CloudEvent (binary: ce-id header; structured: content type); a batch does not. */
export function carriesCloudEvent(headers: HttpHeaders): boolean {
  const flat = flattenHeaders(headers);
  return flat['ce-id'] !== undefined || modeOf(flat) === 'structured';
}

export function checkSpecVersion(v: unknown): void {
  if (v !== '1.0') throw new BadInputError(`unsupported CloudEvents specversion ${JSON.stringify(v ?? null)}: kcr accepts 1.0`);
}

export function checkRequired(name: string, value: unknown): void {
  if (typeof value !== 'string' || value === '') throw new BadInputError(`CloudEvent attribute ${name} is missing or empty`);
}

/** A structured-mode event (parsed JSON) as an object; BadInputError when it is not one. */
export function structuredObject(value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new BadInputError('a structured CloudEvent must be a JSON object');
  return value as Record<string, unknown>;
}

/** The spec's JSON media types: application/json, text/json and any +json suffix. */
export function isJson(contentType: string): boolean {
  const base = contentType.split(';')[0]!.trim().toLowerCase();
  return base === 'application/json' || base === 'text/json' || base.endsWith('+json');
}

/** Reads one CloudEvent from an HTTP message, as a broker ingress takes it; BadInputError with the reason. */
export function decodeHttp(headers: HttpHeaders, body: Buffer): WireEvent {
  const flat = flattenHeaders(headers);
  const contentType = flat['content-type'] ?? '';
  let event: WireEvent;
  switch (requireMode(flat)) {
    case 'batch':
      throw new BadInputError('batched CloudEvents are not accepted by a broker ingress');
    case 'structured':
      event = decodeStructured(body);
      break;
    case 'binary': {
      const attributes: Record<string, string> = {};
      for (const [k, v] of Object.entries(flat)) {
        if (k.startsWith('ce-') && k.length > 3) attributes[k.slice(3)] = percentDecode(v);
      }
      if (contentType) attributes.datacontenttype = contentType;
      event = body.length > 0 ? { attributes, data: body } : { attributes };
    }
  }
  validateAttributes(event.attributes);
  return event;
}

function decodeStructured(body: Buffer): WireEvent {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new BadInputError(`structured CloudEvent is not valid JSON: ${errorMessage(err)}`);
  }
  const obj = structuredObject(parsed);
  const attributes: Record<string, string> = {};
  for (const [k, v] of Object.entries(obj)) {
    if (k === 'data' || k === 'data_base64' || v === null || v === undefined) continue;
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
      throw new BadInputError(`attribute ${k} must be a string, number or boolean, not ${Array.isArray(v) ? 'an array' : typeof v}`);
    }
    attributes[k] = String(v);
  }
  if (obj.data_base64 !== undefined && obj.data !== undefined) throw new BadInputError('a structured CloudEvent has both data and data_base64');
  if (typeof obj.data_base64 === 'string') return { attributes, data: Buffer.from(obj.data_base64, 'base64') };
  if (obj.data === undefined || obj.data === null) return { attributes };
  const ct = attributes.datacontenttype;
  // JSON format: absent datacontenttype means application/json, and JSON data is carried as JSON.
  if (ct === undefined) attributes.datacontenttype = 'application/json';
  if (typeof obj.data === 'string' && ct !== undefined && !isJson(ct)) return { attributes, data: Buffer.from(obj.data, 'utf8') };
  return { attributes, data: Buffer.from(JSON.stringify(obj.data), 'utf8') };
}

function validateAttributes(attributes: Record<string, string>): void {
  checkSpecVersion(attributes.specversion);
  for (const required of ['id', 'source', 'type']) checkRequired(required, attributes[required]);
  for (const name of Object.keys(attributes)) {
    if (!NAME.test(name)) throw new BadInputError(`attribute name ${JSON.stringify(name)} is invalid: only a-z and 0-9 are allowed`);
  }
  if (attributes.time !== undefined && (!RFC3339.test(attributes.time) || Number.isNaN(Date.parse(attributes.time)))) {
    throw new BadInputError(`attribute time ${JSON.stringify(attributes.time)} is not an RFC 3339 timestamp`);
  }
  if (attributes.subject === '') throw new BadInputError('attribute subject, when present, must not be empty');
}

/** Binary-mode HTTP request headers and body for an event. */
export function encodeBinary(event: WireEvent): { headers: Record<string, string>; body?: Buffer } {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(event.attributes)) {
    if (k === 'datacontenttype') headers['content-type'] = v;
    else headers[`ce-${k}`] = percentEncode(v);
  }
  return event.data && event.data.length > 0 ? { headers, body: event.data } : { headers };
}

/** Converts an SDK CloudEvent (what the function runtime emits) to the wire form. */
export function fromSdkEvent(event: CloudEvent<unknown>): WireEvent {
  const message = HTTP.binary(event);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(message.headers)) if (v !== undefined && v !== null) headers[k.toLowerCase()] = String(v);
  const body = message.body;
  let bytes: Buffer;
  if (body === undefined || body === null) bytes = Buffer.alloc(0);
  else if (typeof body === 'string') bytes = Buffer.from(body, 'utf8');
  else if (body instanceof Uint8Array) bytes = Buffer.from(body);
  else bytes = Buffer.from(JSON.stringify(body), 'utf8');
  return decodeHttp(headers, bytes);
}

/** The data parsed as JSON when the content type says JSON, else the data as text; undefined without data. */
export function dataOf(event: WireEvent): unknown {
  if (!event.data) return undefined;
  const text = event.data.toString('utf8');
  if (isJson(event.attributes.datacontenttype ?? 'application/json')) {
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }
  return text;
}

// The HTTP binding percent-encodes space, double quote, percent and anything outside printable ASCII.
function percentEncode(value: string): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    out += byte <= 0x20 || byte >= 0x7f || byte === 0x22 || byte === 0x25 ? `%${byte.toString(16).toUpperCase().padStart(2, '0')}` : String.fromCharCode(byte);
  }
  return out;
}

function percentDecode(value: string): string {
  if (!value.includes('%')) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}
