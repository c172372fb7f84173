// schedule-sync's write races, against an in-memory ScheduleSyncKube: a
// PingSource someone else writes between our read and write makes it read
// again; one that keeps changing under it becomes a 503 for the broker to retry.
import { describe, expect, it } from 'vitest';
import type { CoreV1Event } from '@kubernetes/client-node';
import { ConflictError, type PingSource, type Workload } from '../../functions/core/kubernetes/kubernetes.js';
import { createScheduleSync } from '../../functions/schedule-sync/handler.js';
import type { ScheduleSyncKube } from '../../functions/schedule-sync/kube-port.js';
import { TransientError } from '../../functions/core/runtime/errors.js';
import type { IncomingEvent } from '../../functions/core/runtime/handler.js';
import { createLogger } from '../../functions/core/runtime/logger.js';
import { EventTypes } from '../../functions/core/contract/events.js';
import { deployment } from '../../simulator/workloads.js';

const BROKER = 'http://broker.example/kcr-system/kcr';
const workload: Workload = { ...deployment({ name: 'shop', annotations: { 'kcr.io/checkpoint-restore-schedule': '*/5 * * * *' } }), kind: 'Deployment' };

/** One workload and the PingSources in a map; `racer` runs before each create, as another writer would. */
function fakeKube(racer: (sources: Map<string, PingSource>, source: PingSource) => void) {
  const sources = new Map<string, PingSource>();
  const writes: string[] = [];
  const kube: ScheduleSyncKube = {
    getWorkload: (_ns, kind, name) => Promise.resolve(kind === 'Deployment' && name === 'shop' ? workload : undefined),
    listWorkloads: () => Promise.resolve([workload]),
    getPingSource: (_ns, name) => Promise.resolve(sources.get(name)),
    listPingSources: () => Promise.resolve([...sources.values()]),
    createPingSource: (source) => {
      writes.push('create');
      racer(sources, source);
      const name = source.metadata.name ?? '';
      if (sources.has(name)) return Promise.reject(new ConflictError(`create pingsource ${name}: HTTP 409: already exists`));
      sources.set(name, source);
      return Promise.resolve(source);
    },
    replacePingSource: (source) => {
      writes.push('replace');
      sources.set(source.metadata.name ?? '', source);
      return Promise.resolve(source);
    },
    deletePingSource: (_ns, name) => Promise.resolve(sources.delete(name)),
    createEvent: (_event: CoreV1Event) => Promise.resolve(),
  };
  return { kube, sources, writes };
}

const update: IncomingEvent<typeof EventTypes.resourceUpdate> = {
  type: EventTypes.resourceUpdate,
  id: 'u-1',
  source: 'https://10.96.0.1:443',
  data: { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'shop', namespace: 'default' } },
  extensions: {},
};
const ctx = { log: createLogger('schedule-sync', 'silent') };

describe('schedule-sync when another writer races it', () => {
  it('reads again after a conflict and updates what the other writer created', async () => {
    let raced = false;
    const { kube, sources, writes } = fakeKube((s, source) => {
      if (raced) return;
      raced = true;
      s.set(source.metadata.name ?? '', { ...source, metadata: { ...source.metadata, resourceVersion: '7' }, spec: { ...source.spec, schedule: '0 * * * *' } });
    });
    const out = await createScheduleSync({ kube, sinkUri: BROKER }).handle(update, ctx);
    expect(writes).toEqual(['create', 'replace']);
    expect(out.map((e) => (e.data as { action: string }).action)).toEqual(['updated']);
    expect([...sources.values()].map((p) => [p.spec.schedule, p.metadata.resourceVersion])).toEqual([['*/5 * * * *', '7']]);
  });

  it('gives up after three conflicts in a row with a TransientError (a 503)', async () => {
    // Each create loses to a PingSource that is gone again by the next read.
    const { kube, writes } = fakeKube((s, source) => s.set(source.metadata.name ?? '', source));
    const handler = createScheduleSync({ kube: { ...kube, getPingSource: () => Promise.resolve(undefined) }, sinkUri: BROKER });
    await expect(handler.handle(update, ctx)).rejects.toBeInstanceOf(TransientError);
    expect(writes).toEqual(['create', 'create', 'create', 'create']);
  });
});
