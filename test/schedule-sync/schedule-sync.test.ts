import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AppsV1Api, CoreV1Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { startSimulatedCluster, type SimulatedCluster } from '../../simulator/index.js';
import { Kubernetes, type PingSource } from '../../functions/core/kubernetes/kubernetes.js';
import { createScheduleSync, resyncAll } from '../../functions/schedule-sync/handler.js';
import { serveFunction, type RunningFunction } from '../../functions/core/runtime/server.js';
import { createLogger } from '../../functions/core/runtime/logger.js';
import { startSink, type TestSink } from '../support/sink.js';
import { apiServerEvent, deployment, statefulSet } from '../../simulator/workloads.js';

const NS = 'default';
const SCHEDULE = 'kcr.io/checkpoint-restore-schedule';
const BROKER = 'http://broker-ingress.knative-eventing.svc.cluster.local/kcr-system/kcr';

describe('schedule-sync against the simulated cluster, over HTTP', () => {
  let cluster: SimulatedCluster;
  let kube: Kubernetes;
  let apps: AppsV1Api;
  let sink: TestSink;
  let fn: RunningFunction;
  const post = (req: { headers: Record<string, string>; body: string }) => fetch(fn.url, { method: 'POST', ...req });
  const synced = () => sink.events.filter((e) => e.type === 'io.kcr.schedule.synced').map((e) => e.data as Record<string, string>);

  beforeAll(async () => {
    cluster = await startSimulatedCluster({ kubelet: { tickMs: 50 } });
    kube = new Kubernetes(cluster.kubeConfig);
    apps = cluster.kubeConfig.makeApiClient(AppsV1Api);
    sink = await startSink();
    fn = await serveFunction(createScheduleSync({ kube, sinkUri: BROKER }), { port: 0, host: '127.0.0.1', sink: sink.url, logger: createLogger('schedule-sync', 'silent') });
  });
  afterAll(async () => {
    await fn?.close();
    await sink?.close();
    await cluster?.stop();
  });
  beforeEach(() => {
    sink.events.length = 0;
  });

  const kinds = [
    {
      kind: 'Deployment' as const,
      create: (name: string, annotations?: Record<string, string>) => apps.createNamespacedDeployment({ namespace: NS, body: deployment({ name, ...(annotations ? { annotations } : {}) }) }),
      read: (name: string) => apps.readNamespacedDeployment({ namespace: NS, name }),
      patch: (name: string, body: object) => apps.patchNamespacedDeployment({ namespace: NS, name, body }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch)),
      remove: (name: string) => apps.deleteNamespacedDeployment({ namespace: NS, name }),
    },
    {
      kind: 'StatefulSet' as const,
      create: (name: string, annotations?: Record<string, string>) => apps.createNamespacedStatefulSet({ namespace: NS, body: statefulSet({ name, ...(annotations ? { annotations } : {}) }) }),
      read: (name: string) => apps.readNamespacedStatefulSet({ namespace: NS, name }),
      patch: (name: string, body: object) => apps.patchNamespacedStatefulSet({ namespace: NS, name, body }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch)),
      remove: (name: string) => apps.deleteNamespacedStatefulSet({ namespace: NS, name }),
    },
  ];

  describe.each(kinds)('$kind', (k) => {
    const name = `sync-${k.kind.toLowerCase()}`;
    const psName = `kcr-${k.kind.toLowerCase()}-${name}`;
    const event = async (verb: 'add' | 'update' | 'delete') => post(apiServerEvent(verb, { ...(await k.read(name)), apiVersion: 'apps/v1', kind: k.kind }));

    it('creates, updates and deletes the PingSource as the annotation comes, changes and goes', async () => {
      await k.create(name, { [SCHEDULE]: '*/5 * * * *' });
      expect((await event('add')).status).toBe(202);
      const ps = await kube.getPingSource(NS, psName);
      const w = await k.read(name);
      expect(ps?.spec).toMatchObject({ schedule: '*/5 * * * *', contentType: 'application/json', sink: { uri: BROKER } });
      expect(ps?.spec).not.toHaveProperty('ceOverrides');
      expect(JSON.parse(ps!.spec.data!)).toEqual({ namespace: NS, kind: k.kind, name });
      expect(ps?.metadata.ownerReferences).toEqual([expect.objectContaining({ apiVersion: 'apps/v1', kind: k.kind, name, uid: w.metadata?.uid, controller: true })]);
      expect(synced()).toEqual([{ namespace: NS, kind: k.kind, name, schedule: '*/5 * * * *', action: 'created' }]);

      await k.patch(name, { metadata: { annotations: { [SCHEDULE]: '*/10 * * * * *', 'kcr.io/checkpoint-timezone': 'Europe/Paris' } } });
      expect((await event('update')).status).toBe(202);
      expect((await kube.getPingSource(NS, psName))?.spec).toMatchObject({ schedule: '*/10 * * * * *', timezone: 'Europe/Paris' });
      expect(synced().at(-1)?.action).toBe('updated');

      // The same event again changes nothing and says nothing.
      const before = (await kube.getPingSource(NS, psName))?.metadata.resourceVersion;
      expect((await event('update')).status).toBe(202);
      expect((await kube.getPingSource(NS, psName))?.metadata.resourceVersion).toBe(before);
      expect(synced()).toHaveLength(2);

      await k.patch(name, { metadata: { annotations: { [SCHEDULE]: null } } });
      expect((await event('update')).status).toBe(202);
      expect(await kube.getPingSource(NS, psName)).toBeUndefined();
      expect(synced().at(-1)).toMatchObject({ action: 'deleted', reason: 'annotation removed' });
    });

    it('rejects an invalid schedule: Warning Event, no PingSource, synced action rejected', async () => {
      const bad = `${name}-bad`;
      await k.create(bad, { [SCHEDULE]: '0 0 L * *' });
      expect((await post(apiServerEvent('add', { ...(await k.read(bad)), apiVersion: 'apps/v1', kind: k.kind }))).status).toBe(202);
      expect(await kube.getPingSource(NS, `kcr-${k.kind.toLowerCase()}-${bad}`)).toBeUndefined();
      expect(synced()).toEqual([expect.objectContaining({ name: bad, action: 'rejected', schedule: '0 0 L * *', reason: expect.stringMatching(/"L" \(last\)/) })]);
      const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
      const evs = await core.listNamespacedEvent({ namespace: NS, fieldSelector: `involvedObject.name=${bad}` });
      expect(evs.items).toContainEqual(
        expect.objectContaining({ type: 'Warning', reason: 'InvalidCheckpointSchedule', message: expect.stringMatching(/kcr.io\/checkpoint-restore-schedule: .*"L" \(last\)/) }),
      );
    });

    it('leaves no PingSource when the workload is deleted while annotated', async () => {
      const gone = `${name}-gone`;
      await k.create(gone, { [SCHEDULE]: '*/5 * * * *' });
      const obj = { ...(await k.read(gone)), apiVersion: 'apps/v1', kind: k.kind };
      await post(apiServerEvent('add', obj));
      expect(await kube.getPingSource(NS, `kcr-${k.kind.toLowerCase()}-${gone}`)).toBeDefined();
      await k.remove(gone);
      expect((await post(apiServerEvent('delete', obj))).status).toBe(202);
      expect(await kube.getPingSource(NS, `kcr-${k.kind.toLowerCase()}-${gone}`)).toBeUndefined();
    });
  });

  it('converges on the current state when an old event arrives late', async () => {
    await kinds[0]!.create('late', { [SCHEDULE]: '*/5 * * * *' });
    const old = { ...(await kinds[0]!.read('late')), apiVersion: 'apps/v1', kind: 'Deployment' };
    await kinds[0]!.patch('late', { metadata: { annotations: { [SCHEDULE]: '0 * * * *' } } });
    await post(apiServerEvent('update', { ...(await kinds[0]!.read('late')), apiVersion: 'apps/v1', kind: 'Deployment' }));
    // The add event, replayed or delivered out of order, still names the old schedule.
    expect((await post(apiServerEvent('add', old))).status).toBe(202);
    expect((await kube.getPingSource(NS, 'kcr-deployment-late'))?.spec.schedule).toBe('0 * * * *');
  });

  it('refuses a containers annotation naming a container the pod template lacks', async () => {
    await kinds[0]!.create('typo', { [SCHEDULE]: '*/5 * * * *', 'kcr.io/checkpoint-containers': 'app,sidecarr' });
    await post(apiServerEvent('add', { ...(await kinds[0]!.read('typo')), apiVersion: 'apps/v1', kind: 'Deployment' }));
    expect(synced()[0]).toMatchObject({ action: 'rejected', reason: expect.stringMatching(/sidecarr/) });
  });

  it('resync reconciles workloads that existed before any event, and PingSources left behind', async () => {
    await kinds[1]!.create('before', { [SCHEDULE]: '*/15 * * * *' });
    await kinds[0]!.create('unannotated');
    const w = await kinds[0]!.read('unannotated');
    const stale: PingSource = {
      apiVersion: 'sources.knative.dev/v1',
      kind: 'PingSource',
      metadata: {
        name: 'kcr-deployment-unannotated',
        namespace: NS,
        labels: { 'app.kubernetes.io/managed-by': 'kcr', 'kcr.io/workload-kind': 'Deployment', 'kcr.io/workload-name': 'unannotated' },
        ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'unannotated', uid: w.metadata!.uid! }],
      },
      spec: { schedule: '* * * * *', sink: { uri: BROKER } },
    };
    await kube.createPingSource(stale);
    const resync = {
      headers: { 'content-type': 'application/cloudevents+json' },
      body: JSON.stringify({
        specversion: '1.0',
        id: 'resync-1',
        source: '/apis/v1/namespaces/kcr-system/pingsources/kcr-resync',
        type: 'dev.knative.sources.ping',
        kcrresync: 'true',
        data: { resync: true },
      }),
    };
    expect((await post(resync)).status).toBe(202);
    expect((await kube.getPingSource(NS, 'kcr-statefulset-before'))?.spec.schedule).toBe('*/15 * * * *');
    expect(await kube.getPingSource(NS, 'kcr-deployment-unannotated')).toBeUndefined();
    // Nothing left to change the second time; the invalid schedules are reported again.
    const again = await resyncAll({ kube, sinkUri: BROKER }, { log: createLogger('t', 'silent') });
    expect(again.map((e) => `${(e.data as { name: string }).name}:${(e.data as { action: string }).action}`).sort()).toEqual([
      'sync-deployment-bad:rejected',
      'sync-statefulset-bad:rejected',
      'typo:rejected',
    ]);
  });
});
