// restore-pod end to end on the local stack: the simulated cluster's
// ApiServerSource events go through the local broker to restore-pod, whose
// patch makes the simulated kubelet restore the checkpoint image that
// request-checkpoint → store-artifact → build-image produced.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppsV1Api, CoreV1Api, PatchStrategy, setHeaderOptions, type V1Pod } from '@kubernetes/client-node';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startStack, type Stack } from '../../local/stack.js';
import { events as build } from '../../functions/core/contract/build.js';
import { Kubernetes } from '../../functions/core/kubernetes/kubernetes.js';
import { ARTIFACT_FILES } from '../../functions/core/storage/layout.js';
import { deployment, runningPods, statefulSet } from '../../simulator/workloads.js';
import { optionalBinary } from '../support/binaries.js';

const NS = 'default';
// Opted in, with a schedule that does not fire during the test: checkpoints are taken on demand.
const OPT_IN = { 'kcr.io/checkpoint-restore-schedule': '0 0 1 1 *' };

interface Seen {
  type: string;
  data: Record<string, unknown>;
}

describe('restore-pod on the local stack', () => {
  let stack: Stack;
  let kube: Kubernetes;
  let apps: AppsV1Api;
  let core: CoreV1Api;
  let dir: string;
  const seen: Seen[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kcr-restore-'));
    const registryBinary = optionalBinary('docker-registry');
    stack = await startStack({
      stateDir: dir,
      nodes: ['node-a', 'node-b'],
      ...(registryBinary ? { registryBinary } : {}),
      kubelet: { tickMs: 50, backoffBaseMs: 100, backoffMaxMs: 400, dataSize: 4096 },
      podEvictionTimeoutMs: 300,
      backoffScale: 0.05,
    });
    stack.broker.onDelivery((o) => {
      if (o.kind === 'received') seen.push({ type: o.event.attributes.type ?? '', data: JSON.parse(o.event.data?.toString('utf8') ?? 'null') as Record<string, unknown> });
    });
    kube = new Kubernetes(stack.cluster.kubeConfig);
    apps = stack.cluster.kubeConfig.makeApiClient(AppsV1Api);
    core = stack.cluster.kubeConfig.makeApiClient(CoreV1Api);
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const of = (type: string, pod?: string) => seen.filter((e) => e.type === type && (!pod || e.data.pod === pod));
  async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; events: ${seen.filter((e) => e.type.startsWith('io.kcr')).slice(-15).map((e) => `${e.type} ${String(e.data.pod ?? e.data.name ?? '')}`).join(', ')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const state = (pod: string, c = 'app') => stack.cluster.containerState(NS, pod, c);

  /** Takes a checkpoint of every container of the pod through the whole chain; returns the ids, newest image built. */
  async function checkpoint(pod: V1Pod): Promise<string[]> {
    const name = pod.metadata!.name!;
    const before = of('io.kcr.image.built', name).length;
    await stack.broker.publish(build.checkpointRequested({ namespace: NS, pod: name }, { source: 'test' }));
    const want = before + (pod.spec?.containers.length ?? 1);
    await until(`image built for ${name}`, () => of('io.kcr.image.built', name).length >= want);
    return of('io.kcr.image.built', name).slice(before).map((e) => String(e.data.id));
  }

  async function annotationsOf(pod: string): Promise<Record<string, string>> {
    return (await core.readNamespacedPod({ namespace: NS, name: pod })).metadata?.annotations ?? {};
  }

  it('brings a killed container of a single-replica Deployment back with its checkpointed state', async () => {
    await apps.createNamespacedDeployment({ namespace: NS, body: deployment({ name: 'counter', annotations: OPT_IN }) });
    const [pod] = await runningPods(kube, NS, 'app=counter', 1);
    const name = pod!.metadata!.name!;
    stack.cluster.setContainerState(NS, name, 'app', { counter: 100_000 });
    const [id] = await checkpoint(pod!);

    stack.cluster.killContainer(NS, name, 'app', { exitCode: 137 });
    const restored = await until('pod.restored', () => of('io.kcr.pod.restored', name)[0]);
    expect(restored.data).toMatchObject({ namespace: NS, pod: name, container: 'app', checkpointId: id, strategy: 'in-place' });
    expect(String(restored.data.image)).toMatch(/@sha256:[0-9a-f]{64}$/);
    const s = await until('the restored container', () => (state(name)?.restoredFrom && state(name)?.running ? state(name) : undefined));
    expect(s.counter).toBeGreaterThanOrEqual(100_000);
    expect((await annotationsOf(name))['kcr.io/restored-from-app']).toBe(id);
    const evs = await core.listNamespacedEvent({ namespace: NS, fieldSelector: `involvedObject.name=${name}` });
    expect(evs.items.some((e) => e.reason === 'Restored' && e.message?.includes(id!))).toBe(true);
  });

  it('gives a StatefulSet pod that replaces an evicted one that pod\'s state', async () => {
    await apps.createNamespacedStatefulSet({ namespace: NS, body: statefulSet({ name: 'web', annotations: OPT_IN }) });
    const [pod] = await runningPods(kube, NS, 'app=web', 1);
    stack.cluster.setContainerState(NS, 'web-0', 'app', { counter: 200_000 });
    const [id] = await checkpoint(pod!);
    const oldUid = pod!.metadata!.uid;

    stack.cluster.evictPod(NS, 'web-0', 'The node was low on resource: memory.');
    const restored = await until('replacement restored', () => of('io.kcr.pod.restored', 'web-0')[0]);
    expect(restored.data).toMatchObject({ checkpointId: id, strategy: 'replacement' });
    const fresh = await core.readNamespacedPod({ namespace: NS, name: 'web-0' });
    expect(fresh.metadata?.uid).not.toBe(oldUid);
    const s = await until('restored web-0', () => (state('web-0')?.restoredFrom && state('web-0')?.running ? state('web-0') : undefined));
    expect(s.counter).toBeGreaterThanOrEqual(200_000);
  });

  it('gives the replacement of a Deployment pod lost with its node that pod\'s state, on another node', async () => {
    await apps.createNamespacedDeployment({ namespace: NS, body: deployment({ name: 'lost', annotations: OPT_IN }) });
    const [pod] = await runningPods(kube, NS, 'app=lost', 1);
    const name = pod!.metadata!.name!;
    const node = pod!.spec!.nodeName!;
    stack.cluster.setContainerState(NS, name, 'app', { counter: 300_000 });
    const [id] = await checkpoint(pod!);

    stack.cluster.nodeDown(node);
    try {
      const restored = await until('replacement restored', () => seen.find((e) => e.type === 'io.kcr.pod.restored' && e.data.checkpointId === id));
      const replacement = String(restored.data.pod);
      expect(replacement).not.toBe(name);
      expect(restored.data.strategy).toBe('replacement');
      const moved = await core.readNamespacedPod({ namespace: NS, name: replacement });
      expect(moved.spec?.nodeName).not.toBe(node);
      const s = await until('restored replacement', () => (state(replacement)?.restoredFrom && state(replacement)?.running ? state(replacement) : undefined));
      expect(s.counter).toBeGreaterThanOrEqual(300_000);
    } finally {
      stack.cluster.nodeUp(node);
    }
  });

  it('restores only the killed pod of a 3-replica Deployment, from its own checkpoint', async () => {
    await apps.createNamespacedDeployment({ namespace: NS, body: deployment({ name: 'trio', replicas: 3, annotations: OPT_IN }) });
    const pods = await runningPods(kube, NS, 'app=trio', 3);
    const ids = new Map<string, string>();
    for (const [i, p] of pods.entries()) {
      stack.cluster.setContainerState(NS, p.metadata!.name!, 'app', { counter: (i + 1) * 1_000_000 });
      ids.set(p.metadata!.name!, (await checkpoint(p))[0]!);
    }
    const victim = pods[1]!.metadata!.name!;
    stack.cluster.killContainer(NS, victim, 'app');
    await until('victim restored', () => of('io.kcr.pod.restored', victim)[0]);
    expect(of('io.kcr.pod.restored', victim)[0]!.data.checkpointId).toBe(ids.get(victim));
    const s = await until('restored victim', () => (state(victim)?.restoredFrom && state(victim)?.running ? state(victim) : undefined));
    expect(s.counter).toBeGreaterThanOrEqual(2_000_000);
    expect(s.counter).toBeLessThan(3_000_000);
    for (const p of pods) if (p.metadata!.name !== victim) expect(of('io.kcr.pod.restored', p.metadata!.name!)).toEqual([]);
  });

  it('patches only the failed container of a 2-container pod', async () => {
    await apps.createNamespacedDeployment({ namespace: NS, body: deployment({ name: 'duo', containers: ['app', 'sidecar'], annotations: OPT_IN }) });
    const [pod] = await runningPods(kube, NS, 'app=duo', 1);
    const name = pod!.metadata!.name!;
    await checkpoint(pod!);
    stack.cluster.killContainer(NS, name, 'sidecar');
    await until('sidecar restored', () => of('io.kcr.pod.restored', name)[0]);
    const after = await core.readNamespacedPod({ namespace: NS, name });
    const images = Object.fromEntries(after.spec!.containers.map((c) => [c.name, c.image]));
    expect(images.app).toBe('quay.io/kcr/app:1');
    expect(images.sidecar).toMatch(/@sha256:/);
    expect(of('io.kcr.pod.restored', name).map((e) => e.data.container)).toEqual(['sidecar']);
  });

  it('falls back to the previous checkpoint, then to a cold start with restore.failed, when checkpoints crash on restore', async () => {
    await apps.createNamespacedDeployment({ namespace: NS, body: deployment({ name: 'fragile', annotations: OPT_IN }) });
    const [pod] = await runningPods(kube, NS, 'app=fragile', 1);
    const name = pod!.metadata!.name!;
    stack.cluster.setContainerState(NS, name, 'app', { crashOnRestore: true });
    const [older] = await checkpoint(pod!);
    await new Promise((r) => setTimeout(r, 1100)); // the kubelet names archives by the second
    const [newer] = await checkpoint(pod!);
    expect(newer! > older!).toBe(true);

    stack.cluster.killContainer(NS, name, 'app');
    const failed = await until('restore.failed', () => of('io.kcr.restore.failed', name)[0], 20_000);
    expect(of('io.kcr.pod.restored', name).map((e) => e.data.checkpointId)).toEqual([newer, older]);
    expect(String(failed.data.reason)).toMatch(/2 checkpoints failed to restore.*cold start/);
    const after = await until('cold start', async () => {
      const p = await core.readNamespacedPod({ namespace: NS, name });
      return p.spec!.containers[0]!.image === 'quay.io/kcr/app:1' && state(name)?.running && !state(name)?.restoredFrom ? p : undefined;
    });
    expect(after.spec!.containers[0]!.image).toBe('quay.io/kcr/app:1');
    for (const id of [older, newer]) {
      const prefix = `checkpoints/${NS}/Deployment/fragile/app/${id}/`;
      expect(await stack.store.stat(`${prefix}${ARTIFACT_FILES.bad}`)).toBeDefined();
    }
    // No endless loop: it stays cold-started.
    const restoredCount = of('io.kcr.pod.restored', name).length;
    await new Promise((r) => setTimeout(r, 1500));
    expect(of('io.kcr.pod.restored', name)).toHaveLength(restoredCount);
    expect(of('io.kcr.restore.failed', name)).toHaveLength(1);
  });

  it('does not restore after a scale-down, a rollout or a deletion the user asked for', async () => {
    await apps.createNamespacedDeployment({ namespace: NS, body: deployment({ name: 'calm', replicas: 2, annotations: OPT_IN }) });
    const pods = await runningPods(kube, NS, 'app=calm', 2);
    for (const p of pods) await checkpoint(p);
    const restoredBefore = of('io.kcr.pod.restored').length;
    const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

    await apps.patchNamespacedDeployment({ namespace: NS, name: 'calm', body: { spec: { replicas: 1 } } }, merge);
    await runningPods(kube, NS, 'app=calm', 1);
    await core.deleteNamespacedPod({ namespace: NS, name: (await runningPods(kube, NS, 'app=calm', 1))[0]!.metadata!.name! });
    await until('replacement after deletion', async () => ((await runningPods(kube, NS, 'app=calm', 1).catch(() => [])).length === 1 ? true : undefined));
    await apps.patchNamespacedDeployment({ namespace: NS, name: 'calm', body: { spec: { template: { spec: { containers: [{ name: 'app', image: 'quay.io/kcr/app:2' }] } } } } }, setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch));
    await until('rollout done', async () => {
      const running = await kube.listPods(NS, 'app=calm');
      return running.length === 1 && running[0]!.spec!.containers[0]!.image === 'quay.io/kcr/app:2' && running[0]!.status?.phase === 'Running' ? true : undefined;
    });
    await stack.broker.idle();
    await new Promise((r) => setTimeout(r, 500));
    await stack.broker.idle();
    expect(of('io.kcr.pod.restored').length).toBe(restoredBefore);
    const records: string[] = [];
    for await (const o of stack.store.list(`disruptions/${NS}/Deployment/calm/`)) records.push(o.key);
    expect(records).toEqual([]);
  });
});
