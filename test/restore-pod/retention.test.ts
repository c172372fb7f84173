// Retention and restored pods, end to end on the local stack: a restored pod's
// spec names its checkpoint image by digest, and a restart or a reschedule
// pulls it again, so retention keeps that checkpoint (S3 records and image)
// however many newer ones come; and the restored container's own checkpoints
// name the workload's image as their rootfs, as CRI-O's do, never the
// checkpoint image.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppsV1Api, CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from '../../local/stack.js';
import { readTar } from '../../simulator/archive.js';
import { resolveImage, type ImageSource } from '../../simulator/images.js';
import { events as build } from '../../functions/core/contract/build.js';
import { Kubernetes } from '../../functions/core/kubernetes/kubernetes.js';
import { artifactKey, type CheckpointLocation } from '../../functions/core/storage/layout.js';
import { deployment, runningPods } from '../../simulator/workloads.js';
import { optionalBinary } from '../support/binaries.js';

const NS = 'default';
// Opted in, with a schedule that does not fire during the test: checkpoints are taken on demand.
const OPT_IN = { 'kcr.io/checkpoint-restore-schedule': '0 0 1 1 *' };
const RETENTION = 2;
const WORKLOAD_IMAGE = 'quay.io/kcr/app:1';

interface Seen {
  type: string;
  data: Record<string, unknown>;
}

describe('retention on the local stack, with a restored pod', () => {
  let stack: Stack;
  let kube: Kubernetes;
  let dir: string;
  const seen: Seen[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kcr-retention-restore-'));
    const registryBinary = optionalBinary('docker-registry');
    stack = await startStack({
      stateDir: dir,
      nodes: ['node-a'],
      ...(registryBinary ? { registryBinary } : {}),
      env: { KCR_CHECKPOINT_RETENTION: String(RETENTION) },
      // The test collects the registry's garbage itself, where it wants one.
      registryGcIntervalMs: 0,
      kubelet: { tickMs: 50, backoffBaseMs: 100, backoffMaxMs: 400, dataSize: 4096 },
      backoffScale: 0.05,
    });
    stack.broker.onDelivery((o) => {
      if (o.kind === 'received') seen.push({ type: o.event.attributes.type ?? '', data: JSON.parse(o.event.data?.toString('utf8') ?? 'null') as Record<string, unknown> });
    });
    kube = new Kubernetes(stack.cluster.kubeConfig);
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
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; events: ${seen.slice(-15).map((e) => `${e.type} ${String(e.data.pod ?? '')}`).join(', ')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** One checkpoint of the pod's only container through the whole chain: its image.built data. */
  async function checkpoint(pod: string): Promise<Record<string, unknown>> {
    const built = of('io.kcr.image.built', pod);
    // The kubelet names archives by the second: a checkpoint in the same second as the last would be the same one.
    const last = built.at(-1)?.data.checkpointedAt;
    if (typeof last === 'string') await until('the next second', () => Date.now() >= Date.parse(last) + 1000);
    await stack.broker.publish(build.checkpointRequested({ namespace: NS, pod }, { source: 'test' }));
    return until(`image built for ${pod}`, () => of('io.kcr.image.built', pod)[built.length]?.data);
  }

  const location = (id: unknown): CheckpointLocation => ({ namespace: NS, workload: { kind: 'Deployment', name: 'kept' }, container: 'app', id: String(id) });
  async function bytesOf(key: string): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const c of await stack.store.getStream(key)) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }
  async function configDump(id: unknown): Promise<Record<string, unknown>> {
    const files = await readTar(await bytesOf(artifactKey(location(id), 'archive')));
    return JSON.parse(files.get('config.dump')?.toString('utf8') ?? 'null') as Record<string, unknown>;
  }
  /** Pulls the image as the simulated kubelet would on a restart: index, manifest and layer, digests checked. */
  function pull(image: string) {
    const sources: Record<string, ImageSource> = stack.registry.kind === 'oci-layout' ? { [stack.registry.host]: { kind: 'layout', dir: stack.registry.dir } } : {};
    return resolveImage(image, sources);
  }

  it('keeps the checkpoint a restored pod runs, in S3 and pullable, past the retention count; the pod\'s own checkpoints name the workload\'s image', async () => {
    await stack.cluster.kubeConfig.makeApiClient(AppsV1Api).createNamespacedDeployment({ namespace: NS, body: deployment({ name: 'kept', annotations: OPT_IN, image: WORKLOAD_IMAGE }) });
    const [running] = await runningPods(kube, NS, 'app=kept', 1);
    const pod = running!.metadata!.name!;
    stack.cluster.setContainerState(NS, pod, 'app', { counter: 100_000 });
    const original = await checkpoint(pod);

    stack.cluster.killContainer(NS, pod, 'app', { exitCode: 137 });
    const restored = await until('pod.restored', () => of('io.kcr.pod.restored', pod)[0]);
    expect(restored.data.checkpointId).toBe(original.id);
    const image = String(restored.data.image);
    await until('the restored container', () => stack.cluster.containerState(NS, pod, 'app')?.restoredFrom === image && stack.cluster.containerState(NS, pod, 'app')?.running);

    // The restored container's checkpoint names the workload's image as its rootfs, as its first one did.
    const own = await checkpoint(pod);
    const before = await configDump(original.id);
    const after = await configDump(own.id);
    expect(before).toMatchObject({ rootfsImageName: WORKLOAD_IMAGE, rootfsImage: WORKLOAD_IMAGE });
    expect(after).toMatchObject({ rootfsImageName: WORKLOAD_IMAGE, rootfsImage: WORKLOAD_IMAGE, rootfsImageRef: before.rootfsImageRef });
    const ownImage = await pull(String((own.image as { reference: string }).reference));
    expect(ownImage?.checkpoint?.annotations['org.criu.checkpoint.rootfsImageName']).toBe(WORKLOAD_IMAGE);

    // More checkpoints than retention keeps; then the registry's garbage collection.
    const later = [];
    for (let i = 0; i < RETENTION + 1; i++) later.push(await checkpoint(pod));
    if (stack.registry.kind === 'docker-registry') await stack.registry.server.collectGarbage();

    const pods = await stack.cluster.kubeConfig.makeApiClient(CoreV1Api).readNamespacedPod({ namespace: NS, name: pod });
    expect(pods.spec?.containers[0]?.image).toBe(image);
    for (const file of ['archive', 'manifest', 'image'] as const) expect(await stack.store.stat(artifactKey(location(original.id), file)), file).toBeDefined();
    const pulled = await pull(image);
    const archive = pulled?.checkpoint?.archive;
    expect(archive && createHash('sha256').update(archive).digest('hex')).toBe((original.artifact as { sha256: string }).sha256);
    // Retention goes on for every checkpoint no pod uses.
    const committed = [];
    for (const c of [own, ...later]) if (await stack.store.stat(artifactKey(location(c.id), 'manifest'))) committed.push(c.id);
    expect(committed).toEqual(later.slice(-RETENTION).map((c) => c.id));
  }, 60_000);
});
