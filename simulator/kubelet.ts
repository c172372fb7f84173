// A simulated kubelet per node: runs the pods bound to its node through a container
// runtime (simulated: a ticking counter plus a data block; or podman: real containers
// checkpointed by CRIU), reports pod status, restarts crashed containers with
// CrashLoopBackOff, restores containers from checkpoint images, and serves the kubelet
// checkpoint API behind the API server's node proxy and on its own HTTPS port. This file is the Kubelet the cluster
// holds (one per node); each part lives in kubelet/:
//   kubelet/runtime.ts         the node's pods and containers, options, shared lookups
//   kubelet/container-runtime.ts  the runtime interface (create, restore, checkpoint, kill, remove)
//   kubelet/simulated-runtime.ts  the simulated runtime; kubelet/podman-runtime.ts the podman one
//   kubelet/pod-sync.ts        a bound pod → its containers; deletion; forgetting a pod
//   kubelet/containers.ts      starting a container (image pull, back-off), stopping, restarting (CrashLoopBackOff)
//   kubelet/restore.ts         restoring a container from a checkpoint image, and its checks
//   kubelet/status.ts          the pod status the kubelet reports
//   kubelet/logs.ts            container logs, following them
//   kubelet/hooks.ts           kill a container, node-pressure eviction, a container's simulated state
//   kubelet/checkpoint-api.ts  the kubelet HTTP API: /checkpoint and its answers, /healthz
//   kubelet/https-server.ts    the kubelet's own HTTPS port; kubelet/auth.ts its authentication and authorization

import type { ObjectApi } from './api.js';
import type { EventRecorder } from './events.js';
import type { ResourceType } from './resources.js';
import type { ProxyRequest, ProxyResponse } from './server/node-backend.js';
import type { FlagValue } from './state.js';
import type { KubeObject } from './types.js';
import { serveKubeletApi, type CheckpointAccess } from './kubelet/checkpoint-api.js';
import { containerState, evictPod, killContainer, setContainerState } from './kubelet/hooks.js';
import { containerExited } from './kubelet/containers.js';
import type { RuntimeKind } from './kubelet/container-runtime.js';
import { appendLog, followLogs, readLogs } from './kubelet/logs.js';
import { forgetPod, syncPod } from './kubelet/pod-sync.js';
import { simulatedRuntime } from './kubelet/simulated-runtime.js';
import { NodeRuntime, type CheckpointFailure, type ContainerSnapshot, type KubeletOptions } from './kubelet/runtime.js';

export type { CheckpointFailure, ContainerSnapshot, KubeletTiming } from './kubelet/runtime.js';

export class Kubelet {
  private readonly rt: NodeRuntime;
  checkpointFailures: CheckpointFailure[] = [];
  /** Whether the API server's kubelet client identity may create nodes/checkpoint. */
  apiServerMayCheckpoint = true;

  constructor(
    api: ObjectApi,
    podType: ResourceType,
    recorder: EventRecorder,
    readonly opts: KubeletOptions,
  ) {
    this.rt = new NodeRuntime(api, podType, recorder, opts);
    const rt = this.rt;
    this.rt.runtime = (opts.containerRuntime ?? simulatedRuntime)(rt, {
      exited: (p, c, attempt, exitCode, reason) => {
        if (rt.stopped || c.attempt !== attempt || rt.pods.get(p.uid) !== p) return;
        containerExited(rt, p, c, exitCode, reason);
      },
      log: (p, c, line) => appendLog(rt, p, c, line),
    });
  }

  /** Which container runtime this kubelet runs its containers with. */
  get runtime(): RuntimeKind {
    return this.rt.runtime.kind;
  }

  /** The node is down: no syncs, ticks or status writes (the API server answers its proxy with 503). */
  get down(): boolean {
    return this.rt.down;
  }

  set down(value: boolean) {
    if (this.rt.down !== value) this.rt.runtime.nodeDown(value);
    this.rt.down = value;
  }

  /** Stops the kubelet; resolves once its runtime removed every container it ran. */
  stop(): Promise<void> {
    this.rt.stopped = true;
    for (const p of this.rt.pods.values()) for (const c of p.containers.values()) if (c.timer) clearTimeout(c.timer);
    const closed = this.rt.runtime.close();
    this.rt.pods.clear();
    return closed;
  }

  get node(): string {
    return this.opts.node;
  }

  // ---------- pod sync (kubelet/pod-sync.ts) ----------

  /** The pod is gone from the API: forget its containers. */
  forget(uid: string): void {
    forgetPod(this.rt, uid);
  }

  /** Level-based: make the runtime match the pod, then report status. */
  sync(pod: KubeObject): void {
    syncPod(this.rt, pod);
  }

  // ---------- hooks (kubelet/hooks.ts) ----------

  hasPod(namespace: string, pod: string): boolean {
    return this.rt.find(namespace, pod) !== undefined;
  }

  killContainer(namespace: string, pod: string, container: string, opts: { exitCode?: number; oomKilled?: boolean } = {}): void {
    killContainer(this.rt, namespace, pod, container, opts);
  }

  /** Node-pressure eviction, as the kubelet's eviction manager does it. */
  evictPod(namespace: string, pod: string, message?: string): void {
    evictPod(this.rt, namespace, pod, message);
  }

  containerState(namespace: string, pod: string, container: string): ContainerSnapshot | undefined {
    return containerState(this.rt, namespace, pod, container);
  }

  setContainerState(namespace: string, pod: string, container: string, patch: { counter?: number; data?: Buffer; flags?: Record<string, FlagValue>; crashOnRestore?: boolean }): void {
    setContainerState(this.rt, namespace, pod, container, patch);
  }

  // ---------- logs (kubelet/logs.ts) ----------

  logs(pod: KubeObject, container: string | undefined, previous: boolean): string[] {
    return readLogs(this.rt, pod, container, previous);
  }

  followLogs(pod: KubeObject, container: string | undefined, onLine: (line: string) => void): () => void {
    return followLogs(this.rt, pod, container, onLine);
  }

  // ---------- kubelet HTTP API behind the node proxy (kubelet/checkpoint-api.ts) ----------

  serve(req: ProxyRequest): Promise<ProxyResponse> {
    return serveKubeletApi(this.rt, this, req);
  }

  /**
   * The same API on the kubelet's own HTTPS port (kubelet/https-server.ts), once the
   * caller is authorized there: the API server's kubelet-client identity plays no part.
   */
  serveDirect(req: ProxyRequest): Promise<ProxyResponse> {
    const failures = (): CheckpointFailure[] => this.checkpointFailures;
    const access: CheckpointAccess = {
      get checkpointFailures() {
        return failures();
      },
      apiServerMayCheckpoint: true,
    };
    return serveKubeletApi(this.rt, access, req);
  }
}
