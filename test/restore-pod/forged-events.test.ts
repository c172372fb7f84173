// restore-pod under forged, duplicated and failing input, on the local stack.
// Any pod in a cluster can POST to restore-pod (Knative Services are reachable
// from every namespace unless a NetworkPolicy says otherwise), and the broker
// delivers at least once: the posted pod is a hint, the API server the truth.
import { describe, expect, it } from 'vitest';
import { PatchStrategy, setHeaderOptions, type V1Pod } from '@kubernetes/client-node';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { deployment, runningPods, statefulSet } from '../../simulator/workloads.js';
import { NS, OPT_IN, TEST_TIMINGS, useLocalStack } from '../support/local-stack.js';

describe('restore-pod takes the posted pod as a hint, never as the truth', () => {
  const kit = useLocalStack('forged', { ...TEST_TIMINGS, nodes: ['node-a', 'node-b'], podEvictionTimeoutMs: 300 });
  const { of, until, settle, keys } = kit;
  const checkpoint = (pod: V1Pod) => kit.checkpoint(pod.metadata!.name!);

  /** POSTs an ApiServerSource event straight to restore-pod, as any pod in the cluster can. */
  function forge(type: 'add' | 'update' | 'delete', pod: unknown): Promise<Response> {
    const body = JSON.stringify({
      specversion: '1.0',
      id: `forged-${randomBytes(6).toString('hex')}`,
      source: 'https://kubernetes.default.svc',
      type: `dev.knative.apiserver.resource.${type}`,
      datacontenttype: 'application/json',
      data: pod,
    });
    return fetch(kit.stack.functions.get('restore-pod')!.url, { method: 'POST', headers: { 'content-type': 'application/cloudevents+json' }, body });
  }

  const evicted = (pod: V1Pod, uid: string, extra: Record<string, unknown> = {}) => ({
    ...pod,
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { ...pod.metadata, uid, ...extra },
    status: { ...pod.status, phase: 'Failed', reason: 'Evicted', message: 'The node was low on resource: memory.' },
  });

  it('a forged delete of a running StatefulSet pod (fake uid, "Evicted") neither restores nor records anything', async () => {
    await kit.apps.createNamespacedStatefulSet({ namespace: NS, body: statefulSet({ name: 'db', annotations: OPT_IN }) });
    const [pod] = await runningPods(kit.kube, NS, 'app=db', 1);
    kit.stack.cluster.setContainerState(NS, 'db-0', 'app', { counter: 500_000 });
    await checkpoint(pod!);
    await settle();
    const restoredBefore = of('io.kcr.pod.restored', 'db-0').length;

    expect((await forge('delete', evicted(pod!, 'f0f0f0f0-fake-uid'))).status).toBe(202);
    await settle();

    const live = await kit.core.readNamespacedPod({ namespace: NS, name: 'db-0' });
    expect(live.metadata?.uid).toBe(pod!.metadata?.uid);
    expect(live.spec?.containers[0]?.image).toBe(pod!.spec?.containers[0]?.image);
    expect(Object.keys(live.metadata?.annotations ?? {}).filter((k) => k.startsWith('kcr.io/restore'))).toEqual([]);
    expect(of('io.kcr.pod.restored', 'db-0')).toHaveLength(restoredBefore);
    expect(await keys(`disruptions/${NS}/StatefulSet/db/`)).toEqual([]);
  });

  it('a forged "Failed" update with the real uid of a running pod is ignored: the API says it runs', async () => {
    const [pod] = await runningPods(kit.kube, NS, 'app=db', 1);
    expect((await forge('update', evicted(pod!, pod!.metadata!.uid!))).status).toBe(202);
    expect((await forge('delete', evicted(pod!, pod!.metadata!.uid!))).status).toBe(202);
    await settle();
    expect(await keys(`disruptions/${NS}/StatefulSet/db/`)).toEqual([]);
    expect((await kit.core.readNamespacedPod({ namespace: NS, name: 'db-0' })).metadata?.uid).toBe(pod!.metadata?.uid);
  });

  it('a workload that opted out is not restored, whatever the posted pod claims', async () => {
    await kit.apps.createNamespacedDeployment({ namespace: NS, body: deployment({ name: 'optout', annotations: OPT_IN }) });
    const [pod] = await runningPods(kit.kube, NS, 'app=optout', 1);
    const name = pod!.metadata!.name!;
    await checkpoint(pod!);
    await kit.apps.patchNamespacedDeployment(
      { namespace: NS, name: 'optout', body: { metadata: { annotations: { 'kcr.io/checkpoint-restore-schedule': null } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await settle();

    kit.stack.cluster.killContainer(NS, name, 'app', { exitCode: 137 });
    const failing = await until('the container failed', async () => {
      const p = await kit.core.readNamespacedPod({ namespace: NS, name });
      return (p.status?.containerStatuses?.[0]?.restartCount ?? 0) > 0 ? p : undefined;
    });
    const claim = { ...failing, apiVersion: 'v1', kind: 'Pod', metadata: { ...failing.metadata, annotations: { ...failing.metadata?.annotations, 'kcr.io/restore': 'true' } } };
    expect((await forge('update', claim)).status).toBe(202);
    await settle();
    expect(of('io.kcr.pod.restored', name)).toEqual([]);
    expect((await kit.core.readNamespacedPod({ namespace: NS, name })).spec?.containers[0]?.image).toBe('quay.io/kcr/app:1');
  });

  it('a forged loss of one replica does not hand its memory to a new replica', async () => {
    await kit.apps.createNamespacedDeployment({ namespace: NS, body: deployment({ name: 'pair', replicas: 2, annotations: OPT_IN }) });
    const pods = await runningPods(kit.kube, NS, 'app=pair', 2);
    for (const p of pods) await checkpoint(p);
    await settle();
    const victim = pods[0]!;
    expect((await forge('delete', evicted(victim, '0badc0de-fake-uid', { deletionTimestamp: new Date().toISOString() }))).status).toBe(202);
    await kit.apps.patchNamespacedDeployment({ namespace: NS, name: 'pair', body: { spec: { replicas: 3 } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    const three = await runningPods(kit.kube, NS, 'app=pair', 3);
    await settle();
    const fresh = three.find((p) => !pods.some((o) => o.metadata?.uid === p.metadata?.uid))!;
    expect(of('io.kcr.pod.restored', fresh.metadata!.name!)).toEqual([]);
    expect(await keys(`disruptions/${NS}/Deployment/pair/`)).toEqual([]);
  });

  it.each([
    ['an owner name that walks out of the layout', (target: string) => ({ namespace: NS, owner: `../../../..${target}` })],
    ['a namespace that walks out of the layout', (target: string) => ({ namespace: `../../../..${target}`, owner: 'db' })],
  ])('%s is refused with 400 and writes nothing', async (_what, hostile) => {
    const target = join(tmpdir(), `kcr-escape-${randomBytes(4).toString('hex')}`);
    const { namespace, owner } = hostile(target);
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: 'db-0',
        namespace,
        uid: 'a1a1a1a1-fake',
        annotations: { 'kcr.io/restore': 'true' },
        ownerReferences: [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: owner, uid: 'x', controller: true }],
      },
      spec: { nodeName: 'node-a', containers: [{ name: 'app', image: 'quay.io/kcr/app:1' }] },
      status: { phase: 'Failed', reason: 'Evicted' },
    };
    const res = await forge('delete', pod);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(/cannot be part of a storage key: it must be a DNS-1123/);
    expect(existsSync(target)).toBe(false);
    expect((await keys('')).filter((k) => k.includes('..'))).toEqual([]);
  });

  it('500/503 from the API server or S3 are answered 503, and restore-pod keeps serving (no unhandled rejection)', async () => {
    await kit.apps.createNamespacedStatefulSet({ namespace: NS, body: statefulSet({ name: 'flaky', annotations: OPT_IN }) });
    const [pod] = await runningPods(kit.kube, NS, 'app=flaky', 1);
    await checkpoint(pod!);
    await settle();
    for (const code of [500, 503]) {
      kit.stack.cluster.failNext({ verb: 'get', path: /\/pods\/flaky-0$/, code, count: 1 });
      expect((await forge('update', { ...pod!, apiVersion: 'v1', kind: 'Pod' })).status).toBe(503);
    }
    kit.stack.cluster.killContainer(NS, 'flaky-0', 'app', { exitCode: 1 });
    const failing = await until('flaky-0 failed', async () => {
      const p = await kit.core.readNamespacedPod({ namespace: NS, name: 'flaky-0' });
      return (p.status?.containerStatuses?.[0]?.restartCount ?? 0) > 0 ? p : undefined;
    });
    for (const code of [500, 503] as const) {
      kit.stack.s3.failNext(1_000, code);
      try {
        // Three at once: the later ones wait for or join the first run (one per pod), and fail as it does.
        const answers = await Promise.all([1, 2, 3].map(() => forge('update', { ...failing, apiVersion: 'v1', kind: 'Pod' })));
        expect(answers.map((r) => r.status)).toEqual([503, 503, 503]);
      } finally {
        kit.stack.s3.failNext(0, code);
      }
    }
    expect((await fetch(`${kit.stack.functions.get('restore-pod')!.url}/healthz`)).status).toBe(200);
    // The broker's retries get through now: flaky-0 is restored once, from its own checkpoint.
    await until('flaky-0 restored', () => of('io.kcr.pod.restored', 'flaky-0')[0]);
    await settle();
    expect(of('io.kcr.pod.restored', 'flaky-0')).toHaveLength(1);
  });

  it("50 concurrent duplicates of a failed pod's update: one restore, nothing failed", async () => {
    await kit.apps.createNamespacedDeployment({ namespace: NS, body: deployment({ name: 'dup', annotations: OPT_IN }) });
    const [pod] = await runningPods(kit.kube, NS, 'app=dup', 1);
    const name = pod!.metadata!.name!;
    await checkpoint(pod!);
    await settle();
    kit.stack.cluster.killContainer(NS, name, 'app', { exitCode: 137 });
    const failing = await until('the container failed', async () => {
      const p = await kit.core.readNamespacedPod({ namespace: NS, name });
      return (p.status?.containerStatuses?.[0]?.restartCount ?? 0) > 0 ? p : undefined;
    });
    const answers = await Promise.all(Array.from({ length: 50 }, () => forge('update', { ...failing, apiVersion: 'v1', kind: 'Pod' })));
    expect(answers.every((r) => r.status === 202)).toBe(true);
    await settle();
    expect(of('io.kcr.pod.restored', name)).toHaveLength(1);
    expect(of('io.kcr.restore.failed', name)).toEqual([]);
  });
});
