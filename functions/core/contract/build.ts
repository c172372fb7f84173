// Constructors for contract events: the data is checked against its schema
// before it leaves a function, so a function cannot emit what others would reject.
import { CloudEvent } from 'cloudevents';
import { checkData, EventTypes, type EventData, type EventType } from './events.js';

const KCR_SOURCE_PREFIX = '/kcr/';

export interface EventAttributes {
  /** The emitting function, e.g. `request-checkpoint`; becomes `source: /kcr/<function>`. */
  source: string;
  subject?: string;
  checkpointId?: string;
  traceparent?: string;
  /** Set by `kcr events replay`: the id of the archived event this one replays. */
  replayOf?: string;
  id?: string;
  time?: string;
}

export type KcrEvent = CloudEvent<unknown>;

export function newEvent<T extends EventType>(type: T, data: EventData<T>, attrs: EventAttributes): KcrEvent {
  const check = checkData(type, data);
  if (!check.ok) throw new Error(`refusing to emit an invalid ${type} event: ${check.error}`);
  const extensions: Record<string, string> = {};
  if (attrs.checkpointId) extensions.kcrcheckpointid = attrs.checkpointId;
  if (attrs.traceparent) extensions.traceparent = attrs.traceparent;
  if (attrs.replayOf) extensions.kcrreplayof = attrs.replayOf;
  return new CloudEvent<unknown>({
    type,
    source: attrs.source.startsWith('/') ? attrs.source : `${KCR_SOURCE_PREFIX}${attrs.source}`,
    ...(attrs.subject ? { subject: attrs.subject } : {}),
    ...(attrs.id ? { id: attrs.id } : {}),
    ...(attrs.time ? { time: attrs.time } : {}),
    datacontenttype: 'application/json',
    data: check.data,
    ...extensions,
  });
}

function containerSubject(namespace: string, pod: string, container: string): string {
  return `${namespace}/${pod}/${container}`;
}

function workloadSubject(namespace: string, kind: string, name: string): string {
  return `${namespace}/${kind}/${name}`;
}

type CheckpointData = EventData<typeof EventTypes.checkpointCreated>;
type Common = Pick<EventAttributes, 'source' | 'traceparent'>;

/** Events about one checkpoint carry its id as `kcrcheckpointid` and the container as subject. */
function checkpointAttrs(data: CheckpointData, common: Common): EventAttributes {
  return { ...common, subject: containerSubject(data.namespace, data.pod, data.container), checkpointId: data.id };
}

export const events = {
  checkpointCreated: (data: EventData<typeof EventTypes.checkpointCreated>, common: Common) => newEvent(EventTypes.checkpointCreated, data, checkpointAttrs(data, common)),
  checkpointStored: (data: EventData<typeof EventTypes.checkpointStored>, common: Common) => newEvent(EventTypes.checkpointStored, data, checkpointAttrs(data, common)),
  imageBuilt: (data: EventData<typeof EventTypes.imageBuilt>, common: Common) => newEvent(EventTypes.imageBuilt, data, checkpointAttrs(data, common)),
  podRestored: (data: EventData<typeof EventTypes.podRestored>, common: Common) =>
    newEvent(EventTypes.podRestored, data, {
      ...common,
      subject: containerSubject(data.namespace, data.pod, data.container),
      checkpointId: data.checkpointId,
    }),
  checkpointFailed: (data: EventData<typeof EventTypes.checkpointFailed>, common: Common) => newEvent(EventTypes.checkpointFailed, data, failureAttrs(data, common)),
  restoreFailed: (data: EventData<typeof EventTypes.restoreFailed>, common: Common) => newEvent(EventTypes.restoreFailed, data, failureAttrs(data, common)),
  scheduleSynced: (data: EventData<typeof EventTypes.scheduleSynced>, common: Common) =>
    newEvent(EventTypes.scheduleSynced, data, { ...common, subject: workloadSubject(data.namespace, data.kind, data.name) }),
  checkpointRequested: (data: EventData<typeof EventTypes.checkpointRequested>, common: Common) =>
    newEvent(EventTypes.checkpointRequested, data, {
      ...common,
      subject: 'kind' in data ? workloadSubject(data.namespace, data.kind, data.name) : containerSubject(data.namespace, data.pod, data.container ?? '*'),
    }),
  restoreRequested: (data: EventData<typeof EventTypes.restoreRequested>, common: Common) =>
    newEvent(EventTypes.restoreRequested, data, {
      ...common,
      subject: 'pod' in data ? containerSubject(data.namespace, data.pod, '*') : workloadSubject(data.namespace, data.kind, data.name),
      checkpointId: data.checkpointId,
    }),
  ping: (data: EventData<typeof EventTypes.ping>, common: Common) =>
    newEvent(EventTypes.ping, data, { ...common, ...('kind' in data ? { subject: workloadSubject(data.namespace, data.kind, data.name) } : {}) }),
};

function failureAttrs(data: EventData<typeof EventTypes.checkpointFailed>, common: Common): EventAttributes {
  const checkpointId = data.id ?? data.checkpointId;
  let subject: string | undefined;
  if (data.pod) subject = containerSubject(data.namespace, data.pod, data.container ?? '*');
  else if (data.kind && data.name) subject = workloadSubject(data.namespace, data.kind, data.name);
  return { ...common, ...(subject ? { subject } : {}), ...(checkpointId ? { checkpointId } : {}) };
}
