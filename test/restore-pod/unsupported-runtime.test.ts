// restore-pod on the local stack when the node's runtime cannot restore: the
// simulated node reports containerd 2.4 (set through the API server's
// nodes/status, as a kubelet would report it), so restore-pod patches nothing
// and says why; once the node reports a runtime that restores, it restores.
import { describe, expect, it } from 'vitest';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { deployment, runningPods } from '../../simulator/workloads.js';
import { NS, OPT_IN, TEST_TIMINGS, useLocalStack } from '../support/local-stack.js';

describe('restore-pod on a node whose runtime cannot restore', () => {
  const kit = useLocalStack('runtime', { ...TEST_TIMINGS, nodes: ['node-a'] });
  const { of, until, settle } = kit;

  async function reportRuntime(node: string, containerRuntimeVersion: string): Promise<void> {
    await kit.core.patchNodeStatus({ name: node, body: { status: { nodeInfo: { containerRuntimeVersion } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    expect((await kit.core.readNode({ name: node })).status?.nodeInfo?.containerRuntimeVersion).toBe(containerRuntimeVersion);
  }
  async function restarted(name: string, count: number) {
    return until(`${name} restarted ${count} times`, async () => {
      const p = await kit.core.readNamespacedPod({ namespace: NS, name });
      const cs = p.status?.containerStatuses?.[0];
      return (cs?.restartCount ?? 0) >= count && cs?.state?.running ? p : undefined;
    });
  }

  it('patches nothing on containerd 2.4, says why, and restores once the node reports CRI-O', async () => {
    expect((await kit.core.readNode({ name: 'node-a' })).status?.nodeInfo?.containerRuntimeVersion).toMatch(/^cri-o:\/\//);
    await kit.apps.createNamespacedDeployment({ namespace: NS, body: deployment({ name: 'legacy', annotations: OPT_IN }) });
    const [pod] = await runningPods(kit.kube, NS, 'app=legacy', 1);
    const name = pod!.metadata!.name!;
    const built = (await kit.checkpoint(name))[0]!;
    await settle();

    await reportRuntime('node-a', 'containerd://2.4.0');
    kit.stack.cluster.killContainer(NS, name, 'app', { exitCode: 137 });
    const failed = await until('restore.failed', () => of('io.kcr.restore.failed', name)[0]);
    expect(failed.data).toMatchObject({ namespace: NS, pod: name, container: 'app', checkpointId: built.data.id, stage: 'restore' });
    expect(String(failed.data.reason)).toMatch(/on node node-a: containerd:\/\/2\.4\.0 cannot restore checkpoints: containerd 2\.4 removed restore/);
    const after = await restarted(name, 1);
    await settle();
    expect(after.spec?.containers[0]?.image).toBe('quay.io/kcr/app:1');
    expect(Object.keys(after.metadata?.annotations ?? {}).filter((k) => k.startsWith('kcr.io/'))).toEqual([]);
    expect(of('io.kcr.pod.restored', name)).toEqual([]);
    expect(of('io.kcr.restore.failed', name)).toHaveLength(1);
    const evs = await kit.core.listNamespacedEvent({ namespace: NS, fieldSelector: `involvedObject.name=${name}` });
    const unsupported = evs.items.filter((e) => e.reason === 'RestoreUnsupported');
    expect(unsupported).toHaveLength(1);
    expect(unsupported[0]).toMatchObject({ type: 'Warning', involvedObject: { fieldPath: 'spec.containers{app}' } });
    expect(unsupported[0]!.message).toContain('containerd://2.4.0');

    await reportRuntime('node-a', 'cri-o://1.31.0');
    kit.stack.cluster.killContainer(NS, name, 'app', { exitCode: 137 });
    const restored = await until('pod.restored', () => of('io.kcr.pod.restored', name)[0]);
    expect(restored.data).toMatchObject({ checkpointId: built.data.id, strategy: 'in-place' });
  });
});
