// Simulated controllers and kubelet lifecycle through @kubernetes/client-node: Deployment →
// ReplicaSet → pods, StatefulSet pods, restarts and CrashLoopBackOff, evictions, node loss.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppsV1Api, CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions, type V1Pod } from '@kubernetes/client-node';
import { startSimulatedCluster, type SimulatedCluster } from '../../simulator/index.js';

let cluster: SimulatedCluster;
let core: CoreV1Api;
let apps: AppsV1Api;
let custom: CustomObjectsApi;

beforeAll(async () => {
  cluster = await startSimulatedCluster({
    kubelet: { tickMs: 20, backoffBaseMs: 150, backoffMaxMs: 600, backoffResetMs: 5000 },
    podEvictionTimeoutMs: 100,
  });
  core = cluster.kubeConfig.makeApiClient(CoreV1Api);
  apps = cluster.kubeConfig.makeApiClient(AppsV1Api);
  custom = cluster.kubeConfig.makeApiClient(CustomObjectsApi);
  await core.createNamespace({ body: { metadata: { name: 'wl' } } });
});

afterAll(async () => {
  await cluster?.stop();
});

const container = { name: 'app', image: 'quay.io/kcr/counter:1' };

async function pods(labelSelector: string): Promise<V1Pod[]> {
  return (await core.listNamespacedPod({ namespace: 'wl', labelSelector })).items;
}

function running(p: V1Pod): boolean {
  return p.status?.phase === 'Running' && !p.metadata?.deletionTimestamp && (p.status.containerStatuses ?? []).every((c) => c.ready);
}

async function waitRunning(labelSelector: string, n: number): Promise<V1Pod[]> {
  return cluster.waitFor(
    async () => {
      const ps = (await pods(labelSelector)).filter(running);
      return ps.length === n ? ps : undefined;
    },
    { description: `${n} running pods for ${labelSelector}` },
  );
}

describe('Deployment', () => {
  it('creates a ReplicaSet and running pods, updates status, rolls out a template change', async () => {
    await apps.createNamespacedDeployment({
      namespace: 'wl',
      body: { metadata: { name: 'web' }, spec: { replicas: 2, selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [container] } } } },
    });
    const ps = await waitRunning('app=web', 2);
    const rsList = await apps.listNamespacedReplicaSet({ namespace: 'wl', labelSelector: 'app=web' });
    expect(rsList.items).toHaveLength(1);
    const rs = rsList.items[0]!;
    const hash = rs.metadata!.labels!['pod-template-hash']!;
    expect(rs.metadata!.name).toBe(`web-${hash}`);
    expect(rs.metadata!.ownerReferences).toMatchObject([{ kind: 'Deployment', name: 'web', controller: true }]);
    for (const p of ps) {
      expect(p.metadata!.name).toMatch(new RegExp(`^web-${hash}-[a-z0-9]{5}$`));
      expect(p.metadata!.ownerReferences).toMatchObject([{ kind: 'ReplicaSet', name: rs.metadata!.name, controller: true }]);
      const cs = p.status!.containerStatuses![0]!;
      expect(cs).toMatchObject({ name: 'app', ready: true, started: true, restartCount: 0 });
      expect(cs.containerID).toMatch(/^cri-o:\/\/[0-9a-f]{64}$/);
      expect(cs.imageID).toMatch(/^quay\.io\/kcr\/counter@sha256:[0-9a-f]{64}$/);
      expect(cs.state?.running?.startedAt).toBeInstanceOf(Date);
    }
    // Round-robin scheduling spreads the two replicas over the two nodes.
    expect(new Set(ps.map((p) => p.spec!.nodeName))).toEqual(new Set(cluster.nodes));
    const d = await cluster.waitFor(async () => {
      const x = await apps.readNamespacedDeployment({ namespace: 'wl', name: 'web' });
      return x.status?.availableReplicas === 2 ? x : undefined;
    });
    expect(d.status).toMatchObject({ replicas: 2, readyReplicas: 2, updatedReplicas: 2, observedGeneration: 1 });

    await apps.patchNamespacedDeployment(
      { namespace: 'wl', name: 'web', body: { spec: { template: { spec: { containers: [{ name: 'app', image: 'quay.io/kcr/counter:2' }] } } } } },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
    );
    await cluster.waitFor(
      async () => {
        const x = (await pods('app=web')).filter(running);
        return x.length === 2 && x.every((p) => p.spec!.containers[0]!.image === 'quay.io/kcr/counter:2') ? x : undefined;
      },
      { description: 'rollout to :2' },
    );
    const after = await apps.listNamespacedReplicaSet({ namespace: 'wl', labelSelector: 'app=web' });
    expect(after.items).toHaveLength(2);
    const old = after.items.find((r) => r.metadata!.name === rs.metadata!.name)!;
    await cluster.waitFor(async () => (await apps.readNamespacedReplicaSet({ namespace: 'wl', name: old.metadata!.name! })).spec?.replicas === 0);
    const d2 = await apps.readNamespacedDeployment({ namespace: 'wl', name: 'web' });
    expect(d2.metadata?.generation).toBe(2);
  });

  it('deleting a Deployment garbage-collects its ReplicaSets, pods and an owned PingSource', async () => {
    const d = await apps.createNamespacedDeployment({
      namespace: 'wl',
      body: { metadata: { name: 'gone' }, spec: { replicas: 1, selector: { matchLabels: { app: 'gone' } }, template: { metadata: { labels: { app: 'gone' } }, spec: { containers: [container] } } } },
    });
    await custom.createNamespacedCustomObject({
      group: 'sources.knative.dev',
      version: 'v1',
      namespace: 'wl',
      plural: 'pingsources',
      body: {
        apiVersion: 'sources.knative.dev/v1',
        kind: 'PingSource',
        metadata: { name: 'gone-schedule', ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'gone', uid: d.metadata!.uid!, controller: true }] },
        spec: { schedule: '*/5 * * * *' },
      },
    });
    await waitRunning('app=gone', 1);
    await apps.deleteNamespacedDeployment({ namespace: 'wl', name: 'gone' });
    await cluster.waitFor(
      async () => {
        const rs = await apps.listNamespacedReplicaSet({ namespace: 'wl', labelSelector: 'app=gone' });
        const ps = await pods('app=gone');
        const srcs = (await custom.listNamespacedCustomObject({ group: 'sources.knative.dev', version: 'v1', namespace: 'wl', plural: 'pingsources' })) as { items: unknown[] };
        return rs.items.length === 0 && ps.length === 0 && srcs.items.length === 0;
      },
      { description: 'cascade deletion' },
    );
  });
});

describe('StatefulSet', () => {
  it('keeps pods <name>-0..n-1 and recreates a deleted pod with the same name', async () => {
    await apps.createNamespacedStatefulSet({
      namespace: 'wl',
      body: {
        metadata: { name: 'db' },
        spec: { replicas: 2, serviceName: 'db', selector: { matchLabels: { app: 'db' } }, template: { metadata: { labels: { app: 'db' } }, spec: { containers: [container] } } },
      },
    });
    const ps = await waitRunning('app=db', 2);
    expect(ps.map((p) => p.metadata!.name).sort()).toEqual(['db-0', 'db-1']);
    expect(ps[0]!.metadata!.labels).toMatchObject({ 'statefulset.kubernetes.io/pod-name': ps[0]!.metadata!.name });
    expect(ps[0]!.metadata!.labels!['controller-revision-hash']).toMatch(/^db-/);
    const uid = ps.find((p) => p.metadata!.name === 'db-0')!.metadata!.uid;
    await core.deleteNamespacedPod({ namespace: 'wl', name: 'db-0' });
    await cluster.waitFor(
      async () => {
        const p = await core.readNamespacedPod({ namespace: 'wl', name: 'db-0' }).catch(() => undefined);
        return p && p.metadata!.uid !== uid && running(p);
      },
      { description: 'db-0 recreated' },
    );
    const sts = await cluster.waitFor(async () => {
      const s = await apps.readNamespacedStatefulSet({ namespace: 'wl', name: 'db' });
      return s.status?.readyReplicas === 2 ? s : undefined;
    });
    expect(sts.status).toMatchObject({ replicas: 2, readyReplicas: 2, observedGeneration: 1 });
  });
});

describe('kubelet restarts', () => {
  it('restarts a killed container (restartCount, lastState) and backs off into CrashLoopBackOff', async () => {
    await core.createNamespacedPod({ namespace: 'wl', body: { metadata: { name: 'crashy', labels: { app: 'crashy' } }, spec: { containers: [container] } } });
    await waitRunning('app=crashy', 1);
    cluster.killContainer('wl', 'crashy', 'app', { oomKilled: true });
    const p1 = await cluster.waitFor(
      async () => {
        const p = await core.readNamespacedPod({ namespace: 'wl', name: 'crashy' });
        const cs = p.status!.containerStatuses![0]!;
        return cs.restartCount === 1 && cs.state?.running ? p : undefined;
      },
      { description: 'first restart' },
    );
    const cs1 = p1.status!.containerStatuses![0]!;
    expect(cs1.lastState?.terminated).toMatchObject({ exitCode: 137, reason: 'OOMKilled' });
    expect(cs1.lastState?.terminated?.containerID).toMatch(/^cri-o:\/\//);
    expect(cs1.lastState?.terminated?.finishedAt).toBeInstanceOf(Date);
    expect(cs1.containerID).not.toBe(cs1.lastState?.terminated?.containerID);
    expect(p1.status?.phase).toBe('Running');

    cluster.killContainer('wl', 'crashy', 'app', { exitCode: 2 });
    const p2 = await cluster.waitFor(
      async () => {
        const p = await core.readNamespacedPod({ namespace: 'wl', name: 'crashy' });
        return p.status!.containerStatuses![0]!.state?.waiting?.reason === 'CrashLoopBackOff' ? p : undefined;
      },
      { description: 'CrashLoopBackOff' },
    );
    const cs2 = p2.status!.containerStatuses![0]!;
    expect(cs2.state?.waiting?.message).toMatch(/^back-off 150ms restarting failed container=app pod=crashy_wl\(/);
    expect(cs2.lastState?.terminated).toMatchObject({ exitCode: 2, reason: 'Error' });
    expect(cs2.ready).toBe(false);
    expect(p2.status?.phase).toBe('Running');
    // After the back-off it runs again, with the restart counted.
    await cluster.waitFor(
      async () => {
        const cs = (await core.readNamespacedPod({ namespace: 'wl', name: 'crashy' })).status!.containerStatuses![0]!;
        return cs.restartCount === 2 && cs.state?.running !== undefined;
      },
      { description: 'restart after back-off' },
    );
    // The restarted container logs afresh; its first tick may still be due.
    const logs = await cluster.waitFor(
      async () => {
        const text = await core.readNamespacedPodLog({ namespace: 'wl', name: 'crashy', container: 'app' });
        return text.includes('counter=1\n') ? text : undefined;
      },
      { description: 'first tick after the restart' },
    );
    expect(logs).toMatch(/^starting fresh: counter=0\ncounter=1\n/);
  });
});

describe('eviction and node loss', () => {
  it('replaces a Deployment pod evicted by node pressure, and one evicted through the API', async () => {
    await apps.createNamespacedDeployment({
      namespace: 'wl',
      body: { metadata: { name: 'ev' }, spec: { replicas: 1, selector: { matchLabels: { app: 'ev' } }, template: { metadata: { labels: { app: 'ev' } }, spec: { containers: [container] } } } },
    });
    const [victim] = await waitRunning('app=ev', 1);
    cluster.evictPod('wl', victim!.metadata!.name!);
    const evicted = await cluster.waitFor(async () => {
      const p = await core.readNamespacedPod({ namespace: 'wl', name: victim!.metadata!.name! });
      return p.status?.phase === 'Failed' ? p : undefined;
    });
    expect(evicted.status).toMatchObject({ phase: 'Failed', reason: 'Evicted' });
    expect(evicted.status?.message).toContain('The node was low on resource: memory.');
    expect(evicted.status?.conditions?.find((c) => c.type === 'DisruptionTarget')).toMatchObject({ status: 'True', reason: 'TerminationByKubelet' });
    expect(evicted.status?.containerStatuses?.[0]?.state?.terminated?.exitCode).toBe(137);
    const [replacement] = await waitRunning('app=ev', 1);
    expect(replacement!.metadata!.name).not.toBe(victim!.metadata!.name);

    // API-initiated eviction (policy/v1 Eviction) deletes the pod; the ReplicaSet replaces it.
    await core.createNamespacedPodEviction({
      namespace: 'wl',
      name: replacement!.metadata!.name!,
      body: { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: replacement!.metadata!.name!, namespace: 'wl' } },
    });
    await cluster.waitFor(
      async () => {
        const ps = (await pods('app=ev')).filter(running);
        return ps.length === 1 && ps[0]!.metadata!.name !== replacement!.metadata!.name;
      },
      { description: 'replacement after API eviction' },
    );
  });

  it('recreates a StatefulSet pod evicted by node pressure under the same name', async () => {
    await apps.createNamespacedStatefulSet({
      namespace: 'wl',
      body: {
        metadata: { name: 'evs' },
        spec: { replicas: 1, serviceName: 'evs', selector: { matchLabels: { app: 'evs' } }, template: { metadata: { labels: { app: 'evs' } }, spec: { containers: [container] } } },
      },
    });
    const [p0] = await waitRunning('app=evs', 1);
    cluster.evictPod('wl', 'evs-0');
    await cluster.waitFor(
      async () => {
        const p = await core.readNamespacedPod({ namespace: 'wl', name: 'evs-0' }).catch(() => undefined);
        return p && p.metadata!.uid !== p0!.metadata!.uid && running(p);
      },
      { description: 'evs-0 recreated' },
    );
  });

  it('marks a downed node NotReady, evicts its pods after the timeout and reschedules them elsewhere', async () => {
    await apps.createNamespacedDeployment({
      namespace: 'wl',
      body: { metadata: { name: 'nd' }, spec: { replicas: 2, selector: { matchLabels: { app: 'nd' } }, template: { metadata: { labels: { app: 'nd' } }, spec: { containers: [container] } } } },
    });
    const ps = await waitRunning('app=nd', 2);
    const lost = ps[0]!.spec!.nodeName!;
    const other = cluster.nodes.find((n) => n !== lost)!;
    cluster.nodeDown(lost);
    const node = await core.readNode({ name: lost });
    expect(node.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('Unknown');
    expect(node.spec?.taints?.map((t) => t.effect)).toEqual(['NoSchedule', 'NoExecute']);
    const moved = await cluster.waitFor(
      async () => {
        const x = (await pods('app=nd')).filter(running);
        return x.length === 2 && x.every((p) => p.spec!.nodeName === other) ? x : undefined;
      },
      { description: 'pods rescheduled away from the lost node' },
    );
    expect(moved.map((p) => p.metadata!.name)).not.toContain(ps[0]!.metadata!.name);
    cluster.nodeUp(lost);
    const back = await core.readNode({ name: lost });
    expect(back.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
    expect(back.spec?.taints).toBeUndefined();
  });

  it('graceful pod deletion sets deletionTimestamp before the pod disappears', async () => {
    await core.createNamespacedPod({ namespace: 'wl', body: { metadata: { name: 'graceful', labels: { app: 'graceful' } }, spec: { containers: [container] } } });
    await waitRunning('app=graceful', 1);
    const res = await core.deleteNamespacedPod({ namespace: 'wl', name: 'graceful' });
    expect(res.metadata?.deletionTimestamp).toBeInstanceOf(Date);
    expect(res.metadata?.deletionGracePeriodSeconds).toBe(30);
    await cluster.waitFor(async () => (await pods('app=graceful')).length === 0, { description: 'pod removed' });
  });
});
