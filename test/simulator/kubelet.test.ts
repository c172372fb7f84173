// The simulated kubelet's checkpoint API (through the API server's node proxy), the archive
// it writes, and restoring container state from a checkpoint image.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CoreV1Api, KubeConfig, PatchStrategy, setHeaderOptions, type V1Pod } from '@kubernetes/client-node';
import { decodePages, readTar, startSimulatedCluster, type SimulatedCluster } from '../../simulator/index.js';
import { optionalBinary } from '../support/binaries.js';
import { apiError, writeCheckpointImageLayout } from './helpers.js';

let cluster: SimulatedCluster;
let core: CoreV1Api;
const layoutDir = mkdtempSync(join(tmpdir(), 'kcr-sim-layout-'));

beforeAll(async () => {
  cluster = await startSimulatedCluster({
    kubelet: { tickMs: 20, backoffBaseMs: 100, backoffMaxMs: 400, imagePullBackoffMs: 100, dataSize: 16 * 1024 },
    imageSources: { 'kcr.local': { kind: 'layout', dir: layoutDir } },
  });
  core = cluster.kubeConfig.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: 'ck' } } });
  await core.createNamespacedPod({ namespace: 'ck', body: { metadata: { name: 'counter' }, spec: { containers: [{ name: 'counter', image: 'quay.io/kcr/counter:1' }] } } });
  await running('counter');
});

afterAll(async () => {
  await cluster?.stop();
});

async function running(name: string): Promise<V1Pod> {
  return cluster.waitFor(
    async () => {
      const p = await core.readNamespacedPod({ namespace: 'ck', name });
      return p.status?.containerStatuses?.every((c) => c.state?.running) && p.status.phase === 'Running' ? p : undefined;
    },
    { description: `pod ${name} running` },
  );
}

/** POST through the API server with the real path shape (slashes, not %2F). */
async function checkpointRaw(node: string, pod: string, container: string, token = cluster.token): Promise<{ status: number; text: string; contentType: string }> {
  const res = await fetch(`${cluster.url}/api/v1/nodes/${node}/proxy/checkpoint/ck/${pod}/${container}?timeout=30`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}` },
  });
  return { status: res.status, text: await res.text(), contentType: res.headers.get('content-type') ?? '' };
}

async function nodeOf(pod: string): Promise<string> {
  return (await core.readNamespacedPod({ namespace: 'ck', name: pod })).spec!.nodeName!;
}

describe('kubelet checkpoint API', () => {
  it('200: writes a CRI-O layout archive (mode 0600) into the node dir and answers with the kubelet path', async () => {
    const node = await nodeOf('counter');
    await cluster.waitFor(() => (cluster.containerState('ck', 'counter', 'counter')?.counter ?? 0) >= 3);
    // client-node percent-encodes the path parameter (checkpoint%2Fck%2F...); like the real
    // API server (Go decodes URL.Path before routing), the simulator routes it as slashes.
    const raw = (await core.connectPostNodeProxyWithPath({ name: node, path: 'checkpoint/ck/counter/counter' })) as unknown;
    const body = (typeof raw === 'string' ? JSON.parse(raw) : raw) as { items: string[] };
    expect(body.items).toHaveLength(1);
    const kubeletPath = body.items[0]!;
    expect(kubeletPath).toMatch(/^\/var\/lib\/kubelet\/checkpoints\/checkpoint-counter_ck-counter-\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z\.tar$/);
    const file = join(cluster.checkpointDir(node), basename(kubeletPath));
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const other = cluster.nodes.find((n) => n !== node)!;
    expect(readdirSync(cluster.checkpointDir(other))).toEqual([]);

    const archive = readFileSync(file);
    const files = await readTar(archive);
    for (const f of [
      'config.dump',
      'spec.dump',
      'checkpoint/inventory.img',
      'checkpoint/core-1.img',
      'checkpoint/pagemap-1.img',
      'checkpoint/pages-1.img',
      'rootfs-diff.tar',
      'deleted.files',
      'bind.mounts',
      'stats-dump',
      'dump.log',
    ]) {
      expect(files.has(f), f).toBe(true);
    }
    const config = JSON.parse(files.get('config.dump')!.toString()) as Record<string, string>;
    expect(Object.keys(config)).toEqual(expect.arrayContaining(['id', 'name', 'rootfsImage', 'rootfsImageRef', 'rootfsImageName', 'runtime', 'createdTime', 'checkpointedTime']));
    expect(config.rootfsImageName).toBe('quay.io/kcr/counter:1');
    const spec = JSON.parse(files.get('spec.dump')!.toString()) as { annotations: Record<string, string> };
    const pod = await core.readNamespacedPod({ namespace: 'ck', name: 'counter' });
    expect(spec.annotations).toMatchObject({
      'io.container.manager': 'cri-o',
      'io.kubernetes.pod.name': 'counter',
      'io.kubernetes.pod.namespace': 'ck',
      'io.kubernetes.container.name': 'counter',
      'io.kubernetes.pod.uid': pod.metadata!.uid,
    });
    // CRIU images start with their magic numbers (little endian).
    expect(files.get('checkpoint/inventory.img')!.readUInt32LE(4)).toBe(0x58313116);
    expect(files.get('stats-dump')!.readUInt32LE(0)).toBe(0x55105940);
    expect(files.get('stats-dump')!.readUInt32LE(4)).toBe(0x57093306);
    const { header, state } = decodePages(files.get('checkpoint/pages-1.img')!);
    expect(header).toMatchObject({ namespace: 'ck', pod: 'counter', container: 'counter' });
    expect(state.counter).toBeGreaterThanOrEqual(3);
    expect(state.data).toHaveLength(16 * 1024);

    // Same path shape as the real kubelet, posted with literal slashes.
    const again = await checkpointRaw(node, 'counter', 'counter');
    expect(again.status).toBe(200);
    expect(again.contentType).toContain('application/json');
  });

  it('404 when the feature gate is off or the pod/container is unknown on that node', async () => {
    const node = await nodeOf('counter');
    const other = cluster.nodes.find((n) => n !== node)!;
    const wrongNode = await checkpointRaw(other, 'counter', 'counter');
    expect(wrongNode).toMatchObject({ status: 404, text: 'pod does not exist' });
    const wrongContainer = await checkpointRaw(node, 'counter', 'nope');
    expect(wrongContainer).toMatchObject({ status: 404, text: 'container nope does not exist' });
    cluster.setCheckpointFeatureGate(node, false);
    const gateOff = await apiError(() => core.connectPostNodeProxyWithPath({ name: node, path: 'checkpoint/ck/counter/counter' }));
    expect(gateOff.code).toBe(404);
    expect(gateOff.raw).toBe('404 page not found\n');
    cluster.setCheckpointFeatureGate(node, true);
  });

  it('500 with the runtime error text when the runtime fails', async () => {
    const node = await nodeOf('counter');
    cluster.failCheckpoints(node, { pod: 'counter', count: 1 });
    const failed = await checkpointRaw(node, 'counter', 'counter');
    expect(failed.status).toBe(500);
    expect(failed.text).toMatch(/^checkpointing of ck\/counter\/counter failed \(rpc error: code = Unknown desc = .*criu.*\)$/);
    expect((await checkpointRaw(node, 'counter', 'counter')).status).toBe(200);
  });

  it('403 when the caller lacks nodes/proxy, and when the API server lacks nodes/checkpoint; 401 without a token', async () => {
    const node = await nodeOf('counter');
    const undo = cluster.denyPermission({ verb: 'create', resource: 'nodes/proxy' });
    const callerDenied = await apiError(() => core.connectPostNodeProxyWithPath({ name: node, path: 'checkpoint/ck/counter/counter' }));
    expect(callerDenied.code).toBe(403);
    expect(callerDenied.body).toMatchObject({
      kind: 'Status',
      reason: 'Forbidden',
      message: `nodes "${node}" is forbidden: User "kcr" cannot create resource "nodes/proxy" in API group "" at the cluster scope`,
    });
    undo();

    cluster.setApiServerKubeletCheckpointPermission(false);
    const kubeletDenied = await checkpointRaw(node, 'counter', 'counter');
    expect(kubeletDenied.status).toBe(403);
    expect(kubeletDenied.text).toBe('Forbidden (user=kube-apiserver-kubelet-client, verb=create, resource=nodes, subresource=checkpoint)');
    cluster.setApiServerKubeletCheckpointPermission(true);

    const anonymous = await fetch(`${cluster.url}/api/v1/nodes/${node}/proxy/checkpoint/ck/counter/counter`, { method: 'POST' });
    expect(anonymous.status).toBe(401);
    const kc = new KubeConfig();
    kc.loadFromFile(cluster.kubeconfigPath);
    kc.users[0] = { ...kc.users[0]!, token: 'not-a-token' };
    const unauth = await apiError(() => kc.makeApiClient(CoreV1Api).connectPostNodeProxyWithPath({ name: node, path: 'checkpoint/ck/counter/counter' }));
    expect(unauth.code).toBe(401);
  });

  it('the archive opens with checkpointctl show (skips when checkpointctl is not installed)', async (ctx) => {
    const bin = optionalBinary('checkpointctl');
    if (!bin) {
      ctx.skip();
      return;
    }
    const node = await nodeOf('counter');
    const res = await checkpointRaw(node, 'counter', 'counter');
    const file = join(cluster.checkpointDir(node), basename((JSON.parse(res.text) as { items: string[] }).items[0]!));
    const out = execFileSync(bin, ['show', file], { encoding: 'utf8' });
    expect(out).toContain('counter');
    expect(out).toContain('quay.io/kcr/counter:1');
    expect(out).toContain('CRI-O');
    const stats = execFileSync(bin, ['inspect', '--stats', file], { encoding: 'utf8' });
    expect(stats).toContain('CRIU dump statistics');
    expect(stats).toMatch(/Pages written: \d+/);
  });
});

describe('restore from a checkpoint image', () => {
  async function checkpointNow(pod: string, container: string): Promise<Buffer> {
    const node = await nodeOf(pod);
    const res = await checkpointRaw(node, pod, container);
    expect(res.status).toBe(200);
    return readFileSync(join(cluster.checkpointDir(node), basename((JSON.parse(res.text) as { items: string[] }).items[0]!)));
  }

  it('patching the container image to a checkpoint image restores counter, data and flags', async () => {
    await core.createNamespacedPod({ namespace: 'ck', body: { metadata: { name: 'src' }, spec: { containers: [{ name: 'app', image: 'quay.io/kcr/counter:1' }] } } });
    await running('src');
    const marker = Buffer.alloc(16 * 1024, 7);
    cluster.setContainerState('ck', 'src', 'app', { counter: 1000, data: marker, flags: { mode: 'blue' } });
    const archive = await checkpointNow('src', 'app');
    // kcr.local is mapped to layoutDir: the kubelet reads the image from there.
    const { manifestDigest } = writeCheckpointImageLayout(layoutDir, { archive, containerName: 'app', tag: 'v1' });
    const image = `kcr.local/ck/src@${manifestDigest}`;

    await core.createNamespacedPod({ namespace: 'ck', body: { metadata: { name: 'dst' }, spec: { containers: [{ name: 'app', image: 'quay.io/kcr/counter:1' }] } } });
    await running('dst');
    const before = cluster.containerState('ck', 'dst', 'app')!;
    expect(before.counter).toBeLessThan(1000);
    expect(before.restoredFrom).toBeUndefined();

    await core.patchNamespacedPod({ namespace: 'ck', name: 'dst', body: { spec: { containers: [{ name: 'app', image }] } } }, setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch));
    const pod = await cluster.waitFor(
      async () => {
        const p = await core.readNamespacedPod({ namespace: 'ck', name: 'dst' });
        const cs = p.status!.containerStatuses![0]!;
        return cs.restartCount === 1 && cs.state?.running && cs.image === image ? p : undefined;
      },
      { description: 'dst restored' },
    );
    expect(pod.status!.containerStatuses![0]!.imageID).toBe(`kcr.local/ck/src@${manifestDigest}`);
    const after = cluster.containerState('ck', 'dst', 'app')!;
    expect(after.restoredFrom).toBe(image);
    expect(after.counter).toBeGreaterThanOrEqual(1000);
    expect(after.flags).toEqual({ mode: 'blue' });
    // The data block came back (the ticks since restore stamp only a few words).
    const same = [...after.data].filter((b, i) => b === marker[i]).length;
    expect(same).toBeGreaterThan(marker.length * 0.9);
    const log = await core.readNamespacedPodLog({ namespace: 'ck', name: 'dst', container: 'app' });
    expect(log).toMatch(/^restored from checkpoint image kcr\.local\/ck\/src@sha256:[0-9a-f]{64} \(checkpointed .*\): counter=10\d\d\n/);
    const previous = await core.readNamespacedPodLog({ namespace: 'ck', name: 'dst', container: 'app', previous: true });
    expect(previous).toMatch(/^starting fresh: counter=0\n/);

    // A new pod started from the checkpoint image restores too.
    await core.createNamespacedPod({ namespace: 'ck', body: { metadata: { name: 'fresh-from-image' }, spec: { containers: [{ name: 'app', image: 'kcr.local/ck/src:v1' }] } } });
    await running('fresh-from-image');
    expect(cluster.containerState('ck', 'fresh-from-image', 'app')!.counter).toBeGreaterThanOrEqual(1000);
  });

  it('a checkpoint for another container name is refused (CreateContainerError)', async () => {
    const dir = join(layoutDir, 'other');
    const archive = await checkpointNow('counter', 'counter');
    const { manifestDigest } = writeCheckpointImageLayout(dir, { archive, containerName: 'counter' });
    const c2 = await startSimulatedCluster({ kubelet: { tickMs: 20, imagePullBackoffMs: 100 }, imageSources: { 'kcr.local': { kind: 'layout', dir } } });
    try {
      const core2 = c2.kubeConfig.makeApiClient(CoreV1Api);
      await core2.createNamespacedPod({ namespace: 'default', body: { metadata: { name: 'x' }, spec: { containers: [{ name: 'app', image: `kcr.local/ck/counter@${manifestDigest}` }] } } });
      const p = await c2.waitFor(async () => {
        const x = await core2.readNamespacedPod({ namespace: 'default', name: 'x' });
        return x.status?.containerStatuses?.[0]?.state?.waiting?.reason === 'CreateContainerError' ? x : undefined;
      });
      expect(p.status!.containerStatuses![0]!.state!.waiting!.message).toContain('was created for container "counter"');
    } finally {
      await c2.stop();
    }
  });

  it('a checkpoint of another namespace is refused (CreateContainerError), as CRI-O refuses it', async () => {
    const dir = join(layoutDir, 'other-ns');
    const archive = await checkpointNow('counter', 'counter');
    const { manifestDigest } = writeCheckpointImageLayout(dir, { archive, containerName: 'counter' });
    const c2 = await startSimulatedCluster({ kubelet: { tickMs: 20, imagePullBackoffMs: 100 }, imageSources: { 'kcr.local': { kind: 'layout', dir } } });
    try {
      const core2 = c2.kubeConfig.makeApiClient(CoreV1Api);
      await core2.createNamespacedPod({ namespace: 'default', body: { metadata: { name: 'x' }, spec: { containers: [{ name: 'counter', image: `kcr.local/ck/counter@${manifestDigest}` }] } } });
      const p = await c2.waitFor(async () => {
        const x = await core2.readNamespacedPod({ namespace: 'default', name: 'x' });
        return x.status?.containerStatuses?.[0]?.state?.waiting?.reason === 'CreateContainerError' ? x : undefined;
      });
      expect(p.status!.containerStatuses![0]!.state!.waiting!.message).toContain('holds a container of namespace "ck": refusing to restore it into a pod of namespace "default"');
      expect(p.status!.containerStatuses![0]!.started).toBe(false);
    } finally {
      await c2.stop();
    }
  });

  it('a pull failure shows ErrImagePull then ImagePullBackOff', async () => {
    await core.createNamespacedPod({
      namespace: 'ck',
      body: { metadata: { name: 'nopull' }, spec: { containers: [{ name: 'app', image: `kcr.local/ck/missing@sha256:${'0'.repeat(64)}` }] } },
    });
    const reasons = new Set<string>();
    await cluster.waitFor(
      async () => {
        const p = await core.readNamespacedPod({ namespace: 'ck', name: 'nopull' });
        const w = p.status?.containerStatuses?.[0]?.state?.waiting;
        if (w?.reason) reasons.add(w.reason);
        if (w?.reason === 'ErrImagePull') expect(w.message).toContain('manifest unknown');
        return reasons.has('ErrImagePull') && reasons.has('ImagePullBackOff');
      },
      { intervalMs: 5, description: 'ErrImagePull and ImagePullBackOff' },
    );
    const p = await core.readNamespacedPod({ namespace: 'ck', name: 'nopull' });
    expect(p.status?.phase).toBe('Pending');
  });

  it('a container restored from a crashOnRestore checkpoint exits 1 and ends in CrashLoopBackOff', async () => {
    await core.createNamespacedPod({ namespace: 'ck', body: { metadata: { name: 'bomb' }, spec: { containers: [{ name: 'app', image: 'quay.io/kcr/counter:1' }] } } });
    await running('bomb');
    cluster.setContainerState('ck', 'bomb', 'app', { crashOnRestore: true });
    const archive = await checkpointNow('bomb', 'app');
    const dir = join(layoutDir, 'bomb');
    const { manifestDigest } = writeCheckpointImageLayout(dir, { archive, containerName: 'app' });
    const c2 = await startSimulatedCluster({ kubelet: { tickMs: 20, backoffBaseMs: 100, backoffMaxMs: 400 }, imageSources: { 'kcr.local': { kind: 'layout', dir } } });
    try {
      const core2 = c2.kubeConfig.makeApiClient(CoreV1Api);
      // The archive names namespace ck: the kubelet restores it only into a pod of ck.
      await core2.createNamespace({ body: { metadata: { name: 'ck' } } });
      await core2.createNamespacedPod({ namespace: 'ck', body: { metadata: { name: 'bomb' }, spec: { containers: [{ name: 'app', image: `kcr.local/ck/bomb@${manifestDigest}` }] } } });
      const p = await c2.waitFor(
        async () => {
          const x = await core2.readNamespacedPod({ namespace: 'ck', name: 'bomb' });
          return x.status?.containerStatuses?.[0]?.state?.waiting?.reason === 'CrashLoopBackOff' ? x : undefined;
        },
        { description: 'restore loop into CrashLoopBackOff' },
      );
      const cs = p.status!.containerStatuses![0]!;
      expect(cs.lastState?.terminated).toMatchObject({ exitCode: 1, reason: 'Error' });
      expect(cs.restartCount).toBeGreaterThanOrEqual(1);
      const prev = await core2.readNamespacedPodLog({ namespace: 'ck', name: 'bomb', container: 'app', previous: true });
      expect(prev).toContain('crashOnRestore: exiting with code 1');
    } finally {
      await c2.stop();
    }
  });
});
