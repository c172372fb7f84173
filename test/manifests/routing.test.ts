// The Triggers against the event contract, evaluated with the local broker's
// Knative filter semantics (local/triggers.ts) on the same YAML that deploys.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ALL_EVENT_TYPES, EventTypes, type EventType } from '../../functions/core/contract/events.js';
import { effectiveDelivery, loadEventingDir, triggerMatches, typesNamedBy, type EventAttributes } from '../../local/triggers.js';
import { FUNCTIONS, loadRepoDocs, named, ofKind, REPO } from './support.js';

const eventing = loadEventingDir(join(REPO, 'eventing'));
const docs = loadRepoDocs();
const triggers = eventing.triggers;

function routes(attrs: EventAttributes): string[] {
  return triggers
    .filter((t) => triggerMatches(t, attrs))
    .map((t) => t.metadata.name)
    .sort();
}

function event(type: EventType, source: string, extensions: Record<string, string> = {}): EventAttributes {
  return { specversion: '1.0', id: 'e-1', type, source, ...extensions };
}

// The ApiServerSources: which kinds each sends, and which function those events are for.
const apiServerSources = ofKind(docs, 'sources.knative.dev/v1', 'ApiServerSource');
const sourceFunction: Record<string, string> = { 'kcr-workloads': 'schedule-sync', 'kcr-pods': 'restore-pod' };
const resync = named(docs, 'sources.knative.dev/v1', 'PingSource', 'kcr-resync');
const resyncExtensions = (resync.spec as { ceOverrides: { extensions: Record<string, string> } }).ceOverrides.extensions;

interface Case {
  what: string;
  attrs: EventAttributes;
  /** The function Triggers that must take it (event-archive takes everything on top). */
  to: string[];
}

const apiServerUrl = 'https://10.96.0.1:443';
const cases: Case[] = [
  ...apiServerSources.flatMap((src) =>
    (src.spec as { resources: { kind: string }[] }).resources.flatMap(({ kind }) =>
      [EventTypes.resourceAdd, EventTypes.resourceUpdate, EventTypes.resourceDelete].map((type) => ({
        what: `${type} of a ${kind} (${src.metadata.name})`,
        attrs: event(type, apiServerUrl, { kind, name: 'web', namespace: 'default' }),
        to: [sourceFunction[src.metadata.name] ?? `(no function known for source ${src.metadata.name})`],
      })),
    ),
  ),
  { what: 'a workload schedule ping', attrs: event(EventTypes.ping, '/apis/v1/namespaces/default/pingsources/kcr-deployment-web', { kcrselector: 'app=web' }), to: ['request-checkpoint'] },
  { what: 'the resync ping (sources/resync.yaml)', attrs: event(EventTypes.ping, '/apis/v1/namespaces/kcr-system/pingsources/kcr-resync', resyncExtensions), to: ['schedule-sync'] },
  { what: 'an on-demand request', attrs: event(EventTypes.checkpointRequested, '/kcr/cli'), to: ['request-checkpoint'] },
  { what: 'a restore to a chosen checkpoint (kcr restore --to)', attrs: event(EventTypes.restoreRequested, '/kcr/cli'), to: ['restore-pod'] },
  { what: 'checkpoint.created', attrs: event(EventTypes.checkpointCreated, '/kcr/request-checkpoint'), to: ['store-artifact'] },
  { what: 'checkpoint.stored', attrs: event(EventTypes.checkpointStored, '/kcr/store-artifact'), to: ['build-image'] },
  // Consumed by nobody but the archive: restore-pod reads S3, not image.built.
  { what: 'image.built', attrs: event(EventTypes.imageBuilt, '/kcr/build-image'), to: [] },
  { what: 'pod.restored', attrs: event(EventTypes.podRestored, '/kcr/restore-pod'), to: [] },
  { what: 'checkpoint.failed', attrs: event(EventTypes.checkpointFailed, '/kcr/store-artifact'), to: [] },
  { what: 'restore.failed', attrs: event(EventTypes.restoreFailed, '/kcr/restore-pod'), to: [] },
  { what: 'schedule.synced', attrs: event(EventTypes.scheduleSynced, '/kcr/schedule-sync'), to: [] },
];

describe('Trigger routing against the event contract', () => {
  it('has one Trigger per function, subscribing that function’s Knative Service', () => {
    expect(triggers.map((t) => t.metadata.name).sort()).toEqual([...FUNCTIONS].sort());
    for (const t of triggers) {
      expect(t.spec.broker).toBe('kcr');
      expect(t.spec.subscriber.ref).toMatchObject({ apiVersion: 'serving.knative.dev/v1', kind: 'Service', name: t.metadata.name });
    }
  });

  it('names no event type outside the contract', () => {
    const named = triggers.flatMap((t) => typesNamedBy(t).map((type) => ({ trigger: t.metadata.name, type })));
    expect(named.length).toBeGreaterThan(0);
    expect(named.filter(({ type }) => !(ALL_EVENT_TYPES as string[]).includes(type))).toEqual([]);
  });

  it('filters every function Trigger but event-archive by type', () => {
    for (const t of triggers.filter((t) => t.metadata.name !== 'event-archive')) {
      expect(typesNamedBy(t), t.metadata.name).not.toEqual([]);
    }
  });

  it('covers every contract type in this table, so a new type must be routed on purpose', () => {
    const covered = new Set(cases.map((c) => c.attrs.type));
    expect(ALL_EVENT_TYPES.filter((type) => !covered.has(type))).toEqual([]);
  });

  it.each(cases.map((c) => [c.what, c] as const))('routes %s', (_what, c) => {
    expect(routes(c.attrs)).toEqual(['event-archive', ...c.to].sort());
  });

  it('sends apiserver events of other kinds to the archive only', () => {
    expect(routes(event(EventTypes.resourceUpdate, apiServerUrl, { kind: 'ReplicaSet' }))).toEqual(['event-archive']);
  });
});

describe('delivery', () => {
  const broker = eventing.brokers.find((b) => b.metadata.name === 'kcr');

  it('retries 10 times with exponential backoff from 0.2 s, dead letters to event-archive', () => {
    expect(broker?.spec?.delivery).toMatchObject({ retry: 10, backoffPolicy: 'exponential', backoffDelay: 'PT0.2S' });
  });

  it.each(triggers.map((t) => [t.metadata.name, t] as const))('%s keeps retries and a dead-letter sink that archives', (_name, t) => {
    const d = effectiveDelivery(t, broker);
    expect(d.retry).toBeGreaterThanOrEqual(10);
    expect(d.backoffPolicy).toBe('exponential');
    expect(d.deadLetterSink?.ref).toMatchObject({ apiVersion: 'serving.knative.dev/v1', kind: 'Service', name: 'event-archive' });
  });

  it.each(['store-artifact', 'build-image', 'request-checkpoint'])('%s: the Trigger and Knative wait as long as the Service may run', (name) => {
    const t = triggers.find((x) => x.metadata.name === name)!;
    const svc = named(docs, 'serving.knative.dev/v1', 'Service', name);
    const { timeoutSeconds, responseStartTimeoutSeconds } = (svc.spec as { template: { spec: { timeoutSeconds: number; responseStartTimeoutSeconds: number } } }).template.spec;
    expect(effectiveDelivery(t, broker).timeoutMs).toBe(timeoutSeconds * 1000);
    // The function answers when done: Knative must wait that long for the first byte too.
    expect(responseStartTimeoutSeconds).toBe(timeoutSeconds);
  });
});
