// `kcr drain NODE` on the local stack: an opted-in StatefulSet pod is
// checkpointed, the node cordoned, the pod evicted through the eviction API
// and its replacement restored on the other node with its state; a pod a
// PodDisruptionBudget protects is not evicted, and the summary says so (exit
// 1). The simulator's eviction follows the API server's
// (kubernetes pkg/registry/core/pod/storage/eviction.go: 429 TooManyRequests
// when the budget has no disruption to spare, the DisruptionTarget condition
// with reason EvictionByEvictionAPI before the delete).
import { PolicyV1Api } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { runCli } from '../../cli/run.js';
import { deployment, runningPods, statefulSet } from '../../simulator/workloads.js';
import { NS, OPT_IN, TEST_TIMINGS, useLocalStack } from '../support/local-stack.js';
import type { Moved } from '../../cli/drain.js';

describe('kcr drain', () => {
  const kit = useLocalStack('drain', { ...TEST_TIMINGS, nodes: ['node-a', 'node-b'] });

  it('moves a StatefulSet pod to another node with its state, and leaves a pod its budget protects', async () => {
    await kit.apps.createNamespacedStatefulSet({ namespace: NS, body: statefulSet({ name: 'web', annotations: OPT_IN }) });
    const [pod] = await runningPods(kit.kube, NS, 'app=web', 1);
    const node = pod!.spec!.nodeName!;
    const other = node === 'node-a' ? 'node-b' : 'node-a';
    kit.stack.cluster.setContainerState(NS, 'web-0', 'app', { counter: 300_000 });
    // On the same node, guarded by a budget that allows no disruption.
    const guarded = deployment({ name: 'guarded' });
    guarded.spec!.template.spec!.nodeName = node;
    await kit.apps.createNamespacedDeployment({ namespace: NS, body: guarded });
    await runningPods(kit.kube, NS, 'app=guarded', 1);
    await kit.stack.cluster.kubeConfig
      .makeApiClient(PolicyV1Api)
      .createNamespacedPodDisruptionBudget({ namespace: NS, body: { metadata: { name: 'guarded' }, spec: { minAvailable: 1, selector: { matchLabels: { app: 'guarded' } } } } });

    let out = '';
    let err = '';
    const code = await runCli(['drain', node, '--timeout', '15s', '-o', 'json'], {
      stdout: { write: (s: string) => (out += s) },
      stderr: { write: (s: string) => (err += s) },
      env: { KUBECONFIG: kit.stack.cluster.kubeconfigPath },
    });
    const report = JSON.parse(out) as { node: string; pods: Moved[] };
    const web = report.pods.find((p) => p.pod === 'web-0');
    expect(web).toMatchObject({ result: 'moved', container: 'app', replacement: { pod: 'web-0', node: other } });
    const guardedOutcome = report.pods.find((p) => p.pod.startsWith('guarded-'));
    expect(guardedOutcome).toMatchObject({ result: 'not-evicted', message: expect.stringContaining('disruption budget') });
    expect(code).toBe(1);
    expect(err).toContain('did not move');

    const s = kit.stack.cluster.containerState(NS, 'web-0', 'app');
    // Restored from the image of the checkpoint drain took, by digest.
    expect(s?.restoredFrom).toMatch(/@sha256:[0-9a-f]{64}$/);
    expect(s?.restoredFrom).toBe((kit.of('io.kcr.image.built', 'web-0').at(-1)?.data.image as { reference?: string } | undefined)?.reference);
    expect(s!.counter).toBeGreaterThanOrEqual(300_000);
    expect((await kit.core.readNode({ name: node })).spec?.unschedulable).toBe(true);
    // The checkpoint it moved with is the one drain took.
    expect(kit.of('io.kcr.checkpoint.requested').map((e) => e.data)).toContainEqual({ namespace: NS, pod: 'web-0' });
    expect(web?.checkpoint).toBe(kit.of('io.kcr.image.built', 'web-0').at(-1)?.data.id);
  }, 60_000);
});
