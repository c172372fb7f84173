// restore-pod on the local stack when the node's runtime cannot restore: the
// simulated node reports containerd 2.4 (set through the API server's
// nodes/status, as a kubelet would report it), so restore-pod patches nothing
// and says why; once the node reports a runtime that restores, it restores.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppsV1Api, CoreV1Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startStack, type Stack } from '../../local/stack.js';
import { events as build } from '../../functions/core/contract/build.js';
import { Kubernetes } from '../../functions/core/kubernetes/kubernetes.js';
import { deployment, runningPods } from '../../simulator/workloads.js';
import { optionalBinary } from '../support/binaries.js';

const NS = 'default';
const OPT_IN = { 'kcr.io/checkpoint-restore-schedule': '0 0 1 1 *' };

interface Seen {
  type: string;
  data: Record<string, unknown>;
}

describe('restore-pod on a node whose runtime cannot restore', () => {
  let stack: Stack;
  let kube: Kubernetes;
  let apps: AppsV1Api;
  let core: CoreV1Api;
  let dir: string;
  const seen: Seen[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kcr-runtime-'));
    const registryBinary = optionalBinary('docker-registry');
    stack = await startStack({
      stateDir: dir,
      nodes: ['node-a'],
      ...(registryBinary ? { registryBinary } : {}),
      kubelet: { tickMs: 50, backoffBaseMs: 100, backoffMaxMs: 400, dataSize: 4096 },
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

  const of = (type: string, pod: string) => seen.filter((e) => e.type === type && e.data.pod === pod);
  async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  async function settle(): Promise<void> {
    await stack.broker.idle();
    await new Promise((r) => setTimeout(r, 300));
    await stack.broker.idle();
  }
  async function reportRuntime(node: string, containerRuntimeVersion: string): Promise<void> {
    await core.patchNodeStatus({ name: node, body: { status: { nodeInfo: { containerRuntimeVersion } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    expect((await core.readNode({ name: node })).status?.nodeInfo?.containerRuntimeVersion).toBe(containerRuntimeVersion);
  }
  async function restarted(name: string, count: number) {
    return until(`${name} restarted ${count} times`, async () => {
      const p = await core.readNamespacedPod({ namespace: NS, name });
      const cs = p.status?.containerStatuses?.[0];
      return (cs?.restartCount ?? 0) >= count && cs?.state?.running ? p : undefined;
    });
  }

  it('patches nothing on containerd 2.4, says why, and restores once the node reports CRI-O', async () => {
    expect((await core.readNode({ name: 'node-a' })).status?.nodeInfo?.containerRuntimeVersion).toMatch(/^cri-o:\/\//);
    await apps.createNamespacedDeployment({ namespace: NS, body: deployment({ name: 'legacy', annotations: OPT_IN }) });
    const [pod] = await runningPods(kube, NS, 'app=legacy', 1);
    const name = pod!.metadata!.name!;
    await stack.broker.publish(build.checkpointRequested({ namespace: NS, pod: name }, { source: 'test' }));
    const built = await until('image built', () => of('io.kcr.image.built', name)[0]);
    await settle();

    await reportRuntime('node-a', 'containerd://2.4.0');
    stack.cluster.killContainer(NS, name, 'app', { exitCode: 137 });
    const failed = await until('restore.failed', () => of('io.kcr.restore.failed', name)[0]);
    expect(failed.data).toMatchObject({ namespace: NS, pod: name, container: 'app', checkpointId: built.data.id, stage: 'restore' });
    expect(String(failed.data.reason)).toMatch(/on node node-a: containerd:\/\/2\.4\.0 cannot restore checkpoints: containerd 2\.4 removed restore/);
    const after = await restarted(name, 1);
    await settle();
    expect(after.spec?.containers[0]?.image).toBe('quay.io/kcr/app:1');
    expect(Object.keys(after.metadata?.annotations ?? {}).filter((k) => k.startsWith('kcr.io/'))).toEqual([]);
    expect(of('io.kcr.pod.restored', name)).toEqual([]);
    expect(of('io.kcr.restore.failed', name)).toHaveLength(1);
    const evs = await core.listNamespacedEvent({ namespace: NS, fieldSelector: `involvedObject.name=${name}` });
    const unsupported = evs.items.filter((e) => e.reason === 'RestoreUnsupported');
    expect(unsupported).toHaveLength(1);
    expect(unsupported[0]).toMatchObject({ type: 'Warning', involvedObject: { fieldPath: 'spec.containers{app}' } });
    expect(unsupported[0]!.message).toContain('containerd://2.4.0');

    await reportRuntime('node-a', 'cri-o://1.31.0');
    stack.cluster.killContainer(NS, name, 'app', { exitCode: 137 });
    const restored = await until('pod.restored', () => of('io.kcr.pod.restored', name)[0]);
    expect(restored.data).toMatchObject({ checkpointId: built.data.id, strategy: 'in-place' });
  });
});
