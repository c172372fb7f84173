// A simulated kubelet's pod sync, level-based like the real one: a pod bound to the node
// gets its runtime entry (pod IP, sandbox) and one container per spec container, started
// by containers.ts; a changed image kills and recreates the container; a deleted pod's
// containers are stopped and its deletion confirmed; a pod gone from the API is forgotten.

import { isRecord, nowRfc3339, type KubeObject } from '../types.js';
import { startContainer, stopContainer } from './containers.js';
import { containerId, type NodeRuntime, type RuntimeContainer } from './runtime.js';
import { writeStatus } from './status.js';

/** The pod is gone from the API: forget its containers. */
export function forgetPod(rt: NodeRuntime, uid: string): void {
  const p = rt.pods.get(uid);
  if (!p) return;
  for (const c of p.containers.values()) {
    if (c.timer) clearTimeout(c.timer);
    rt.runtime.remove(c);
  }
  rt.pods.delete(uid);
}

/** Level-based: make the runtime match the pod, then report status. */
export function syncPod(rt: NodeRuntime, pod: KubeObject): void {
  if (rt.down || rt.stopped) return;
  const uid = pod.metadata.uid!;
  const spec = pod.spec ?? {};
  const status = pod.status ?? {};
  let p = rt.pods.get(uid);
  if (!p) {
    if (status.phase === 'Failed' || status.phase === 'Succeeded') return;
    p = {
      uid,
      namespace: pod.metadata.namespace!,
      name: pod.metadata.name!,
      podIP: `10.244.${rt.opts.nodeIndex}.${rt.nextIp++}`,
      sandboxId: containerId(),
      startTime: nowRfc3339(),
      containers: new Map(),
      final: false,
      terminating: false,
    };
    rt.pods.set(uid, p);
  }
  if (pod.metadata.deletionTimestamp) {
    if (!p.terminating) {
      p.terminating = true;
      for (const c of p.containers.values()) {
        if (c.phase === 'running') rt.recorder.record(pod, 'Normal', 'Killing', `Stopping container ${c.name}`, 'kubelet', rt.node);
        stopContainer(rt, c, 0, 'Completed');
      }
      writeStatus(rt, pod.metadata.namespace!, pod.metadata.name!);
      // The containers stopped: the kubelet confirms the deletion (grace period 0).
      const t = setTimeout(
        () => {
          if (!rt.stopped && !rt.down) rt.api.finishPodDeletion(rt.podType, p.namespace, p.name, uid);
        },
        Math.min(rt.opts.tickMs, 50),
      );
      t.unref();
    }
    return;
  }
  if (p.final) return;
  const containers = Array.isArray(spec.containers) ? spec.containers.filter(isRecord) : [];
  for (const cs of containers) {
    const name = String(cs.name);
    const image = String(cs.image);
    const rc = p.containers.get(name);
    if (!rc) {
      const fresh: RuntimeContainer = {
        name,
        image,
        imageID: '',
        id: '',
        phase: 'waiting',
        waiting: { reason: 'ContainerCreating' },
        restartCount: 0,
        everStarted: false,
        state: { counter: 0, data: Buffer.alloc(0), flags: {}, crashOnRestore: false },
        logs: [],
        previousLogs: [],
        backoffMs: 0,
        lastFailureAt: 0,
        attempt: 0,
      };
      p.containers.set(name, fresh);
      startContainer(rt, p, fresh);
    } else if (rc.image !== image) {
      // The container's definition changed: the kubelet kills and recreates it.
      rt.recorder.record(pod, 'Normal', 'Killing', `Container ${name} definition changed, will be restarted`, 'kubelet', rt.node);
      if (rc.phase === 'running') stopContainer(rt, rc, 0, 'Completed');
      if (rc.terminated) rc.lastTerminated = rc.terminated;
      rc.terminated = undefined;
      rc.previousLogs = rc.logs;
      rc.logs = [];
      rc.image = image;
      rc.backoffMs = 0;
      if (rc.timer) clearTimeout(rc.timer);
      startContainer(rt, p, rc);
    }
  }
  writeStatus(rt, p.namespace, p.name);
}
