// Knative Broker and Trigger resources as the local broker reads them from the
// same YAML that deploys (eventing/*.yaml), and Trigger filter evaluation with
// Knative's semantics:
// - `spec.filters` (CloudEvents Subscriptions API dialects, GA since Knative
//   1.15) wins: when it is non-empty, `spec.filter` is ignored. Every entry must
//   match (an implicit `all`).
// - otherwise `spec.filter.attributes`: each attribute must equal exactly; an
//   empty value matches any value, an empty or absent map matches every event.
import { z } from 'zod';
import { parseCesql, type CesqlExpression } from './cesql.js';
import { parseResources, parseYamlDir } from './yaml-docs.js';

const TRIGGER_API_VERSION = 'eventing.knative.dev/v1';

const kref = z.object({
  apiVersion: z.string().optional(),
  kind: z.string(),
  name: z.string(),
  namespace: z.string().optional(),
});
export type KReference = z.infer<typeof kref>;

const destination = z.object({ ref: kref.optional(), uri: z.string().optional() }).refine((d) => d.ref !== undefined || d.uri !== undefined, 'a destination needs ref or uri');
export type Destination = z.infer<typeof destination>;

const delivery = z.object({
  retry: z.number().int().min(0).optional(),
  backoffPolicy: z.enum(['exponential', 'linear']).optional(),
  backoffDelay: z.string().optional(),
  timeout: z.string().optional(),
  deadLetterSink: destination.optional(),
});

export type SubscriptionsApiFilter = {
  exact?: Record<string, string>;
  prefix?: Record<string, string>;
  suffix?: Record<string, string>;
  all?: SubscriptionsApiFilter[];
  any?: SubscriptionsApiFilter[];
  not?: SubscriptionsApiFilter;
  cesql?: string;
};

const dialectFilter: z.ZodType<SubscriptionsApiFilter> = z.lazy(() =>
  z
    .object({
      exact: z.record(z.string(), z.string()).optional(),
      prefix: z.record(z.string(), z.string()).optional(),
      suffix: z.record(z.string(), z.string()).optional(),
      all: z.array(dialectFilter).optional(),
      any: z.array(dialectFilter).optional(),
      not: dialectFilter.optional(),
      cesql: z.string().optional(),
    })
    .strict()
    .refine((f) => Object.values(f).filter((v) => v !== undefined).length <= 1, 'a filter expression uses exactly one dialect'),
);

const metadata = z.object({ name: z.string(), namespace: z.string().optional() });

const triggerSchema = z.object({
  apiVersion: z.literal(TRIGGER_API_VERSION),
  kind: z.literal('Trigger'),
  metadata,
  spec: z.object({
    broker: z.string(),
    filter: z.object({ attributes: z.record(z.string(), z.string()).optional() }).optional(),
    filters: z.array(dialectFilter).optional(),
    subscriber: destination,
    delivery: delivery.optional(),
  }),
});
export type TriggerResource = z.infer<typeof triggerSchema>;

const brokerSchema = z.object({
  apiVersion: z.literal(TRIGGER_API_VERSION),
  kind: z.literal('Broker'),
  metadata,
  spec: z.object({ delivery: delivery.optional(), config: z.unknown().optional() }).optional(),
});
export type BrokerResource = z.infer<typeof brokerSchema>;

export interface EventingConfig {
  brokers: BrokerResource[];
  triggers: TriggerResource[];
}

/**
 * Reads every `*.yaml`/`*.yml` in a directory and keeps the Brokers and Triggers
 * (other kinds are skipped). Invalid Broker/Trigger documents throw, naming the file.
 * A resource without a namespace gets `defaultNamespace`, as `kubectl apply -n` would.
 */
export function loadEventingDir(dir: string, defaultNamespace = 'default'): EventingConfig {
  const resources = parseYamlDir(dir, (text, origin) => parseEventingResources(text, origin, defaultNamespace));
  return split(resources);
}

export function parseEventingYaml(text: string, origin = '<yaml>', defaultNamespace = 'default'): EventingConfig {
  return split(parseEventingResources(text, origin, defaultNamespace));
}

function parseEventingResources(text: string, origin: string, defaultNamespace: string): (TriggerResource | BrokerResource)[] {
  const resources = parseResources(text, origin, defaultNamespace, (apiVersion, kind) =>
    apiVersion !== TRIGGER_API_VERSION ? undefined : kind === 'Trigger' ? triggerSchema : kind === 'Broker' ? brokerSchema : undefined,
  );
  for (const r of resources) if (r.kind === 'Trigger') compileTriggerFilter(r, origin);
  return resources;
}

function split(resources: (TriggerResource | BrokerResource)[]): EventingConfig {
  const config: EventingConfig = { brokers: [], triggers: [] };
  for (const r of resources) {
    if (r.kind === 'Trigger') config.triggers.push(r);
    else config.brokers.push(r);
  }
  return config;
}

// ---- filter evaluation ----

/** A CloudEvent's attributes as filters see them: context attributes and extensions, string values. */
export type EventAttributes = Readonly<Record<string, string>>;

export type EventFilter = (attributes: EventAttributes) => boolean;

const compiled = new WeakMap<TriggerResource, EventFilter>();

/** True when the Trigger's filter accepts the event. */
export function triggerMatches(trigger: TriggerResource, attributes: EventAttributes): boolean {
  return compileTriggerFilter(trigger)(attributes);
}

/** Compiles (once) a Trigger's filter; a malformed cesql expression throws naming the Trigger. */
function compileTriggerFilter(trigger: TriggerResource, origin = ''): EventFilter {
  const cached = compiled.get(trigger);
  if (cached) return cached;
  let filter: EventFilter;
  try {
    filter = trigger.spec.filters && trigger.spec.filters.length > 0 ? compileAll(trigger.spec.filters) : compileAttributes(trigger.spec.filter?.attributes ?? {});
  } catch (err) {
    const where = origin ? `${origin}: ` : '';
    throw new Error(`${where}Trigger ${trigger.metadata.namespace ?? ''}/${trigger.metadata.name}: ${(err as Error).message}`, { cause: err });
  }
  compiled.set(trigger, filter);
  return filter;
}

function compileAttributes(expected: Record<string, string>): EventFilter {
  const entries = Object.entries(expected);
  return (attrs) => entries.every(([k, v]) => v === '' || attrs[k] === v);
}

/** Compiles one Subscriptions API filter expression (exported for tests and tools). */
export function compileFilter(f: SubscriptionsApiFilter): EventFilter {
  if (f.exact) return compileAttributeTest(f.exact, (actual, expected) => actual === expected);
  if (f.prefix) return compileAttributeTest(f.prefix, (actual, expected) => actual.startsWith(expected));
  if (f.suffix) return compileAttributeTest(f.suffix, (actual, expected) => actual.endsWith(expected));
  if (f.all) return compileAll(f.all);
  if (f.any) {
    const parts = f.any.map(compileFilter);
    // An empty `any` places no constraint, like an empty `all`.
    return parts.length === 0 ? () => true : (attrs) => parts.some((p) => p(attrs));
  }
  if (f.not) {
    const inner = compileFilter(f.not);
    return (attrs) => !inner(attrs);
  }
  if (f.cesql !== undefined) {
    const expr: CesqlExpression = parseCesql(f.cesql);
    return (attrs) => expr.matches(attrs);
  }
  return () => true;
}

function compileAll(filters: SubscriptionsApiFilter[]): EventFilter {
  const parts = filters.map(compileFilter);
  return (attrs) => parts.every((p) => p(attrs));
}

// exact/prefix/suffix: the attribute must exist and every listed one must pass.
function compileAttributeTest(expected: Record<string, string>, test: (actual: string, expected: string) => boolean): EventFilter {
  const entries = Object.entries(expected);
  return (attrs) =>
    entries.every(([k, v]) => {
      const actual = attrs[k];
      return actual !== undefined && test(actual, v);
    });
}

/** The event types a Trigger names in exact type matches (attributes filter or `exact` dialect, recursively through `all`). */
export function typesNamedBy(trigger: TriggerResource): string[] {
  if (trigger.spec.filters && trigger.spec.filters.length > 0) return trigger.spec.filters.flatMap(exactTypes);
  const t = trigger.spec.filter?.attributes?.type;
  return t ? [t] : [];
}

function exactTypes(f: SubscriptionsApiFilter): string[] {
  if (f.exact?.type) return [f.exact.type];
  if (f.all) return f.all.flatMap(exactTypes);
  if (f.any) return f.any.flatMap(exactTypes);
  return [];
}

// ---- delivery ----

export interface EffectiveDelivery {
  retry: number;
  backoffPolicy: 'exponential' | 'linear';
  backoffDelayMs: number;
  /** Per-attempt timeout; undefined means none. */
  timeoutMs?: number;
  deadLetterSink?: Destination;
}

/** Knative's MT broker defaults (config-br-defaults): 10 retries, exponential, PT0.2S. */
export const DEFAULT_DELIVERY: EffectiveDelivery = { retry: 10, backoffPolicy: 'exponential', backoffDelayMs: 200 };

/**
 * The delivery a Trigger gets: its own `spec.delivery` when set, else the Broker's,
 * else the defaults. Knative takes the Trigger's delivery as a whole, not field by field.
 */
export function effectiveDelivery(trigger: TriggerResource, broker: BrokerResource | undefined, defaults: EffectiveDelivery = DEFAULT_DELIVERY): EffectiveDelivery {
  const spec = trigger.spec.delivery ?? broker?.spec?.delivery;
  if (!spec) return defaults;
  const where = `delivery of Trigger ${trigger.metadata.name}`;
  const out: EffectiveDelivery = {
    retry: spec.retry ?? 0,
    backoffPolicy: spec.backoffPolicy ?? 'exponential',
    backoffDelayMs: spec.backoffDelay ? parseIsoDuration(spec.backoffDelay, `${where}: backoffDelay`) : defaults.backoffDelayMs,
  };
  if (spec.timeout) out.timeoutMs = parseIsoDuration(spec.timeout, `${where}: timeout`);
  if (spec.deadLetterSink) out.deadLetterSink = spec.deadLetterSink;
  return out;
}

/** Delay before retry number `retry` (1-based): exponential delay×2^n, linear delay×n, as Knative computes it. */
export function backoffMs(delivery: Pick<EffectiveDelivery, 'backoffPolicy' | 'backoffDelayMs'>, retry: number): number {
  return delivery.backoffPolicy === 'linear' ? delivery.backoffDelayMs * retry : delivery.backoffDelayMs * 2 ** retry;
}

const ISO_DURATION = /^P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$/;

/** Parses an ISO 8601 duration (days, hours, minutes, seconds; e.g. PT0.2S, PT1M30S) to milliseconds. */
export function parseIsoDuration(text: string, what = 'duration'): number {
  const m = ISO_DURATION.exec(text.trim());
  if (!m || text.trim() === 'P' || text.trim().endsWith('T')) throw new Error(`${what}: ${JSON.stringify(text)} is not an ISO 8601 duration (e.g. PT0.2S)`);
  const [, d, h, min, s] = m;
  const seconds = Number(d ?? 0) * 86400 + Number(h ?? 0) * 3600 + Number(min ?? 0) * 60 + Number(s ?? 0);
  return Math.round(seconds * 1000);
}
