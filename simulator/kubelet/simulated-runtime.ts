// The `simulated` container runtime: a container is a counter and a data block held in
// this process, ticking every tickMs; its checkpoint is an archive in CRI-O's layout whose
// checkpoint/pages-1.img carries that state (../state.ts), and a restore reads it back.
// For machines without CRIU (a laptop, a CI without root) and for the fast test suite.
import { writeFile } from 'node:fs/promises';
import { buildCheckpointArchive } from '../archive.js';
import { seededBytes, tick } from '../state.js';
import type { ContainerRuntime, PulledCheckpoint, RuntimeCallbacks, StartedContainer } from './container-runtime.js';
import { restoreFromCheckpoint } from './restore.js';
import { containerId, type NodeRuntime, type RuntimeContainer, type RuntimePod } from './runtime.js';

export function simulatedRuntime(rt: NodeRuntime, callbacks: RuntimeCallbacks): ContainerRuntime {
  const timer = setInterval(() => {
    if (rt.down || rt.stopped) return;
    for (const p of rt.pods.values()) {
      for (const c of p.containers.values()) {
        if (c.phase !== 'running') continue;
        tick(c.state);
        callbacks.log(p, c, `counter=${c.state.counter}`);
      }
    }
  }, rt.opts.tickMs);
  timer.unref();
  return {
    kind: 'simulated',
    create(p: RuntimePod, c: RuntimeContainer): Promise<StartedContainer> {
      const state = { counter: 0, data: seededBytes(`${p.namespace}/${p.name}/${c.name}`, rt.opts.dataSize), flags: {}, crashOnRestore: false };
      return Promise.resolve({ id: containerId(), state });
    },
    async restore(_p: RuntimePod, c: RuntimeContainer, checkpoint: PulledCheckpoint, image: string): Promise<StartedContainer> {
      const r = await restoreFromCheckpoint(checkpoint, image, c.name);
      return { id: containerId(), state: r.state, restored: { ref: r.ref, checkpointedAt: r.checkpointedAt, rootfs: r.rootfs } };
    },
    async checkpoint(p: RuntimePod, c: RuntimeContainer, file: string, checkpointedAt: string): Promise<void> {
      const archive = await buildCheckpointArchive({
        namespace: p.namespace,
        pod: p.name,
        podUid: p.uid,
        container: c.name,
        containerId: c.id,
        image: c.rootfs?.name ?? c.image,
        imageRef: c.rootfs?.ref ?? c.imageID,
        podIP: p.podIP,
        sandboxId: p.sandboxId,
        restartCount: c.restartCount,
        createdAt: c.startedAt ?? checkpointedAt,
        checkpointedAt,
        state: { counter: c.state.counter, data: Buffer.from(c.state.data), flags: { ...c.state.flags }, crashOnRestore: c.state.crashOnRestore },
      });
      await writeFile(file, archive, { mode: 0o600 });
    },
    kill(p: RuntimePod, c: RuntimeContainer, exitCode: number, reason: string): void {
      callbacks.exited(p, c, c.attempt, exitCode, reason);
    },
    nodeDown(): void {
      // The tick skips a down node: its counters freeze.
    },
    remove(): void {
      // Nothing outlives the container's record.
    },
    close(): Promise<void> {
      clearInterval(timer);
      return Promise.resolve();
    },
  };
}
