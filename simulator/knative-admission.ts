// Knative Eventing's admission webhooks for PingSources, as the API server runs
// them on every create and update: the defaulting webhook (webhook.eventing.knative.dev)
// sets an empty spec.schedule to "* * * * *", the validating one
// (validation.webhook.eventing.knative.dev) refuses a schedule or time zone
// robfig/cron does not take. The API server answers a refusal with the
// webhook's own Status: 400 BadRequest, "admission webhook … denied the request:
// validation failed: <apis.FieldError>", the field path inside the message.
import { checkPingSchedule, fieldErrorsText, PING_DEFAULT_SCHEDULE } from '../functions/core/knative/ping-validation.js';
import { ApiError, invalid } from './errors.js';
import type { ResourceType } from './resources.js';
import { isRecord, type KubeObject } from './types.js';

const PING_VALIDATION_WEBHOOK = 'validation.webhook.eventing.knative.dev';

export function admitKnative(t: ResourceType, obj: KubeObject): void {
  if (t.group !== 'sources.knative.dev' || t.kind !== 'PingSource') return;
  const spec = isRecord(obj.spec) ? obj.spec : (obj.spec = {});
  const name = obj.metadata.name ?? '';
  // The CRD's schema types both fields as strings; the API server checks that before any webhook.
  for (const field of ['schedule', 'timezone'] as const) {
    const value = spec[field];
    if (value === undefined || typeof value === 'string') continue;
    const type = value === null ? 'null' : Array.isArray(value) ? 'array' : Number.isInteger(value) ? 'integer' : typeof value;
    throw invalid(t.kind, t.group, name, [{ reason: 'FieldValueTypeInvalid', message: `Invalid value: "${type}": spec.${field} in body must be of type string: "${type}"`, field: `spec.${field}` }]);
  }
  if (!spec.schedule) spec.schedule = PING_DEFAULT_SCHEDULE;
  const check = checkPingSchedule(spec.schedule as string, (spec.timezone as string | undefined) || undefined);
  if (!check.ok) throw new ApiError(400, 'BadRequest', `admission webhook "${PING_VALIDATION_WEBHOOK}" denied the request: validation failed: ${fieldErrorsText(check.errors)}`);
}
