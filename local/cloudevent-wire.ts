// CloudEvents over HTTP as the local broker and sources carry them: attributes
// as strings plus the data bytes, so an event is forwarded byte for byte
// (the SDK re-serializes data and invents ids, which a broker must not do).
// HTTP protocol binding 1.0: binary and structured mode in, binary mode out.
import { HTTP, type CloudEvent } from 'cloudevents';

export interface WireEvent {
  /** Context attributes and extensions, lower-case names, string values (datacontenttype included). */
  attributes: Record<string, string>;
  /** The data bytes, absent when the event has no data. */
  data?: Buffer;
}

export class InvalidCloudEventError extends Error {}

const STRUCTURED = 'application/cloudevents+json';
const BATCH = 'application/cloudevents-batch';
const NAME = /^[a-z0-9]+$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

type Headers = Record<string, string | string[] | undefined>;

/** True when an HTTP message carries a CloudEvent (binary: ce-id header; structured: content type). */
export function carriesCloudEvent(headers: Headers): boolean {
  const flat = flatten(headers);
  return flat['ce-id'] !== undefined || (flat['content-type'] ?? '').toLowerCase().startsWith(STRUCTURED);
}

/** Reads a CloudEvent from an HTTP message; throws InvalidCloudEventError with the reason. */
export function decodeHttp(headers: Headers, body: Buffer): WireEvent {
  const flat = flatten(headers);
  const contentType = flat['content-type'] ?? '';
  const lower = contentType.toLowerCase();
  if (lower.startsWith(BATCH)) throw new InvalidCloudEventError('batched CloudEvents are not accepted by a broker ingress');
  let event: WireEvent;
  if (lower.startsWith(STRUCTURED)) {
    event = decodeStructured(body);
  } else {
    if (flat['ce-id'] === undefined) {
      throw new InvalidCloudEventError('not a CloudEvent: no ce-id header (binary mode) and no application/cloudevents+json body (structured mode)');
    }
    const attributes: Record<string, string> = {};
    for (const [k, v] of Object.entries(flat)) {
      if (k.startsWith('ce-') && k.length > 3) attributes[k.slice(3)] = percentDecode(v);
    }
    if (contentType) attributes.datacontenttype = contentType;
    event = body.length > 0 ? { attributes, data: body } : { attributes };
  }
  validateAttributes(event.attributes);
  return event;
}

function decodeStructured(body: Buffer): WireEvent {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new InvalidCloudEventError(`structured CloudEvent is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new InvalidCloudEventError('a structured CloudEvent must be a JSON object');
  }
  const obj = parsed as Record<string, unknown>;
  const attributes: Record<string, string> = {};
  for (const [k, v] of Object.entries(obj)) {
    if (k === 'data' || k === 'data_base64' || v === null || v === undefined) continue;
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
      throw new InvalidCloudEventError(`attribute ${k} must be a string, number or boolean, not ${Array.isArray(v) ? 'an array' : typeof v}`);
    }
    attributes[k] = String(v);
  }
  if (obj.data_base64 !== undefined && obj.data !== undefined) throw new InvalidCloudEventError('a structured CloudEvent has both data and data_base64');
  if (typeof obj.data_base64 === 'string') return { attributes, data: Buffer.from(obj.data_base64, 'base64') };
  if (obj.data === undefined || obj.data === null) return { attributes };
  const ct = attributes.datacontenttype;
  // JSON format: absent datacontenttype means application/json, and JSON data is carried as JSON.
  if (ct === undefined) attributes.datacontenttype = 'application/json';
  if (typeof obj.data === 'string' && ct !== undefined && !isJson(ct)) return { attributes, data: Buffer.from(obj.data, 'utf8') };
  return { attributes, data: Buffer.from(JSON.stringify(obj.data), 'utf8') };
}

function validateAttributes(attributes: Record<string, string>): void {
  if (attributes.specversion !== '1.0') {
    throw new InvalidCloudEventError(`unsupported or missing specversion ${JSON.stringify(attributes.specversion ?? null)} (expected "1.0")`);
  }
  for (const required of ['id', 'source', 'type']) {
    if (!attributes[required]) throw new InvalidCloudEventError(`required attribute ${required} is missing or empty`);
  }
  for (const name of Object.keys(attributes)) {
    if (!NAME.test(name)) throw new InvalidCloudEventError(`attribute name ${JSON.stringify(name)} is invalid: only a-z and 0-9 are allowed`);
  }
  if (attributes.time !== undefined && (!RFC3339.test(attributes.time) || Number.isNaN(Date.parse(attributes.time)))) {
    throw new InvalidCloudEventError(`attribute time ${JSON.stringify(attributes.time)} is not an RFC 3339 timestamp`);
  }
  if (attributes.subject === '') throw new InvalidCloudEventError('attribute subject, when present, must not be empty');
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

function isJson(contentType: string): boolean {
  const base = contentType.split(';')[0]!.trim().toLowerCase();
  return base === 'application/json' || base === 'text/json' || base.endsWith('+json');
}

function flatten(headers: Headers): Record<string, string> {
  const flat: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined) flat[k.toLowerCase()] = Array.isArray(v) ? v.join(',') : v;
  return flat;
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
