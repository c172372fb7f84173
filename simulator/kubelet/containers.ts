// Where a pod's container gets started on a simulated node: pulling its image (or restoring
// it from a checkpoint image, restore.ts), ErrImagePull/ImagePullBackOff and
// CreateContainerError with retries, starting it fresh or restored (with the Pulled,
// Created, Started/Restored Events), stopping it, and restarting an exited container per
// restartPolicy with CrashLoopBackOff.

import { ImagePullError, resolveImage, syntheticImageId } from '../images.js';
import { isRecord, nowRfc3339 } from '../types.js';
import type { StartedContainer } from './container-runtime.js';
import { appendLog } from './logs.js';
import { checkCheckpointFor, CreateContainerError } from './restore.js';
import type { NodeRuntime, RuntimeContainer, RuntimePod } from './runtime.js';
import { writeStatus } from './status.js';

function fmtDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  const s = ms / 1000;
  if (s < 60) return `${Number.isInteger(s) ? s : s.toFixed(1)}s`;
  return `${Math.floor(s / 60)}m${Math.round(s % 60)}s`;
}

export function stopContainer(rt: NodeRuntime, c: RuntimeContainer, exitCode: number, reason: string): void {
  if (c.timer) clearTimeout(c.timer);
  rt.runtime.remove(c);
  c.attempt++;
  if (c.phase === 'running') {
    c.terminated = { exitCode, reason, startedAt: c.startedAt ?? nowRfc3339(), finishedAt: nowRfc3339(), containerID: `cri-o://${c.id}` };
  }
  c.phase = 'terminated';
  c.waiting = undefined;
}

export function startContainer(rt: NodeRuntime, p: RuntimePod, c: RuntimeContainer): void {
  const attempt = ++c.attempt;
  const image = c.image;
  const stale = (): boolean => rt.stopped || c.attempt !== attempt || rt.pods.get(p.uid) !== p || p.final || p.terminating;
  void (async () => {
    let started: StartedContainer;
    let imageID: string;
    try {
      const pullStart = performance.now();
      const resolved = await resolveImage(image, rt.opts.imageSources);
      if (stale()) return;
      imageID = resolved?.imageID ?? syntheticImageId(image);
      const runtimeStart = performance.now();
      if (resolved?.checkpoint) {
        await checkCheckpointFor(resolved.checkpoint, image, p.namespace, c.name);
        started = await rt.runtime.restore(p, c, resolved.checkpoint, image);
      } else started = await rt.runtime.create(p, c, image);
      c.startTimings = { pullMs: runtimeStart - pullStart, runtimeMs: performance.now() - runtimeStart };
    } catch (err) {
      if (stale()) return;
      const pod = rt.currentPod(p);
      if (err instanceof CreateContainerError) {
        c.phase = 'waiting';
        c.waiting = { reason: 'CreateContainerError', message: err.message };
        if (pod) rt.recorder.record(pod, 'Warning', 'Failed', `Error: ${err.message}`, 'kubelet', rt.node);
      } else {
        const message = err instanceof ImagePullError ? err.message : `pulling image ${image}: ${err instanceof Error ? err.message : String(err)}`;
        c.phase = 'waiting';
        c.waiting = { reason: 'ErrImagePull', message };
        if (pod) {
          rt.recorder.record(pod, 'Warning', 'Failed', `Failed to pull image "${image}": ${message}`, 'kubelet', rt.node);
          rt.recorder.record(pod, 'Warning', 'Failed', 'Error: ErrImagePull', 'kubelet', rt.node);
        }
        writeStatus(rt, p.namespace, p.name);
        // ErrImagePull turns into ImagePullBackOff while the kubelet waits to retry.
        c.timer = setTimeout(
          () => {
            if (stale()) return;
            c.waiting = { reason: 'ImagePullBackOff', message: `Back-off pulling image "${image}"` };
            writeStatus(rt, p.namespace, p.name);
            c.timer = setTimeout(() => {
              if (!stale()) startContainer(rt, p, c);
            }, rt.opts.imagePullBackoffMs);
            c.timer.unref();
          },
          Math.max(1, Math.floor(rt.opts.imagePullBackoffMs / 4)),
        );
        c.timer.unref();
        return;
      }
      writeStatus(rt, p.namespace, p.name);
      c.timer = setTimeout(() => {
        if (!stale()) startContainer(rt, p, c);
      }, rt.opts.imagePullBackoffMs);
      c.timer.unref();
      return;
    }
    if (stale()) {
      rt.runtime.remove({ ...c, id: started.id });
      return;
    }
    const restored = started.restored;
    if (c.everStarted) c.restartCount++;
    c.everStarted = true;
    c.id = started.id;
    c.imageID = started.imageID ?? imageID;
    c.phase = 'running';
    c.waiting = undefined;
    c.terminated = undefined;
    c.startedAt = nowRfc3339();
    c.state = started.state;
    if (restored) {
      c.restoredFrom = restored.ref;
      c.rootfs = restored.rootfs;
      appendLog(rt, p, c, `restored from checkpoint image ${restored.ref} (checkpointed ${restored.checkpointedAt}): counter=${c.state.counter}`);
    } else {
      c.restoredFrom = undefined;
      c.rootfs = undefined;
      appendLog(rt, p, c, `starting fresh: counter=0`);
    }
    const pod = rt.currentPod(p);
    if (pod) {
      rt.recorder.record(pod, 'Normal', 'Pulled', `Container image "${image}" already present on machine`, 'kubelet', rt.node);
      rt.recorder.record(pod, 'Normal', 'Created', `Created container ${c.name}`, 'kubelet', rt.node);
      rt.recorder.record(pod, 'Normal', restored ? 'Restored' : 'Started', restored ? `Restored container ${c.name} from checkpoint ${image}` : `Started container ${c.name}`, 'kubelet', rt.node);
    }
    writeStatus(rt, p.namespace, p.name);
    if (restored && c.state.crashOnRestore) {
      // The restored process dies at once: the restore-loop scenario.
      c.timer = setTimeout(
        () => {
          if (c.attempt !== attempt || c.phase !== 'running') return;
          appendLog(rt, p, c, 'crashOnRestore: exiting with code 1');
          containerExited(rt, p, c, 1, 'Error');
        },
        Math.max(1, Math.floor(rt.opts.tickMs / 2)),
      );
      c.timer.unref();
    }
  })().catch((err: unknown) => {
    console.error(`simulator: kubelet ${rt.node}: starting ${p.namespace}/${p.name}/${c.name} failed:`, err);
  });
}

/** A running container's process exited: restart per restartPolicy, with back-off. */
export function containerExited(rt: NodeRuntime, p: RuntimePod, c: RuntimeContainer, exitCode: number, reason: string, message?: string): void {
  if (c.phase !== 'running') return;
  stopContainer(rt, c, exitCode, reason);
  if (message && c.terminated) c.terminated.message = message;
  c.lastTerminated = c.terminated;
  c.previousLogs = c.logs;
  c.logs = [];
  const pod = rt.currentPod(p);
  const policy = pod && isRecord(pod.spec) ? String(pod.spec.restartPolicy ?? 'Always') : 'Always';
  const restart = policy === 'Always' || (policy === 'OnFailure' && exitCode !== 0);
  if (!restart || !pod) {
    writeStatus(rt, p.namespace, p.name);
    return;
  }
  c.terminated = undefined;
  const now = Date.now();
  let delay = 0;
  if (c.backoffMs > 0 && now - c.lastFailureAt < rt.opts.backoffResetMs) {
    delay = c.backoffMs;
    c.backoffMs = Math.min(c.backoffMs * 2, rt.opts.backoffMaxMs);
  } else c.backoffMs = rt.opts.backoffBaseMs;
  c.lastFailureAt = now;
  if (delay === 0) {
    startContainer(rt, p, c);
    return;
  }
  c.phase = 'waiting';
  c.waiting = {
    reason: 'CrashLoopBackOff',
    message: `back-off ${fmtDuration(delay)} restarting failed container=${c.name} pod=${p.name}_${p.namespace}(${p.uid})`,
  };
  rt.recorder.record(pod, 'Warning', 'BackOff', 'Back-off restarting failed container', 'kubelet', rt.node);
  writeStatus(rt, p.namespace, p.name);
  const attempt = c.attempt;
  c.timer = setTimeout(() => {
    if (rt.stopped || c.attempt !== attempt || p.final || p.terminating) return;
    startContainer(rt, p, c);
  }, delay);
  c.timer.unref();
}
