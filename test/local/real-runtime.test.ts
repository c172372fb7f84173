// kcr on the real container runtime: the simulated nodes run their pods as podman
// containers (runc, CRIU). A process holding random bytes only in its memory is
// checkpointed through the kubelet endpoint, stored, built into an image, killed, and
// restored by the chain, with the same sha256 of its memory after as before; the stored
// archive is what CRI-O writes (checkpointctl reads it, its process tree names the
// workload); the kubelet refuses another namespace's checkpoint (kcr's guard: CRI-O would
// restore it into the pod's sandbox, cri-o server/container_restore.go) and an archive
// podman cannot restore, with an Event, the runtime's message and nothing restored
// (CRI-O removes its container on a failed restore too); `kcr inspect` reads real
// archives (the counter's, and Redis's with its listening unix socket) as
// `checkpointctl inspect --all` does, by range reads. Skips without
// podman/runc/criu, fails so under KCR_REQUIRE_BINARIES=1.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { artifactKey } from '../../functions/core/storage/layout.js';
import type { ImageBuiltData } from '../../functions/core/contract/events.js';
import { inspectCheckpointArchive } from '../../functions/store-artifact/checkpoint-archive.js';
import { readTar } from '../../simulator/archive.js';
import { tarBuffer } from '../../simulator/archive-entries.js';
import { lastCounter } from '../../simulator/kubelet/podman-runtime.js';
import { NS, OPT_IN, useLocalStack } from '../support/local-stack.js';
import { runCli } from '../../cli/run.js';
import { redisCli, redisDeployment, REDIS_SOCKET } from '../../local/redis-demo.js';
import { realRuntimeAvailable } from '../support/podman.js';
import { writeCheckpointImageLayout } from '../simulator/helpers.js';
import { Readable } from 'node:stream';

const available = await realRuntimeAvailable();
const STATE_BYTES = 8 * 1024 * 1024;
const scratch = mkdtempSync(join(tmpdir(), 'kcr-real-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe.skipIf(!available)('the podman runtime under the whole chain', () => {
  const kit = useLocalStack('real-runtime', {
    runtime: 'podman',
    kubelet: { tickMs: 100, backoffBaseMs: 100, backoffMaxMs: 400, imagePullBackoffMs: 300 },
    containerDataBytes: STATE_BYTES,
    backoffScale: 0.05,
  });
  let pod = '';
  let podUid = '';
  let memory = '';
  let built: ImageBuiltData | undefined;
  let archive: Buffer | undefined;

  const state = (name: string) => kit.stack.cluster.containerState(NS, name, 'app');
  const logs = async (name: string) => kit.core.readNamespacedPodLog({ namespace: NS, name, container: 'app' });

  /** The sha256 of the random bytes the process holds: it prints it on SIGUSR1 (COUNTER_SCRIPT). */
  async function memorySha(name: string): Promise<string> {
    const id = state(name)!.containerID.replace('cri-o://', '');
    const before = ((await logs(name)).match(/^sha256=/gm) ?? []).length;
    await kit.stack.podman!.run(['kill', '--signal', 'USR1', id]);
    return kit.until(`the sha256 line of ${name}`, async () => {
      const all = [...(await logs(name)).matchAll(/^sha256=([0-9a-f]{64})$/gm)];
      return all.length > before ? all.at(-1)![1] : undefined;
    });
  }

  async function storedArchive(b: ImageBuiltData): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const c of await kit.stack.store.getStream(artifactKey({ namespace: b.namespace, workload: b.workload, container: b.container, id: b.id }, 'archive'))) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  it("checkpoints a process's memory through the kubelet, and after a kill restores it with the same sha256", async () => {
    await kit.apps.createNamespacedDeployment({
      namespace: NS,
      body: {
        metadata: { name: 'holder', annotations: OPT_IN },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'holder' } },
          template: { metadata: { labels: { app: 'holder' } }, spec: { containers: [{ name: 'app', image: 'quay.io/kcr/counter:1' }] } },
        },
      },
    });
    pod = await kit.until(
      'a running holder pod that holds its data',
      async () => {
        const pods = await kit.core.listNamespacedPod({ namespace: NS, labelSelector: 'app=holder' });
        const name = pods.items.find((p) => p.status?.phase === 'Running')?.metadata?.name;
        return name && (state(name)?.counter ?? 0) >= 1 ? name : undefined;
      },
      60_000,
    );
    expect(await logs(pod)).toContain(`holding ${STATE_BYTES} random bytes`);
    const before = await memorySha(pod);
    const firstId = state(pod)!.containerID;
    podUid = (await kit.core.readNamespacedPod({ namespace: NS, name: pod })).metadata!.uid!;

    const [b] = await kit.checkpoint(pod);
    built = b!.data as unknown as ImageBuiltData;
    archive = await storedArchive(built);
    const checkpointed = lastCounter((await readTar(archive, new Set(['ctr.log']))).get('ctr.log')!.toString('utf8'))!;
    // The pages hold the process's memory: at least the bytes it holds (as base64, 4/3 of them).
    expect(built.artifact.size).toBeGreaterThan(STATE_BYTES);

    kit.stack.cluster.killContainer(NS, pod, 'app');
    await kit.until('pod.restored', () => kit.of('io.kcr.pod.restored', pod).length > 0, 60_000);
    const restored = await kit.until('the restored container running', () => {
      const s = state(pod);
      return s?.running && s.restoredFrom && s.counter > checkpointed ? s : undefined;
    });
    expect(restored.containerID).not.toBe(firstId);
    expect(restored.restoredFrom).toContain('@sha256:');
    const id = restored.containerID.replace('cri-o://', '');
    expect((await kit.stack.podman!.run(['inspect', '--format', '{{.State.Restored}}', id])).trim()).toBe('true');
    expect(await memorySha(pod)).toBe(before);
    memory = before;
    // A cold start would count from 1 again; the restored process goes on from the checkpoint.
    expect(restored.counter).toBeGreaterThan(checkpointed);
  }, 120_000);

  it('stores an archive in CRI-O shape that checkpointctl reads, its process tree naming the workload', async () => {
    expect(archive, 'the first test stored an archive').toBeDefined();
    const file = join(scratch, `checkpoint-${pod}_${NS}-app-${built!.checkpointedAt}.tar`);
    writeFileSync(file, archive!);
    const files = await readTar(archive!);
    for (const name of ['config.dump', 'spec.dump', 'rootfs-diff.tar', 'stats-dump', 'checkpoint/pstree.img', 'checkpoint/mm-1.img', 'checkpoint/pages-1.img'])
      expect(files.has(name), name).toBe(true);
    const info = await inspectCheckpointArchive(Readable.from([archive!]));
    expect(info.container).toEqual({ pod, namespace: NS, podUid, container: 'app' });
    expect(info.config.rootfsImageName).toBe('quay.io/kcr/counter:1');

    const shown = execFileSync('checkpointctl', ['show', file], { encoding: 'utf8' });
    expect(shown).toContain('quay.io/kcr/counter:1');
    const [inspected] = JSON.parse(execFileSync('checkpointctl', ['inspect', '--all', '--format', 'json', file], { encoding: 'utf8' })) as {
      engine: string;
      process_tree: { pid: number; command: string; cmdline: string };
      file_descriptors?: unknown[];
      mounts?: unknown[];
    }[];
    expect(inspected?.engine).toBe('Podman');
    expect(inspected?.process_tree.pid).toBe(1);
    expect(inspected?.process_tree.cmdline).toContain('/bin/counter');
    expect(inspected?.mounts?.length).toBeGreaterThan(0);
  });

  /** `kcr inspect ID -o json` with only the kubeconfig, and what it read of the archive. */
  async function kcrInspect(b: ImageBuiltData): Promise<{ report: Record<string, unknown> & { kcr: { reads: { requests: number; bytes: number; archiveBytes: number } } }; rangeBytes: number }> {
    const archiveKey = artifactKey({ namespace: b.namespace, workload: b.workload, container: b.container, id: b.id }, 'archive');
    let rangeBytes = 0;
    const store = kit.stack.store;
    const counted = Object.assign(Object.create(store) as typeof store, {
      getRange: async (key: string, offset: number, length: number) => {
        const got = await store.getRange(key, offset, length);
        if (key === archiveKey) rangeBytes += got.length;
        return got;
      },
      getStream: (key: string) => {
        if (key === archiveKey) throw new Error('inspect streamed the whole archive');
        return store.getStream(key);
      },
    });
    let out = '';
    let err = '';
    const code = await runCli(['inspect', b.id, '-n', b.namespace, '-o', 'json'], {
      stdout: { write: (x: string) => (out += x) },
      stderr: { write: (x: string) => (err += x) },
      env: { KUBECONFIG: kit.stack.cluster.kubeconfigPath },
      openStore: () => counted,
    });
    expect(code, err).toBe(0);
    return { report: JSON.parse(out) as never, rangeBytes };
  }

  function checkpointctlAll(archiveBytes: Buffer, name: string): Record<string, unknown> {
    const file = join(scratch, name);
    writeFileSync(file, archiveBytes);
    const [theirs] = JSON.parse(execFileSync('checkpointctl', ['inspect', '--all', '--format', 'json', file], { encoding: 'utf8' })) as Record<string, unknown>[];
    return theirs!;
  }

  it('kcr inspect reads the real archive as checkpointctl inspect --all does, by range reads', async () => {
    expect(built, 'the first test stored an archive').toBeDefined();
    const { report, rangeBytes } = await kcrInspect(built!);
    const { kcr, ...ours } = report;
    // The same processes, command lines, environments, open files, mounts, sizes and statistics.
    expect(ours).toEqual(checkpointctlAll(archive!, 'counter.tar'));
    expect(ours).toMatchObject({ process_tree: { pid: 1, cmdline: expect.stringContaining('/bin/counter') }, file_descriptors: expect.arrayContaining([expect.objectContaining({ pid: 1 })]) });
    expect(kcr.reads.bytes).toBe(rangeBytes);
    // The state's pages are most of the archive; inspect reads a small part of it.
    expect(rangeBytes * 20).toBeLessThan(archive!.length);
    console.info(`kcr inspect, real counter archive: read ${rangeBytes} of ${archive!.length} bytes in ${kcr.reads.requests} range requests`);
  });

  it('kcr inspect shows a real Redis listening socket as checkpointctl inspect --all does', async () => {
    const sockets = join(scratch, 'redis-sockets');
    const image = await kit.stack.podman!.ensureRedisImage();
    await kit.apps.createNamespacedDeployment({ namespace: NS, body: redisDeployment(image, sockets, OPT_IN) });
    const redis = await kit.until(
      'a running redis answering PING',
      async () => {
        const pods = await kit.core.listNamespacedPod({ namespace: NS, labelSelector: 'app=redis' });
        const name = pods.items.find((p) => p.status?.phase === 'Running')?.metadata?.name;
        return name && (await redisCli(sockets, ['PING']).catch(() => '')) === 'PONG' ? name : undefined;
      },
      60_000,
    );
    const [b] = await kit.checkpoint(redis);
    const redisBuilt = b!.data as unknown as ImageBuiltData;
    const redisArchive = await storedArchive(redisBuilt);
    const { report, rangeBytes } = await kcrInspect(redisBuilt);
    const { kcr, ...ours } = report;
    expect(ours).toEqual(checkpointctlAll(redisArchive, 'redis.tar'));
    expect(ours).toMatchObject({
      // Redis rewrites its argv into a process title: what is in its memory, not the spec's args.
      process_tree: { command: 'redis-server', cmdline: expect.stringContaining(`unixsocket:/sock/${REDIS_SOCKET}`) },
      sockets: [{ pid: 1, open_sockets: expect.arrayContaining([{ data: { type: 'UNIX', address: expect.stringMatching(new RegExp(`^/sock/${REDIS_SOCKET.replace('.', '\\.')}`)) } }]) }],
    });
    expect(rangeBytes * 10).toBeLessThan(redisArchive.length);
    // Gone again, so that the node-loss test below moves only the holder.
    await kit.apps.deleteNamespacedDeployment({ namespace: NS, name: 'redis' });
    await kit.until('the redis pods gone', async () => (await kit.core.listNamespacedPod({ namespace: NS, labelSelector: 'app=redis' })).items.length === 0, 60_000);
    console.info(`kcr inspect, real redis archive: read ${rangeBytes} of ${redisArchive.length} bytes in ${kcr.reads.requests} range requests`);
  }, 120_000);

  it("refuses another namespace's checkpoint image: an Event says why, nothing is restored", async () => {
    expect(built, 'the first test built an image').toBeDefined();
    await kit.core.createNamespace({ body: { metadata: { name: 'other' } } });
    await kit.core.createNamespacedPod({ namespace: 'other', body: { metadata: { name: 'thief' }, spec: { containers: [{ name: 'app', image: built!.image.reference }] } } });
    const waiting = await kit.until('CreateContainerError', async () => {
      const p = await kit.core.readNamespacedPod({ namespace: 'other', name: 'thief' });
      const w = p.status?.containerStatuses?.[0]?.state?.waiting;
      return w?.reason === 'CreateContainerError' ? w : undefined;
    });
    expect(waiting.message).toContain(`holds a container of namespace "${NS}": refusing to restore it into a pod of namespace "other"`);
    const events = await kit.core.listNamespacedEvent({ namespace: 'other', fieldSelector: 'involvedObject.name=thief' });
    expect(events.items.some((e) => e.reason === 'Failed' && e.message?.includes('refusing to restore'))).toBe(true);
    const ps = await kit.stack.podman!.run(['ps', '--all', '--format', '{{.Names}}']);
    expect(ps).not.toContain('_thief_other_');
  });

  it("fails a restore podman cannot do with the runtime's own message, and leaves no container behind", async () => {
    expect(archive, 'the first test stored an archive').toBeDefined();
    // The real archive without its CRIU images: a valid tar, identity and all, that cannot restore.
    const files = await readTar(archive!);
    const entries = [...files].filter(([name]) => !name.startsWith('checkpoint/')).map(([name, data]) => ({ name, data }));
    const tampered = await tarBuffer(entries, new Date());
    const layout = join(kit.stack.cluster.stateDir, '..', 'oci-layout');
    const { manifestDigest } = writeCheckpointImageLayout(layout, { archive: tampered, containerName: 'app' });
    await kit.core.createNamespacedPod({ namespace: NS, body: { metadata: { name: 'tampered' }, spec: { containers: [{ name: 'app', image: `kcr.local/t/tampered@${manifestDigest}` }] } } });
    const waiting = await kit.until(
      'CreateContainerError',
      async () => {
        const p = await kit.core.readNamespacedPod({ namespace: NS, name: 'tampered' });
        const w = p.status?.containerStatuses?.[0]?.state?.waiting;
        return w?.reason === 'CreateContainerError' ? w : undefined;
      },
      30_000,
    );
    expect(waiting.message).toMatch(/^restoring container app from kcr\.local\/t\/tampered@sha256:[0-9a-f]{64}: podman container restore/);
    const events = await kit.core.listNamespacedEvent({ namespace: NS, fieldSelector: 'involvedObject.name=tampered' });
    expect(events.items.some((e) => e.reason === 'Failed' && e.message?.includes('podman container restore'))).toBe(true);
    const ps = await kit.stack.podman!.run(['ps', '--all', '--format', '{{.Names}}']);
    expect(ps).not.toContain('_tampered_');
  });
  it('loses the node: its container is removed, and the replacement pod on another node resumes the memory', async () => {
    expect(memory, 'the first test restored the holder').not.toBe('');
    const node = (await kit.core.readNamespacedPod({ namespace: NS, name: pod })).spec!.nodeName!;
    const id = state(pod)!.containerID.replace('cri-o://', '');
    kit.stack.cluster.nodeDown(node);
    try {
      // The taint manager deletes the lost node's pods; the kubelet forgets them, and the runtime removes their containers.
      await kit.until('the lost container removed', async () => !(await kit.stack.podman!.run(['ps', '--all', '--format', '{{.ID}}', '--no-trunc'])).includes(id), 30_000);
      const replacement = await kit.until(
        'a replacement holder restored on another node',
        async () => {
          const pods = await kit.core.listNamespacedPod({ namespace: NS, labelSelector: 'app=holder' });
          const p = pods.items.find((x) => x.metadata?.name !== pod && x.status?.phase === 'Running' && x.spec?.nodeName !== node);
          const name = p?.metadata?.name;
          return name && state(name)?.running && state(name)?.restoredFrom && kit.of('io.kcr.pod.restored', name).length ? name : undefined;
        },
        60_000,
      );
      expect(kit.of('io.kcr.pod.restored', replacement)[0]?.data.strategy).toBe('replacement');
      expect(await memorySha(replacement)).toBe(memory);
    } finally {
      kit.stack.cluster.nodeUp(node);
    }
  }, 120_000);
});
