// restore-pod end to end on the local stack: the simulated cluster's
// ApiServerSource events go through the local broker to restore-pod, whose
// patch makes the simulated kubelet restore the checkpoint image that
// request-checkpoint → store-artifact → build-image produced.
import { describe, expect, it } from 'vitest';
import { PatchStrategy, setHeaderOptions, type V1Pod } from '@kubernetes/client-node';
import { ARTIFACT_FILES } from '../../functions/core/storage/layout.js';
import { deployment, runningPods, statefulSet } from '../../simulator/workloads.js';
import { NS, OPT_IN, TEST_TIMINGS, useLocalStack } from '../support/local-stack.js';

describe('restore-pod on the local stack', () => {
  const kit = useLocalStack('restore', { ...TEST_TIMINGS, nodes: ['node-a', 'node-b'], podEvictionTimeoutMs: 300 });
  const { seen, of, until, settle } = kit;
  const state = (pod: string, c = 'app') => kit.stack.cluster.containerState(NS, pod, c);

  /** Takes a checkpoint of every container of the pod through the whole chain; returns the ids, in the order their images were built. */
  async function checkpoint(pod: V1Pod): Promise<string[]> {
    const built = await kit.checkpoint(pod.metadata!.name!, pod.spec?.containers.length ?? 1);
    return built.map((e) => String(e.data.id));
  }

  async function annotationsOf(pod: string): Promise<Record<string, string>> {
    return (await kit.core.readNamespacedPod({ namespace: NS, name: pod })).metadata?.annotations ?? {};
  }

  it('brings a killed container of a single-replica Deployment back with its checkpointed state', async () => {
    await kit.apps.createNamespacedDeployment({ namespace: NS, body: deployment({ name: 'counter', annotations: OPT_IN }) });
    const [pod] = await runningPods(kit.kube, NS, 'app=counter', 1);
    const name = pod!.metadata!.name!;
    kit.stack.cluster.setContainerState(NS, name, 'app', { counter: 100_000 });
    const [id] = await checkpoint(pod!);

    kit.stack.cluster.killContainer(NS, name, 'app', { exitCode: 137 });
    const restored = await until('pod.restored', () => of('io.kcr.pod.restored', name)[0]);
    expect(restored.data).toMatchObject({ namespace: NS, pod: name, container: 'app', checkpointId: id, strategy: 'in-place' });
    expect(String(restored.data.image)).toMatch(/@sha256:[0-9a-f]{64}$/);
    const s = await until('the restored container', () => (state(name)?.restoredFrom && state(name)?.running ? state(name) : undefined));
    expect(s.counter).toBeGreaterThanOrEqual(100_000);
    expect((await annotationsOf(name))['kcr.io/restored-from-app']).toBe(id);
    const evs = await kit.core.listNamespacedEvent({ namespace: NS, fieldSelector: `involvedObject.name=${name}` });
    expect(evs.items.some((e) => e.reason === 'Restored' && e.message?.includes(id!))).toBe(true);
  });

  it("gives a StatefulSet pod that replaces an evicted one that pod's state", async () => {
    await kit.apps.createNamespacedStatefulSet({ namespace: NS, body: statefulSet({ name: 'web', annotations: OPT_IN }) });
    const [pod] = await runningPods(kit.kube, NS, 'app=web', 1);
    kit.stack.cluster.setContainerState(NS, 'web-0', 'app', { counter: 200_000 });
    const [id] = await checkpoint(pod!);
    const oldUid = pod!.metadata!.uid;

    kit.stack.cluster.evictPod(NS, 'web-0', 'The node was low on resource: memory.');
    const restored = await until('replacement restored', () => of('io.kcr.pod.restored', 'web-0')[0]);
    expect(restored.data).toMatchObject({ checkpointId: id, strategy: 'replacement' });
    const fresh = await kit.core.readNamespacedPod({ namespace: NS, name: 'web-0' });
    expect(fresh.metadata?.uid).not.toBe(oldUid);
    const s = await until('restored web-0', () => (state('web-0')?.restoredFrom && state('web-0')?.running ? state('web-0') : undefined));
    expect(s.counter).toBeGreaterThanOrEqual(200_000);
  });

  it("gives the replacement of a Deployment pod lost with its node that pod's state, on another node", async () => {
    await kit.apps.createNamespacedDeployment({ namespace: NS, body: deployment({ name: 'lost', annotations: OPT_IN }) });
    const [pod] = await runningPods(kit.kube, NS, 'app=lost', 1);
    const name = pod!.metadata!.name!;
    const node = pod!.spec!.nodeName!;
    kit.stack.cluster.setContainerState(NS, name, 'app', { counter: 300_000 });
    const [id] = await checkpoint(pod!);

    kit.stack.cluster.nodeDown(node);
    try {
      const restored = await until('replacement restored', () => seen.find((e) => e.type === 'io.kcr.pod.restored' && e.data.checkpointId === id));
      const replacement = String(restored.data.pod);
      expect(replacement).not.toBe(name);
      expect(restored.data.strategy).toBe('replacement');
      const moved = await kit.core.readNamespacedPod({ namespace: NS, name: replacement });
      expect(moved.spec?.nodeName).not.toBe(node);
      const s = await until('restored replacement', () => (state(replacement)?.restoredFrom && state(replacement)?.running ? state(replacement) : undefined));
      expect(s.counter).toBeGreaterThanOrEqual(300_000);
    } finally {
      kit.stack.cluster.nodeUp(node);
    }
  });

  it('restores only the killed pod of a 3-replica Deployment, from its own checkpoint', async () => {
    await kit.apps.createNamespacedDeployment({ namespace: NS, body: deployment({ name: 'trio', replicas: 3, annotations: OPT_IN }) });
    const pods = await runningPods(kit.kube, NS, 'app=trio', 3);
    const ids = new Map<string, string>();
    for (const [i, p] of pods.entries()) {
      kit.stack.cluster.setContainerState(NS, p.metadata!.name!, 'app', { counter: (i + 1) * 1_000_000 });
      ids.set(p.metadata!.name!, (await checkpoint(p))[0]!);
    }
    const victim = pods[1]!.metadata!.name!;
    kit.stack.cluster.killContainer(NS, victim, 'app');
    await until('victim restored', () => of('io.kcr.pod.restored', victim)[0]);
    expect(of('io.kcr.pod.restored', victim)[0]!.data.checkpointId).toBe(ids.get(victim));
    const s = await until('restored victim', () => (state(victim)?.restoredFrom && state(victim)?.running ? state(victim) : undefined));
    expect(s.counter).toBeGreaterThanOrEqual(2_000_000);
    expect(s.counter).toBeLessThan(3_000_000);
    for (const p of pods) if (p.metadata!.name !== victim) expect(of('io.kcr.pod.restored', p.metadata!.name!)).toEqual([]);
  });

  it('patches only the failed container of a 2-container pod', async () => {
    await kit.apps.createNamespacedDeployment({ namespace: NS, body: deployment({ name: 'duo', containers: ['app', 'sidecar'], annotations: OPT_IN }) });
    const [pod] = await runningPods(kit.kube, NS, 'app=duo', 1);
    const name = pod!.metadata!.name!;
    await checkpoint(pod!);
    kit.stack.cluster.killContainer(NS, name, 'sidecar');
    await until('sidecar restored', () => of('io.kcr.pod.restored', name)[0]);
    const after = await kit.core.readNamespacedPod({ namespace: NS, name });
    const images = Object.fromEntries(after.spec!.containers.map((c) => [c.name, c.image]));
    expect(images.app).toBe('quay.io/kcr/app:1');
    expect(images.sidecar).toMatch(/@sha256:/);
    expect(of('io.kcr.pod.restored', name).map((e) => e.data.container)).toEqual(['sidecar']);
  });

  it('falls back to the previous checkpoint, then to a cold start with restore.failed, when checkpoints crash on restore', async () => {
    await kit.apps.createNamespacedDeployment({ namespace: NS, body: deployment({ name: 'fragile', annotations: OPT_IN }) });
    const [pod] = await runningPods(kit.kube, NS, 'app=fragile', 1);
    const name = pod!.metadata!.name!;
    kit.stack.cluster.setContainerState(NS, name, 'app', { crashOnRestore: true });
    // The second checkpoint waits for the next second: the kubelet names archives by the second.
    const [older] = await checkpoint(pod!);
    const [newer] = await checkpoint(pod!);
    expect(newer! > older!).toBe(true);

    kit.stack.cluster.killContainer(NS, name, 'app');
    const failed = await until('restore.failed', () => of('io.kcr.restore.failed', name)[0], 20_000);
    expect(of('io.kcr.pod.restored', name).map((e) => e.data.checkpointId)).toEqual([newer, older]);
    expect(String(failed.data.reason)).toMatch(/2 checkpoints failed to restore.*cold start/);
    const after = await until('cold start', async () => {
      const p = await kit.core.readNamespacedPod({ namespace: NS, name });
      return p.spec!.containers[0]!.image === 'quay.io/kcr/app:1' && state(name)?.running && !state(name)?.restoredFrom ? p : undefined;
    });
    expect(after.spec!.containers[0]!.image).toBe('quay.io/kcr/app:1');
    for (const id of [older, newer]) {
      const prefix = `checkpoints/${NS}/Deployment/fragile/app/${id}/`;
      expect(await kit.stack.store.stat(`${prefix}${ARTIFACT_FILES.bad}`)).toBeDefined();
    }
    // No endless loop: it stays cold-started. settle waits until the container runs and every
    // pod event since has been handled; a restore again would have been announced by then.
    const restoredCount = of('io.kcr.pod.restored', name).length;
    await settle();
    expect(of('io.kcr.pod.restored', name)).toHaveLength(restoredCount);
    expect(of('io.kcr.restore.failed', name)).toHaveLength(1);
  });

  it('does not restore after a scale-down, a rollout or a deletion the user asked for', async () => {
    await kit.apps.createNamespacedDeployment({ namespace: NS, body: deployment({ name: 'calm', replicas: 2, annotations: OPT_IN }) });
    const pods = await runningPods(kit.kube, NS, 'app=calm', 2);
    for (const p of pods) await checkpoint(p);
    const restoredBefore = of('io.kcr.pod.restored').length;
    const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

    await kit.apps.patchNamespacedDeployment({ namespace: NS, name: 'calm', body: { spec: { replicas: 1 } } }, merge);
    await runningPods(kit.kube, NS, 'app=calm', 1);
    await kit.core.deleteNamespacedPod({ namespace: NS, name: (await runningPods(kit.kube, NS, 'app=calm', 1))[0]!.metadata!.name! });
    await until('replacement after deletion', async () => ((await runningPods(kit.kube, NS, 'app=calm', 1).catch(() => [])).length === 1 ? true : undefined));
    await kit.apps.patchNamespacedDeployment(
      { namespace: NS, name: 'calm', body: { spec: { template: { spec: { containers: [{ name: 'app', image: 'quay.io/kcr/app:2' }] } } } } },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
    );
    await until('rollout done', async () => {
      const running = await kit.kube.listPods(NS, 'app=calm');
      return running.length === 1 && running[0]!.spec!.containers[0]!.image === 'quay.io/kcr/app:2' && running[0]!.status?.phase === 'Running' ? true : undefined;
    });
    // A wrong restore would follow the deleted pods' watch events: settle waits until they are gone and handled.
    await settle();
    expect(of('io.kcr.pod.restored').length).toBe(restoredBefore);
    expect(await kit.keys(`disruptions/${NS}/Deployment/calm/`)).toEqual([]);
  });
});
