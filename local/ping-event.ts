// What a PingSource sends and when, as the mt-ping adapter decides it, pure:
// the CloudEvent built from its spec (makePingEvent), the schedule it runs
// (pingSchedule) and the whole spec check a PingSource must pass before it is
// scheduled (checkPingSpec).
import { randomUUID } from 'node:crypto';
import type { CronSchedule } from '../functions/core/knative/cron.js';
import { checkPingSchedule, fieldErrorsText, PING_DEFAULT_SCHEDULE } from '../functions/core/knative/ping-validation.js';
import type { WireEvent } from '../functions/core/runtime/cloudevents-http.js';
import type { PingSourceResource } from './sources.js';

const PING_EVENT_TYPE = 'dev.knative.sources.ping';

/** The CloudEvent a PingSource sends (a new id and time on every call). */
export function makePingEvent(source: PingSourceResource, now: Date = new Date()): WireEvent {
  const namespace = source.metadata.namespace ?? 'default';
  const attributes: Record<string, string> = {
    specversion: '1.0',
    id: randomUUID(),
    source: `/apis/v1/namespaces/${namespace}/pingsources/${source.metadata.name}`,
    type: PING_EVENT_TYPE,
    time: now.toISOString(),
  };
  for (const [k, v] of Object.entries(source.spec.ceOverrides?.extensions ?? {})) attributes[k] = v;
  const contentType = source.spec.contentType;
  if (contentType) attributes.datacontenttype = contentType;
  let data: Buffer | undefined;
  if (source.spec.dataBase64) {
    data = Buffer.from(source.spec.dataBase64, 'base64');
  } else if (source.spec.data) {
    if (contentType === 'application/json') {
      let parsed: unknown;
      try {
        parsed = JSON.parse(source.spec.data);
      } catch (err) {
        throw new Error(`spec.data of PingSource ${namespace}/${source.metadata.name} is not valid JSON: ${(err as Error).message}`, { cause: err });
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
        throw new Error(`spec.data of PingSource ${namespace}/${source.metadata.name} must be a JSON object for application/json`);
      }
      const sorted = Object.fromEntries(Object.entries(parsed as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
      data = Buffer.from(JSON.stringify(sorted), 'utf8');
    } else {
      data = Buffer.from(source.spec.data, 'utf8');
    }
  }
  return data ? { attributes, data } : { attributes };
}

/**
 * What the adapter runs for a PingSource: its schedule (defaulted) with
 * spec.timezone; throws what the webhook would answer when it refuses them.
 */
export function pingSchedule(spec: { schedule?: string; timezone?: string }): CronSchedule {
  const check = checkPingSchedule(spec.schedule || PING_DEFAULT_SCHEDULE, spec.timezone || undefined);
  if (!check.ok) throw new Error(`Knative's webhook refuses this PingSource: ${fieldErrorsText(check.errors)}`);
  return check.schedule;
}

/**
 * The schedule a PingSource runs once its spec is accepted; throws why it is
 * not (a schedule the webhook refuses, both data and dataBase64, data that
 * makes no event).
 */
export function checkPingSpec(source: PingSourceResource): CronSchedule {
  const cron = pingSchedule(source.spec);
  if (source.spec.data !== undefined && source.spec.dataBase64 !== undefined) throw new Error('spec.data and spec.dataBase64 are mutually exclusive');
  makePingEvent(source);
  return cron;
}
