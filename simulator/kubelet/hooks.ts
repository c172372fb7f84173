// The kubelet side of the SimulatedCluster's hooks: killing a container (its process exits,
// or is OOM-killed, and containers.ts restarts it per restartPolicy), node-pressure eviction
// by the kubelet's eviction manager (phase Failed, reason Evicted), and reading or changing a
// container's simulated state (counter, data block, flags, crashOnRestore).

import type { FlagValue } from '../state.js';
import { withCondition } from '../types.js';
import { stopContainer } from './containers.js';
import type { ContainerSnapshot, NodeRuntime } from './runtime.js';
import { buildStatus } from './status.js';

export function killContainer(rt: NodeRuntime, namespace: string, pod: string, container: string, opts: { exitCode?: number; oomKilled?: boolean } = {}): void {
  const p = rt.find(namespace, pod);
  const c = p?.containers.get(container);
  if (!p || !c) throw new Error(`killContainer: no container ${namespace}/${pod}/${container} on node ${rt.node}`);
  if (c.phase !== 'running') throw new Error(`killContainer: container ${namespace}/${pod}/${container} is not running (${c.waiting?.reason ?? c.phase})`);
  const exitCode = opts.exitCode ?? (opts.oomKilled ? 137 : 1);
  // The runtime kills the process; its exit (a real one's real exit code) restarts it per restartPolicy.
  rt.runtime.kill(p, c, exitCode, opts.oomKilled ? 'OOMKilled' : exitCode === 0 ? 'Completed' : 'Error');
}

/** Node-pressure eviction, as the kubelet's eviction manager does it. */
export function evictPod(rt: NodeRuntime, namespace: string, pod: string, message?: string): void {
  const p = rt.find(namespace, pod);
  if (!p) throw new Error(`evictPod: no pod ${namespace}/${pod} on node ${rt.node}`);
  const msg = message ?? 'The node was low on resource: memory. Threshold quantity: 100Mi, available: 42Mi. ';
  p.final = true;
  for (const c of p.containers.values()) {
    if (c.phase === 'running') stopContainer(rt, c, 137, 'Error');
    else stopContainer(rt, c, 137, 'ContainerStatusUnknown');
  }
  const current = rt.currentPod(p);
  if (current) rt.recorder.record(current, 'Warning', 'Evicted', msg, 'kubelet', rt.node);
  rt.api.mutate(
    rt.podType,
    namespace,
    pod,
    (o) => {
      const st = buildStatus(rt, o, p);
      st.phase = 'Failed';
      st.reason = 'Evicted';
      st.message = msg;
      st.conditions = withCondition(st, { type: 'DisruptionTarget', status: 'True', reason: 'TerminationByKubelet', message: msg });
      o.status = st;
    },
    'status',
  );
}

export function containerState(rt: NodeRuntime, namespace: string, pod: string, container: string): ContainerSnapshot | undefined {
  const c = rt.find(namespace, pod)?.containers.get(container);
  if (!c || !c.everStarted) return undefined;
  const snap: ContainerSnapshot = {
    counter: c.state.counter,
    data: Buffer.from(c.state.data),
    flags: { ...c.state.flags },
    crashOnRestore: c.state.crashOnRestore,
    running: c.phase === 'running',
    restartCount: c.restartCount,
    containerID: `cri-o://${c.id}`,
    imageID: c.imageID,
  };
  if (c.restoredFrom) snap.restoredFrom = c.restoredFrom;
  if (c.startTimings) snap.startTimings = { ...c.startTimings };
  return snap;
}

export function setContainerState(
  rt: NodeRuntime,
  namespace: string,
  pod: string,
  container: string,
  patch: { counter?: number; data?: Buffer; flags?: Record<string, FlagValue>; crashOnRestore?: boolean },
): void {
  const c = rt.find(namespace, pod)?.containers.get(container);
  if (!c || !c.everStarted) throw new Error(`setContainerState: container ${namespace}/${pod}/${container} has not started on node ${rt.node}`);
  if (patch.counter !== undefined) c.state.counter = patch.counter;
  if (patch.data !== undefined) c.state.data = Buffer.from(patch.data);
  if (patch.flags !== undefined) c.state.flags = { ...c.state.flags, ...patch.flags };
  if (patch.crashOnRestore !== undefined) c.state.crashOnRestore = patch.crashOnRestore;
}
