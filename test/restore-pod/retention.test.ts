// Retention and restored pods, end to end on the local stack: a restored pod's
// spec names its checkpoint image by digest, and a restart or a reschedule
// pulls it again, so retention keeps that checkpoint (S3 records and image)
// however many newer ones come; and the restored container's own checkpoints
// name the workload's image as their rootfs, as CRI-O's do, never the
// checkpoint image.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { readTar } from '../../simulator/archive.js';
import { resolveImage, type ImageSource } from '../../simulator/images.js';
import { artifactKey, type CheckpointLocation } from '../../functions/core/storage/layout.js';
import { deployment, runningPods } from '../../simulator/workloads.js';
import { NS, OPT_IN, TEST_TIMINGS, useLocalStack } from '../support/local-stack.js';

const RETENTION = 2;
const WORKLOAD_IMAGE = 'quay.io/kcr/app:1';

describe('retention on the local stack, with a restored pod', () => {
  const kit = useLocalStack('retention-restore', {
    ...TEST_TIMINGS,
    nodes: ['node-a'],
    env: { KCR_CHECKPOINT_RETENTION: String(RETENTION) },
    // The test collects the registry's garbage itself, where it wants one.
    registryGcIntervalMs: 0,
  });
  const { of, until } = kit;

  /** One checkpoint of the pod's only container through the whole chain: its image.built data. */
  const checkpoint = async (pod: string) => (await kit.checkpoint(pod))[0]!.data;

  const location = (id: unknown): CheckpointLocation => ({ namespace: NS, workload: { kind: 'Deployment', name: 'kept' }, container: 'app', id: String(id) });
  async function bytesOf(key: string): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const c of await kit.stack.store.getStream(key)) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }
  async function configDump(id: unknown): Promise<Record<string, unknown>> {
    const files = await readTar(await bytesOf(artifactKey(location(id), 'archive')));
    return JSON.parse(files.get('config.dump')?.toString('utf8') ?? 'null') as Record<string, unknown>;
  }
  /** Pulls the image as the simulated kubelet would on a restart: index, manifest and layer, digests checked. */
  function pull(image: string) {
    const sources: Record<string, ImageSource> = kit.stack.registry.kind === 'oci-layout' ? { [kit.stack.registry.host]: { kind: 'layout', dir: kit.stack.registry.dir } } : {};
    return resolveImage(image, sources);
  }

  it("keeps the checkpoint a restored pod runs, in S3 and pullable, past the retention count; the pod's own checkpoints name the workload's image", async () => {
    await kit.apps.createNamespacedDeployment({ namespace: NS, body: deployment({ name: 'kept', annotations: OPT_IN, image: WORKLOAD_IMAGE }) });
    const [running] = await runningPods(kit.kube, NS, 'app=kept', 1);
    const pod = running!.metadata!.name!;
    kit.stack.cluster.setContainerState(NS, pod, 'app', { counter: 100_000 });
    const original = await checkpoint(pod);

    kit.stack.cluster.killContainer(NS, pod, 'app', { exitCode: 137 });
    const restored = await until('pod.restored', () => of('io.kcr.pod.restored', pod)[0]);
    expect(restored.data.checkpointId).toBe(original.id);
    const image = String(restored.data.image);
    await until('the restored container', () => kit.stack.cluster.containerState(NS, pod, 'app')?.restoredFrom === image && kit.stack.cluster.containerState(NS, pod, 'app')?.running);

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
    if (kit.stack.registry.kind === 'docker-registry') await kit.stack.registry.server.collectGarbage();

    const pods = await kit.core.readNamespacedPod({ namespace: NS, name: pod });
    expect(pods.spec?.containers[0]?.image).toBe(image);
    for (const file of ['archive', 'manifest', 'image'] as const) expect(await kit.stack.store.stat(artifactKey(location(original.id), file)), file).toBeDefined();
    const pulled = await pull(image);
    const archive = pulled?.checkpoint?.archive;
    expect(archive && createHash('sha256').update(archive).digest('hex')).toBe((original.artifact as { sha256: string }).sha256);
    // Retention goes on for every checkpoint no pod uses.
    const committed = [];
    for (const c of [own, ...later]) if (await kit.stack.store.stat(artifactKey(location(c.id), 'manifest'))) committed.push(c.id);
    expect(committed).toEqual(later.slice(-RETENTION).map((c) => c.id));
  }, 60_000);
});
