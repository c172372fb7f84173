// Turns an HTTP request into contract events, or a precise 400 message. The
// SDK neither validates incoming events nor notices a missing id (it invents
// one), so both are checked here.
import { HTTP, CloudEvent, ValidationError } from 'cloudevents';
import { checkData, isContractType, type EventType } from '../contract/events.js';
import { BadInputError, errorMessage } from './errors.js';
import type { IncomingEvent } from './handler.js';

const BATCH = 'application/cloudevents-batch+json';
const STRUCTURED = 'application/cloudevents';

export function isBatch(contentType: string | undefined): boolean {
  return (contentType ?? '').toLowerCase().startsWith(BATCH);
}

export function parseRequest(headers: Record<string, string | string[] | undefined>, body: string, accepts: readonly EventType[]): IncomingEvent[] {
  const flat: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined) flat[k.toLowerCase()] = Array.isArray(v) ? v.join(',') : v;
  const contentType = (flat['content-type'] ?? '').toLowerCase();

  if (isBatch(contentType)) {
    const items = parseJson(body, 'batch body');
    if (!Array.isArray(items)) throw new BadInputError('a CloudEvents batch must be a JSON array');
    return items.map((item, i) => {
      try {
        return toIncoming(checkStructured(item), accepts);
      } catch (err) {
        throw new BadInputError(`batch event ${i}: ${errorMessage(err)}`);
      }
    });
  }

  if (contentType.startsWith(STRUCTURED)) {
    checkStructured(parseJson(body, 'structured CloudEvent'));
  } else {
    if (!flat['ce-id']) throw new BadInputError('not a CloudEvent: no ce-id header (binary mode) and no application/cloudevents+json body (structured mode)');
    checkSpecVersion(flat['ce-specversion']);
  }
  let event: CloudEvent<unknown>;
  try {
    const parsed = HTTP.toEvent({ headers: flat, body });
    if (Array.isArray(parsed)) throw new BadInputError('unexpected batch');
    event = parsed as CloudEvent<unknown>;
  } catch (err) {
    throw new BadInputError(`not a valid CloudEvent: ${describe(err)}`);
  }
  return [toIncoming(event, accepts)];
}

function checkStructured(value: unknown): CloudEvent<unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new BadInputError('a structured CloudEvent must be a JSON object');
  const obj = value as Record<string, unknown>;
  if (typeof obj.id !== 'string' || obj.id === '') throw new BadInputError('CloudEvent attribute id is missing or empty');
  checkSpecVersion(obj.specversion);
  try {
    return new CloudEvent<unknown>(obj as ConstructorParameters<typeof CloudEvent>[0], false);
  } catch (err) {
    throw new BadInputError(`not a valid CloudEvent: ${describe(err)}`);
  }
}

function checkSpecVersion(v: unknown): void {
  if (v !== '1.0') throw new BadInputError(`unsupported CloudEvents specversion ${JSON.stringify(v ?? null)}: kcr accepts 1.0`);
}

function toIncoming(event: CloudEvent<unknown>, accepts: readonly EventType[]): IncomingEvent {
  try {
    event.validate();
  } catch (err) {
    throw new BadInputError(`CloudEvent fails spec validation: ${describe(err)}`);
  }
  const type = event.type;
  if (!isContractType(type) || !accepts.includes(type)) {
    throw new BadInputError(`event type ${JSON.stringify(type)} is not handled here (accepts ${accepts.join(', ')})`);
  }
  let data: unknown = event.data;
  if (typeof data === 'string' || data instanceof Uint8Array) {
    const ct = (event.datacontenttype ?? 'application/json').toLowerCase();
    if (!ct.includes('json')) throw new BadInputError(`data of ${type} must be JSON, not ${ct}`);
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
    ...(event.time ? { time: event.time } : {}),
    extensions,
  } as IncomingEvent;
}

const CORE_ATTRIBUTES = new Set(['id', 'source', 'specversion', 'type', 'datacontenttype', 'dataschema', 'subject', 'time', 'data', 'data_base64']);

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new BadInputError(`${what} is not valid JSON: ${errorMessage(err)}`);
  }
}

function describe(err: unknown): string {
  if (err instanceof ValidationError && Array.isArray(err.errors) && err.errors.length) {
    return `${err.message}: ${err.errors.map((e) => (typeof e === 'string' ? e : JSON.stringify(e))).join('; ')}`;
  }
  return errorMessage(err);
}
