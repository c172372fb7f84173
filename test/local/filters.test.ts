import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { CesqlError, parseCesql } from '../../local/cesql.js';
import {
  backoffMs,
  compileFilter,
  effectiveDelivery,
  loadEventingDir,
  parseEventingYaml,
  parseIsoDuration,
  triggerMatches,
  type SubscriptionsApiFilter,
  type TriggerResource,
} from '../../local/triggers.js';

const FIXTURES = fileURLToPath(new URL('./fixtures', import.meta.url));

const event = {
  specversion: '1.0',
  id: 'e-1',
  type: 'io.kcr.checkpoint.created',
  source: '/kcr/request-checkpoint',
  subject: 'demo/counter-0/app',
  kcrcheckpointid: '20250101T000000Z-abc',
  kind: 'Pod',
};

describe('Subscriptions API filter dialects', () => {
  const cases: { name: string; filter: SubscriptionsApiFilter; want: boolean }[] = [
    { name: 'exact match', filter: { exact: { type: 'io.kcr.checkpoint.created' } }, want: true },
    { name: 'exact is case-sensitive', filter: { exact: { type: 'IO.KCR.CHECKPOINT.CREATED' } }, want: false },
    { name: 'exact on an extension', filter: { exact: { kind: 'Pod' } }, want: true },
    { name: 'exact on a missing attribute', filter: { exact: { dataschema: '' } }, want: false },
    { name: 'prefix match', filter: { prefix: { type: 'io.kcr.' } }, want: true },
    { name: 'prefix mismatch', filter: { prefix: { type: 'dev.knative.' } }, want: false },
    { name: 'suffix match', filter: { suffix: { type: '.created' } }, want: true },
    { name: 'suffix mismatch', filter: { suffix: { source: '/store-artifact' } }, want: false },
    { name: 'all: every member', filter: { all: [{ prefix: { type: 'io.kcr' } }, { exact: { kind: 'Pod' } }] }, want: true },
    { name: 'all: one fails', filter: { all: [{ prefix: { type: 'io.kcr' } }, { exact: { kind: 'Deployment' } }] }, want: false },
    { name: 'all: empty', filter: { all: [] }, want: true },
    { name: 'any: one member', filter: { any: [{ exact: { type: 'x' } }, { suffix: { subject: '/app' } }] }, want: true },
    { name: 'any: none', filter: { any: [{ exact: { type: 'x' } }, { exact: { type: 'y' } }] }, want: false },
    { name: 'not', filter: { not: { exact: { type: 'io.kcr.checkpoint.created' } } }, want: false },
    { name: 'not not', filter: { not: { not: { exact: { kind: 'Pod' } } } }, want: true },
    {
      name: 'nested: any of (all of …) and not',
      filter: { any: [{ all: [{ exact: { kind: 'Deployment' } }] }, { all: [{ prefix: { type: 'io.kcr' } }, { not: { exact: { source: '/kcr/build-image' } } }] }] },
      want: true,
    },
    { name: 'not any', filter: { not: { any: [{ exact: { kind: 'Pod' } }, { exact: { type: 'x' } }] } }, want: false },
    { name: 'cesql', filter: { cesql: "type LIKE 'io.kcr.%' AND kind = 'Pod'" }, want: true },
    { name: 'cesql false', filter: { cesql: "type IN ('a', 'b')" }, want: false },
    { name: 'cesql inside not', filter: { not: { cesql: "source = '/kcr/request-checkpoint'" } }, want: false },
    { name: 'empty filter', filter: {}, want: true },
  ];
  it.each(cases)('$name', ({ filter, want }) => {
    expect(compileFilter(filter)(event)).toBe(want);
  });
});

describe('CESQL subset', () => {
  const cases: { expr: string; want: boolean }[] = [
    { expr: "type = 'io.kcr.checkpoint.created'", want: true },
    { expr: "type <> 'io.kcr.checkpoint.created'", want: false },
    { expr: "type != 'x' AND NOT (kind = 'Deployment')", want: true },
    { expr: "kind = 'Pod' OR missing = 'x'", want: true },
    { expr: "kind = 'Job' XOR kind = 'Pod'", want: true },
    { expr: "subject LIKE 'demo/%/app'", want: true },
    { expr: "subject LIKE 'demo/counter-_/app'", want: true },
    { expr: "subject LIKE 'demo/_/app'", want: false },
    { expr: "subject NOT LIKE '%/sidecar'", want: true },
    { expr: "kind IN ('Deployment', 'Pod')", want: true },
    { expr: "kind NOT IN ('Deployment', 'Pod')", want: false },
    { expr: 'EXISTS kcrcheckpointid', want: true },
    { expr: 'NOT EXISTS traceparent', want: true },
    { expr: "LOWER(kind) = 'pod' AND UPPER(kind) = 'POD'", want: true },
    { expr: 'LENGTH(kind) = 3', want: true },
    { expr: "CONCAT(kind, '/', id) = 'Pod/e-1'", want: true },
    { expr: "specversion = '1.0' and type like 'io.%'", want: true },
    { expr: '1 + 2 * 3 = 7', want: true },
    { expr: "'10' > 9", want: true },
    { expr: "'b' > 'a'", want: true },
    { expr: "kind = \"Pod\" AND 'it''s' = 'it''s'", want: true },
    { expr: 'TRUE', want: true },
    // A missing attribute is an evaluation error: the filter does not match.
    { expr: "missing = 'x'", want: false },
    { expr: "NOT (missing = 'x')", want: false },
    { expr: 'INT(kind) = 1', want: false },
  ];
  it.each(cases)('$expr → $want', ({ expr, want }) => {
    expect(parseCesql(expr).matches(event)).toBe(want);
  });

  it('reports evaluation errors through evaluate()', () => {
    expect(() => parseCesql("missing = 'x'").evaluate(event)).toThrow(/attribute missing is missing/);
  });

  it.each(["type = 'unterminated", 'type =', "FOO(type) = 'x'", 'type LIKE kind', 'a b', "kind NOT 'x'"])('rejects %s', (expr) => {
    expect(() => parseCesql(expr)).toThrow(CesqlError);
  });
});

describe('Trigger filter precedence and attributes filter', () => {
  const trigger = (spec: Partial<TriggerResource['spec']>): TriggerResource => ({
    apiVersion: 'eventing.knative.dev/v1',
    kind: 'Trigger',
    metadata: { name: 't', namespace: 'kcr-system' },
    spec: { broker: 'kcr', subscriber: { uri: 'http://127.0.0.1:1/' }, ...spec },
  });

  it('matches every event without a filter, or with empty attributes', () => {
    expect(triggerMatches(trigger({}), event)).toBe(true);
    expect(triggerMatches(trigger({ filter: { attributes: {} } }), event)).toBe(true);
  });

  it('requires every attribute to match exactly; an empty value matches any', () => {
    expect(triggerMatches(trigger({ filter: { attributes: { type: event.type, kind: 'Pod' } } }), event)).toBe(true);
    expect(triggerMatches(trigger({ filter: { attributes: { type: event.type, kind: 'Job' } } }), event)).toBe(false);
    expect(triggerMatches(trigger({ filter: { attributes: { kind: '' } } }), event)).toBe(true);
  });

  it('ignores filter when filters is set', () => {
    const t = trigger({ filter: { attributes: { type: 'never' } }, filters: [{ exact: { kind: 'Pod' } }] });
    expect(triggerMatches(t, event)).toBe(true);
  });

  it('falls back to filter when filters is empty', () => {
    const t = trigger({ filter: { attributes: { type: 'never' } }, filters: [] });
    expect(triggerMatches(t, event)).toBe(false);
  });

  it('ANDs the entries of filters', () => {
    expect(triggerMatches(trigger({ filters: [{ exact: { kind: 'Pod' } }, { prefix: { type: 'dev.' } }] }), event)).toBe(false);
  });
});

describe('eventing YAML', () => {
  it('loads Brokers and Triggers from a directory, skipping other kinds', () => {
    const config = loadEventingDir(FIXTURES);
    expect(config.brokers.map((b) => b.metadata.name)).toEqual(['kcr']);
    expect(config.triggers.map((t) => t.metadata.name)).toEqual(['store-artifact', 'restore-pod', 'event-archive', 'other-broker']);
  });

  it('names the file and Trigger of an invalid document', () => {
    const yaml = 'apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: bad}\nspec: {broker: kcr}\n';
    expect(() => parseEventingYaml(yaml, 'bad.yaml')).toThrow(/bad\.yaml: Trigger bad is invalid at spec\.subscriber/);
  });

  it('rejects a filter entry with two dialects and a malformed cesql expression', () => {
    const twoDialects =
      'apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: two}\nspec: {broker: kcr, subscriber: {uri: "http://x/"}, filters: [{exact: {type: a}, prefix: {type: b}}]}\n';
    expect(() => parseEventingYaml(twoDialects, 'two.yaml')).toThrow(/exactly one dialect/);
    const badSql = 'apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: sql}\nspec: {broker: kcr, subscriber: {uri: "http://x/"}, filters: [{cesql: "type ="}]}\n';
    expect(() => parseEventingYaml(badSql, 'sql.yaml')).toThrow(/sql\.yaml: Trigger default\/sql: expected a value/);
  });
});

describe('delivery spec', () => {
  const config = loadEventingDir(FIXTURES);
  const broker = config.brokers[0];
  const byName = (n: string) => config.triggers.find((t) => t.metadata.name === n)!;

  it("takes the Trigger's delivery as a whole over the Broker's", () => {
    expect(effectiveDelivery(byName('restore-pod'), broker)).toEqual({ retry: 1, backoffPolicy: 'linear', backoffDelayMs: 100, timeoutMs: 2000 });
  });

  it("falls back to the Broker's delivery", () => {
    const d = effectiveDelivery(byName('store-artifact'), broker);
    expect(d).toMatchObject({ retry: 3, backoffPolicy: 'exponential', backoffDelayMs: 200 });
    expect(d.deadLetterSink?.ref?.name).toBe('dead-letters');
  });

  it('uses the MT broker defaults without any delivery spec', () => {
    expect(effectiveDelivery(byName('store-artifact'), undefined)).toEqual({ retry: 10, backoffPolicy: 'exponential', backoffDelayMs: 200 });
  });

  it('computes exponential and linear backoff like Knative', () => {
    expect([1, 2, 3].map((n) => backoffMs({ backoffPolicy: 'exponential', backoffDelayMs: 200 }, n))).toEqual([400, 800, 1600]);
    expect([1, 2, 3].map((n) => backoffMs({ backoffPolicy: 'linear', backoffDelayMs: 200 }, n))).toEqual([200, 400, 600]);
  });

  it.each([
    ['PT0.2S', 200],
    ['PT1M30S', 90_000],
    ['PT2H', 7_200_000],
    ['P1D', 86_400_000],
    ['P1DT1S', 86_401_000],
  ])('parses %s', (text, ms) => {
    expect(parseIsoDuration(text)).toBe(ms);
  });

  it.each(['0.2s', 'PT', 'P', '200ms', 'PT-1S'])('rejects %s', (text) => {
    expect(() => parseIsoDuration(text, 'backoffDelay')).toThrow(/backoffDelay: .* is not an ISO 8601 duration/);
  });
});
