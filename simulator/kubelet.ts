// A simulated kubelet per node: runs the pods bound to its node as simulated containers
// (a ticking counter plus a data block), reports pod status, restarts crashed containers
// with CrashLoopBackOff, restores containers from checkpoint images, and serves the
// kubelet checkpoint API behind the API server's node proxy.

import { randomBytes } from 'node:crypto';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ObjectApi } from './api.js';
import { buildCheckpointArchive, readTar } from './archive.js';
import { ApiError, badRequest } from './errors.js';
import type { EventRecorder } from './events.js';
import { ImagePullError, resolveImage, syntheticImageId, type ImageSource } from './images.js';
import type { ResourceType } from './resources.js';
import type { ProxyRequest, ProxyResponse } from './server/node-backend.js';
import { decodePages, seededBytes, tick, type ContainerState, type FlagValue } from './state.js';
import { clone, isRecord, nowRfc3339, withCondition, type KubeObject } from './types.js';

export interface KubeletTiming {
  /** Interval of the simulated containers' counter. */
  tickMs: number;
  /** First CrashLoopBackOff delay; doubles up to backoffMaxMs. */
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** A container that ran this long without failing has its back-off reset. */
  backoffResetMs: number;
  /** Delay before retrying a failed image pull. */
  imagePullBackoffMs: number;
}

interface KubeletOptions extends KubeletTiming {
  node: string;
  nodeIndex: number;
  checkpointDir: string;
  /** Size of each container's data block (bytes). */
  dataSize: number;
  imageSources: Record<string, ImageSource>;
  /** ContainerCheckpoint feature gate (default on, as since Kubernetes 1.30). */
  checkpointFeatureGate: boolean;
}

export interface CheckpointFailure {
  namespace?: string;
  pod?: string;
  container?: string;
  /** How many checkpoint calls fail (default: until cleared). */
  count?: number;
  message?: string;
}

export interface ContainerSnapshot {
  counter: number;
  data: Buffer;
  flags: Record<string, FlagValue>;
  crashOnRestore: boolean;
  running: boolean;
  restartCount: number;
  /** The checkpoint image this container was restored from, if any. */
  restoredFrom?: string;
  containerID: string;
  imageID: string;
}

interface Terminated {
  exitCode: number;
  reason: string;
  message?: string;
  startedAt: string;
  finishedAt: string;
  containerID: string;
}

interface RuntimeContainer {
  name: string;
  /** The spec image this container was created from. */
  image: string;
  imageID: string;
  id: string;
  phase: 'waiting' | 'running' | 'terminated';
  waiting?: { reason: string; message?: string };
  terminated?: Terminated;
  lastTerminated?: Terminated;
  startedAt?: string;
  restartCount: number;
  /** Whether a container has ever started (restartCount counts the starts after the first). */
  everStarted: boolean;
  state: ContainerState;
  restoredFrom?: string;
  /**
   * What a restored container's root filesystem comes from: the checkpoint's
   * base image (config.dump), which CRI-O creates it from, so its own
   * checkpoints name that image, never the checkpoint image in the pod spec.
   */
  rootfs?: RootfsImage;
  logs: string[];
  previousLogs: string[];
  backoffMs: number;
  lastFailureAt: number;
  /** Bumped on each (re)start attempt, so stale async work is dropped. */
  attempt: number;
  timer?: NodeJS.Timeout;
}

interface RuntimePod {
  uid: string;
  namespace: string;
  name: string;
  podIP: string;
  sandboxId: string;
  startTime: string;
  containers: Map<string, RuntimeContainer>;
  /** Evicted or otherwise finished by the kubelet: no more restarts. */
  final: boolean;
  terminating: boolean;
}

interface RootfsImage {
  /** config.dump's rootfsImageName: the image reference the workload asked for. */
  name: string;
  /** config.dump's rootfsImageRef: that image's ID. */
  ref: string;
}

const MAX_LOG_LINES = 2000;

function containerId(): string {
  return randomBytes(32).toString('hex');
}

function fmtDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  const s = ms / 1000;
  if (s < 60) return `${Number.isInteger(s) ? s : s.toFixed(1)}s`;
  return `${Math.floor(s / 60)}m${Math.round(s % 60)}s`;
}

export class Kubelet {
  down = false;
  private readonly pods = new Map<string, RuntimePod>();
  private readonly followers = new Map<string, Set<(line: string) => void>>();
  private nextIp = 2;
  private tickTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  checkpointFailures: CheckpointFailure[] = [];
  /** Whether the API server's kubelet client identity may create nodes/checkpoint. */
  apiServerMayCheckpoint = true;

  constructor(
    private readonly api: ObjectApi,
    private readonly podType: ResourceType,
    private readonly recorder: EventRecorder,
    readonly opts: KubeletOptions,
  ) {
    this.tickTimer = setInterval(() => this.tick(), opts.tickMs);
    this.tickTimer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.tickTimer) clearInterval(this.tickTimer);
    for (const p of this.pods.values()) for (const c of p.containers.values()) if (c.timer) clearTimeout(c.timer);
    this.pods.clear();
  }

  get node(): string {
    return this.opts.node;
  }

  private tick(): void {
    if (this.down || this.stopped) return;
    for (const p of this.pods.values()) {
      for (const c of p.containers.values()) {
        if (c.phase !== 'running') continue;
        tick(c.state);
        this.log(p, c, `counter=${c.state.counter}`);
      }
    }
  }

  private log(p: RuntimePod, c: RuntimeContainer, line: string): void {
    c.logs.push(line);
    if (c.logs.length > MAX_LOG_LINES) c.logs.splice(0, c.logs.length - MAX_LOG_LINES);
    for (const f of this.followers.get(`${p.uid}/${c.name}`) ?? []) f(line);
  }

  // ---------- pod sync ----------

  /** The pod is gone from the API: forget its containers. */
  forget(uid: string): void {
    const p = this.pods.get(uid);
    if (!p) return;
    for (const c of p.containers.values()) if (c.timer) clearTimeout(c.timer);
    this.pods.delete(uid);
  }

  /** Level-based: make the runtime match the pod, then report status. */
  sync(pod: KubeObject): void {
    if (this.down || this.stopped) return;
    const uid = pod.metadata.uid!;
    const spec = pod.spec ?? {};
    const status = pod.status ?? {};
    let p = this.pods.get(uid);
    if (!p) {
      if (status.phase === 'Failed' || status.phase === 'Succeeded') return;
      p = {
        uid,
        namespace: pod.metadata.namespace!,
        name: pod.metadata.name!,
        podIP: `10.244.${this.opts.nodeIndex}.${this.nextIp++}`,
        sandboxId: containerId(),
        startTime: nowRfc3339(),
        containers: new Map(),
        final: false,
        terminating: false,
      };
      this.pods.set(uid, p);
    }
    if (pod.metadata.deletionTimestamp) {
      if (!p.terminating) {
        p.terminating = true;
        for (const c of p.containers.values()) {
          if (c.phase === 'running') this.recorder.record(pod, 'Normal', 'Killing', `Stopping container ${c.name}`, 'kubelet', this.node);
          this.stopContainer(c, 0, 'Completed');
        }
        this.writeStatus(pod.metadata.namespace!, pod.metadata.name!);
        // The containers stopped: the kubelet confirms the deletion (grace period 0).
        const t = setTimeout(
          () => {
            if (!this.stopped && !this.down) this.api.finishPodDeletion(this.podType, p.namespace, p.name, uid);
          },
          Math.min(this.opts.tickMs, 50),
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
        this.startContainer(p, fresh);
      } else if (rc.image !== image) {
        // The container's definition changed: the kubelet kills and recreates it.
        this.recorder.record(pod, 'Normal', 'Killing', `Container ${name} definition changed, will be restarted`, 'kubelet', this.node);
        if (rc.phase === 'running') this.stopContainer(rc, 0, 'Completed');
        if (rc.terminated) rc.lastTerminated = rc.terminated;
        rc.terminated = undefined;
        rc.previousLogs = rc.logs;
        rc.logs = [];
        rc.image = image;
        rc.backoffMs = 0;
        if (rc.timer) clearTimeout(rc.timer);
        this.startContainer(p, rc);
      }
    }
    this.writeStatus(p.namespace, p.name);
  }

  private currentPod(p: RuntimePod): KubeObject | undefined {
    const pod = this.api.tryGet(this.podType, p.namespace, p.name);
    return pod && pod.metadata.uid === p.uid ? pod : undefined;
  }

  private stopContainer(c: RuntimeContainer, exitCode: number, reason: string): void {
    if (c.timer) clearTimeout(c.timer);
    c.attempt++;
    if (c.phase === 'running') {
      c.terminated = { exitCode, reason, startedAt: c.startedAt ?? nowRfc3339(), finishedAt: nowRfc3339(), containerID: `cri-o://${c.id}` };
    }
    c.phase = 'terminated';
    c.waiting = undefined;
  }

  private startContainer(p: RuntimePod, c: RuntimeContainer): void {
    const attempt = ++c.attempt;
    const image = c.image;
    const stale = (): boolean => this.stopped || c.attempt !== attempt || this.pods.get(p.uid) !== p || p.final || p.terminating;
    void (async () => {
      let restored: { state: ContainerState; ref: string; checkpointedAt: string; rootfs: RootfsImage } | undefined;
      let imageID: string;
      try {
        const resolved = await resolveImage(image, this.opts.imageSources);
        if (stale()) return;
        imageID = resolved?.imageID ?? syntheticImageId(image);
        if (resolved?.checkpoint) {
          if (resolved.checkpoint.containerName !== c.name) {
            throw new CreateContainerError(`checkpoint image ${image} was created for container "${resolved.checkpoint.containerName}", cannot restore it into container "${c.name}"`);
          }
          const files = await readTar(resolved.checkpoint.archive).catch((err: unknown) => {
            throw new CreateContainerError(`failed to read checkpoint archive of ${image}: ${err instanceof Error ? err.message : String(err)}`);
          });
          const pages = files.get('checkpoint/pages-1.img');
          if (!pages) throw new CreateContainerError(`checkpoint image ${image}: archive has no checkpoint/pages-1.img`);
          let decoded;
          try {
            decoded = decodePages(pages);
          } catch (err) {
            throw new CreateContainerError(`restoring container ${c.name} from ${image}: ${err instanceof Error ? err.message : String(err)}`);
          }
          restored = { state: decoded.state, ref: image, checkpointedAt: decoded.header.checkpointedAt, rootfs: rootfsOf(files.get('config.dump'), image) };
        }
      } catch (err) {
        if (stale()) return;
        const pod = this.currentPod(p);
        if (err instanceof CreateContainerError) {
          c.phase = 'waiting';
          c.waiting = { reason: 'CreateContainerError', message: err.message };
          if (pod) this.recorder.record(pod, 'Warning', 'Failed', `Error: ${err.message}`, 'kubelet', this.node);
        } else {
          const message = err instanceof ImagePullError ? err.message : `pulling image ${image}: ${err instanceof Error ? err.message : String(err)}`;
          c.phase = 'waiting';
          c.waiting = { reason: 'ErrImagePull', message };
          if (pod) {
            this.recorder.record(pod, 'Warning', 'Failed', `Failed to pull image "${image}": ${message}`, 'kubelet', this.node);
            this.recorder.record(pod, 'Warning', 'Failed', 'Error: ErrImagePull', 'kubelet', this.node);
          }
          this.writeStatus(p.namespace, p.name);
          // ErrImagePull turns into ImagePullBackOff while the kubelet waits to retry.
          c.timer = setTimeout(
            () => {
              if (stale()) return;
              c.waiting = { reason: 'ImagePullBackOff', message: `Back-off pulling image "${image}"` };
              this.writeStatus(p.namespace, p.name);
              c.timer = setTimeout(() => {
                if (!stale()) this.startContainer(p, c);
              }, this.opts.imagePullBackoffMs);
              c.timer.unref();
            },
            Math.max(1, Math.floor(this.opts.imagePullBackoffMs / 4)),
          );
          c.timer.unref();
          return;
        }
        this.writeStatus(p.namespace, p.name);
        c.timer = setTimeout(() => {
          if (!stale()) this.startContainer(p, c);
        }, this.opts.imagePullBackoffMs);
        c.timer.unref();
        return;
      }
      if (stale()) return;
      if (c.everStarted) c.restartCount++;
      c.everStarted = true;
      c.id = containerId();
      c.imageID = imageID;
      c.phase = 'running';
      c.waiting = undefined;
      c.terminated = undefined;
      c.startedAt = nowRfc3339();
      if (restored) {
        c.state = restored.state;
        c.restoredFrom = restored.ref;
        c.rootfs = restored.rootfs;
        this.log(p, c, `restored from checkpoint image ${restored.ref} (checkpointed ${restored.checkpointedAt}): counter=${c.state.counter}`);
      } else {
        c.state = {
          counter: 0,
          data: seededBytes(`${p.namespace}/${p.name}/${c.name}`, this.opts.dataSize),
          flags: {},
          crashOnRestore: false,
        };
        c.restoredFrom = undefined;
        c.rootfs = undefined;
        this.log(p, c, `starting fresh: counter=0`);
      }
      const pod = this.currentPod(p);
      if (pod) {
        this.recorder.record(pod, 'Normal', 'Pulled', `Container image "${image}" already present on machine`, 'kubelet', this.node);
        this.recorder.record(pod, 'Normal', 'Created', `Created container ${c.name}`, 'kubelet', this.node);
        this.recorder.record(
          pod,
          'Normal',
          restored ? 'Restored' : 'Started',
          restored ? `Restored container ${c.name} from checkpoint ${image}` : `Started container ${c.name}`,
          'kubelet',
          this.node,
        );
      }
      this.writeStatus(p.namespace, p.name);
      if (restored?.state.crashOnRestore) {
        // The restored process dies at once: the restore-loop scenario.
        c.timer = setTimeout(
          () => {
            if (c.attempt !== attempt || c.phase !== 'running') return;
            this.log(p, c, 'crashOnRestore: exiting with code 1');
            this.containerExited(p, c, 1, 'Error');
          },
          Math.max(1, Math.floor(this.opts.tickMs / 2)),
        );
        c.timer.unref();
      }
    })().catch((err: unknown) => {
      console.error(`simulator: kubelet ${this.node}: starting ${p.namespace}/${p.name}/${c.name} failed:`, err);
    });
  }

  /** A running container's process exited: restart per restartPolicy, with back-off. */
  private containerExited(p: RuntimePod, c: RuntimeContainer, exitCode: number, reason: string, message?: string): void {
    if (c.phase !== 'running') return;
    this.stopContainer(c, exitCode, reason);
    if (message && c.terminated) c.terminated.message = message;
    c.lastTerminated = c.terminated;
    c.previousLogs = c.logs;
    c.logs = [];
    const pod = this.currentPod(p);
    const policy = pod && isRecord(pod.spec) ? String(pod.spec.restartPolicy ?? 'Always') : 'Always';
    const restart = policy === 'Always' || (policy === 'OnFailure' && exitCode !== 0);
    if (!restart || !pod) {
      this.writeStatus(p.namespace, p.name);
      return;
    }
    c.terminated = undefined;
    const now = Date.now();
    let delay = 0;
    if (c.backoffMs > 0 && now - c.lastFailureAt < this.opts.backoffResetMs) {
      delay = c.backoffMs;
      c.backoffMs = Math.min(c.backoffMs * 2, this.opts.backoffMaxMs);
    } else c.backoffMs = this.opts.backoffBaseMs;
    c.lastFailureAt = now;
    if (delay === 0) {
      this.startContainer(p, c);
      return;
    }
    c.phase = 'waiting';
    c.waiting = {
      reason: 'CrashLoopBackOff',
      message: `back-off ${fmtDuration(delay)} restarting failed container=${c.name} pod=${p.name}_${p.namespace}(${p.uid})`,
    };
    this.recorder.record(pod, 'Warning', 'BackOff', 'Back-off restarting failed container', 'kubelet', this.node);
    this.writeStatus(p.namespace, p.name);
    const attempt = c.attempt;
    c.timer = setTimeout(() => {
      if (this.stopped || c.attempt !== attempt || p.final || p.terminating) return;
      this.startContainer(p, c);
    }, delay);
    c.timer.unref();
  }

  // ---------- status ----------

  private writeStatus(namespace: string, name: string): void {
    if (this.down || this.stopped) return;
    const pod = this.api.tryGet(this.podType, namespace, name);
    if (!pod) return;
    const p = this.pods.get(pod.metadata.uid!);
    if (!p) return;
    try {
      this.api.mutate(
        this.podType,
        namespace,
        name,
        (o) => {
          o.status = this.buildStatus(o, p);
        },
        'status',
      );
    } catch (err) {
      if (!(err instanceof ApiError && err.code === 404)) throw err;
    }
  }

  private buildStatus(pod: KubeObject, p: RuntimePod): Record<string, unknown> {
    const prev = clone(pod.status ?? {});
    const specContainers = Array.isArray(pod.spec?.containers) ? pod.spec.containers.filter(isRecord) : [];
    const statuses = specContainers.map((cs) => {
      const c = p.containers.get(String(cs.name));
      const base: Record<string, unknown> = {
        name: String(cs.name),
        image: String(cs.image),
        imageID: c?.imageID ?? '',
        ready: c?.phase === 'running' && !p.terminating,
        restartCount: c?.restartCount ?? 0,
        started: c?.phase === 'running',
      };
      if (c?.id) base.containerID = `cri-o://${c.id}`;
      if (!c || c.phase === 'waiting') base.state = { waiting: { reason: c?.waiting?.reason ?? 'ContainerCreating', ...(c?.waiting?.message ? { message: c.waiting.message } : {}) } };
      else if (c.phase === 'running') base.state = { running: { startedAt: c.startedAt } };
      else base.state = { terminated: { ...c.terminated } };
      base.lastState = c?.lastTerminated ? { terminated: { ...c.lastTerminated } } : {};
      return base;
    });
    const allRunning = statuses.length > 0 && statuses.every((s) => s.ready === true);
    const anyStarted = [...p.containers.values()].some((c) => c.everStarted);
    let phase = String(prev.phase ?? 'Pending');
    if (!p.final) {
      const all = [...p.containers.values()];
      const terminatedAll = all.length > 0 && all.every((c) => c.phase === 'terminated');
      // Under restartPolicy Always the kubelet restarts exited containers and the pod stays
      // Running; only OnFailure (all exit 0) and Never end the pod.
      const policy = isRecord(pod.spec) ? String(pod.spec.restartPolicy ?? 'Always') : 'Always';
      const succeeded = all.every((c) => c.terminated?.exitCode === 0);
      if (terminatedAll && !p.terminating && (policy === 'Never' || (policy === 'OnFailure' && succeeded))) {
        phase = succeeded ? 'Succeeded' : 'Failed';
      } else if (anyStarted) phase = 'Running';
      else phase = 'Pending';
    }
    const prevConds = Array.isArray(prev.conditions) ? prev.conditions.filter(isRecord) : [];
    const cond = (type: string, ok: boolean, reason?: string): Record<string, unknown> => {
      const old = prevConds.find((x) => x.type === type);
      const status = ok ? 'True' : 'False';
      const out: Record<string, unknown> = {
        type,
        status,
        lastProbeTime: null,
        lastTransitionTime: old && old.status === status ? old.lastTransitionTime : nowRfc3339(),
      };
      if (reason && !ok) out.reason = reason;
      return out;
    };
    const keep = prevConds.filter((x) => x.type === 'PodScheduled' || x.type === 'DisruptionTarget');
    const conditions = [
      cond('PodReadyToStartContainers', !p.final && !p.terminating),
      cond('Initialized', true),
      cond('Ready', allRunning && !p.final, 'ContainersNotReady'),
      cond('ContainersReady', allRunning && !p.final, 'ContainersNotReady'),
      ...keep,
    ];
    const out: Record<string, unknown> = {
      ...prev,
      phase,
      conditions,
      hostIP: this.hostIP(),
      hostIPs: [{ ip: this.hostIP() }],
      podIP: p.podIP,
      podIPs: [{ ip: p.podIP }],
      startTime: p.startTime,
      containerStatuses: statuses,
      qosClass: prev.qosClass ?? 'BestEffort',
    };
    return out;
  }

  private hostIP(): string {
    return `192.168.49.${this.opts.nodeIndex + 2}`;
  }

  // ---------- hooks ----------

  private find(namespace: string, pod: string): RuntimePod | undefined {
    for (const p of this.pods.values()) if (p.namespace === namespace && p.name === pod) return p;
    return undefined;
  }

  hasPod(namespace: string, pod: string): boolean {
    return this.find(namespace, pod) !== undefined;
  }

  killContainer(namespace: string, pod: string, container: string, opts: { exitCode?: number; oomKilled?: boolean } = {}): void {
    const p = this.find(namespace, pod);
    const c = p?.containers.get(container);
    if (!p || !c) throw new Error(`killContainer: no container ${namespace}/${pod}/${container} on node ${this.node}`);
    if (c.phase !== 'running') throw new Error(`killContainer: container ${namespace}/${pod}/${container} is not running (${c.waiting?.reason ?? c.phase})`);
    const exitCode = opts.exitCode ?? (opts.oomKilled ? 137 : 1);
    this.containerExited(p, c, exitCode, opts.oomKilled ? 'OOMKilled' : exitCode === 0 ? 'Completed' : 'Error');
  }

  /** Node-pressure eviction, as the kubelet's eviction manager does it. */
  evictPod(namespace: string, pod: string, message?: string): void {
    const p = this.find(namespace, pod);
    if (!p) throw new Error(`evictPod: no pod ${namespace}/${pod} on node ${this.node}`);
    const msg = message ?? 'The node was low on resource: memory. Threshold quantity: 100Mi, available: 42Mi. ';
    p.final = true;
    for (const c of p.containers.values()) {
      if (c.phase === 'running') this.stopContainer(c, 137, 'Error');
      else this.stopContainer(c, 137, 'ContainerStatusUnknown');
    }
    const current = this.currentPod(p);
    if (current) this.recorder.record(current, 'Warning', 'Evicted', msg, 'kubelet', this.node);
    this.api.mutate(
      this.podType,
      namespace,
      pod,
      (o) => {
        const st = this.buildStatus(o, p);
        st.phase = 'Failed';
        st.reason = 'Evicted';
        st.message = msg;
        st.conditions = withCondition(st, { type: 'DisruptionTarget', status: 'True', reason: 'TerminationByKubelet', message: msg });
        o.status = st;
      },
      'status',
    );
  }

  containerState(namespace: string, pod: string, container: string): ContainerSnapshot | undefined {
    const c = this.find(namespace, pod)?.containers.get(container);
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
    return snap;
  }

  setContainerState(namespace: string, pod: string, container: string, patch: { counter?: number; data?: Buffer; flags?: Record<string, FlagValue>; crashOnRestore?: boolean }): void {
    const c = this.find(namespace, pod)?.containers.get(container);
    if (!c || !c.everStarted) throw new Error(`setContainerState: container ${namespace}/${pod}/${container} has not started on node ${this.node}`);
    if (patch.counter !== undefined) c.state.counter = patch.counter;
    if (patch.data !== undefined) c.state.data = Buffer.from(patch.data);
    if (patch.flags !== undefined) c.state.flags = { ...c.state.flags, ...patch.flags };
    if (patch.crashOnRestore !== undefined) c.state.crashOnRestore = patch.crashOnRestore;
  }

  // ---------- logs ----------

  private logContainer(pod: KubeObject, container: string | undefined): { p: RuntimePod; c: RuntimeContainer; name: string } {
    const names = (Array.isArray(pod.spec?.containers) ? pod.spec.containers.filter(isRecord) : []).map((x) => String(x.name));
    const podName = pod.metadata.name!;
    let name = container;
    if (!name) {
      if (names.length !== 1) throw badRequest(`a container name must be specified for pod ${podName}, choose one of: [${names.join(' ')}]`);
      name = names[0]!;
    }
    if (!names.includes(name)) throw badRequest(`container ${name} is not valid for pod ${podName}`);
    const p = this.pods.get(pod.metadata.uid!);
    const c = p?.containers.get(name);
    if (!p || !c || !c.everStarted) {
      const reason = c?.waiting?.reason ?? 'ContainerCreating';
      throw badRequest(`container "${name}" in pod "${podName}" is waiting to start: ${reason}`);
    }
    return { p, c, name };
  }

  logs(pod: KubeObject, container: string | undefined, previous: boolean): string[] {
    const { c, name } = this.logContainer(pod, container);
    if (previous) {
      if (!c.lastTerminated) throw badRequest(`previous terminated container "${name}" in pod "${pod.metadata.name}" not found`);
      return [...c.previousLogs];
    }
    return [...c.logs];
  }

  followLogs(pod: KubeObject, container: string | undefined, onLine: (line: string) => void): () => void {
    const { p, name } = this.logContainer(pod, container);
    const key = `${p.uid}/${name}`;
    const set = this.followers.get(key) ?? new Set();
    set.add(onLine);
    this.followers.set(key, set);
    return () => set.delete(onLine);
  }

  // ---------- kubelet HTTP API (behind the node proxy) ----------

  async serve(req: ProxyRequest): Promise<ProxyResponse> {
    const text = (status: number, body: string): ProxyResponse => ({ status, contentType: 'text/plain; charset=utf-8', body });
    const m = /^\/checkpoint\/([^/]+)\/([^/]+)\/([^/]+)\/?$/.exec(req.path);
    if (m && this.opts.checkpointFeatureGate) {
      if (req.method !== 'create') return text(405, '405: Method Not Allowed');
      if (!this.apiServerMayCheckpoint) {
        return text(403, 'Forbidden (user=kube-apiserver-kubelet-client, verb=create, resource=nodes, subresource=checkpoint)');
      }
      return this.checkpoint(m[1]!, m[2]!, m[3]!, req.query);
    }
    if (req.path === '/healthz') return text(200, 'ok');
    // Unregistered routes (including /checkpoint with the feature gate off) are plain 404s.
    return text(404, '404 page not found\n');
  }

  private async checkpoint(namespace: string, pod: string, container: string, query: URLSearchParams): Promise<ProxyResponse> {
    const text = (status: number, body: string): ProxyResponse => ({ status, contentType: 'text/plain; charset=utf-8', body });
    const timeout = query.get('timeout');
    if (timeout !== null && !/^\d+$/.test(timeout)) return text(400, `cannot parse value of timeout: "${timeout}"`);
    const p = this.find(namespace, pod);
    if (!p || p.terminating) return text(404, 'pod does not exist');
    const c = p.containers.get(container);
    if (!c) return text(404, `container ${container} does not exist`);
    const failure = this.checkpointFailures.find(
      (f) => (f.namespace === undefined || f.namespace === namespace) && (f.pod === undefined || f.pod === pod) && (f.container === undefined || f.container === container),
    );
    if (failure) {
      if (failure.count !== undefined) {
        failure.count--;
        if (failure.count <= 0) this.checkpointFailures.splice(this.checkpointFailures.indexOf(failure), 1);
      }
      const detail =
        failure.message ?? `rpc error: code = Unknown desc = failed to checkpoint container ${c.id || container}: running "criu" failed: exit status 1: Error (criu/cr-dump.c:2111): Dumping FAILED.`;
      return text(500, `checkpointing of ${namespace}/${pod}/${container} failed (${detail})`);
    }
    if (c.phase !== 'running') {
      return text(500, `checkpointing of ${namespace}/${pod}/${container} failed (rpc error: code = Unknown desc = container ${c.id || container} is not running)`);
    }
    const checkpointedAt = nowRfc3339();
    const fileName = `checkpoint-${pod}_${namespace}-${container}-${checkpointedAt}.tar`;
    const archive = await buildCheckpointArchive({
      namespace,
      pod,
      podUid: p.uid,
      container,
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
    const file = join(this.opts.checkpointDir, fileName);
    await writeFile(file, archive, { mode: 0o600 });
    await chmod(file, 0o600);
    const body = JSON.stringify({ items: [`/var/lib/kubelet/checkpoints/${fileName}`] });
    return { status: 200, contentType: 'application/json', body };
  }
}

/** The base image a checkpoint archive's config.dump names, which CRI-O restores the container's root filesystem from. */
function rootfsOf(configDump: Buffer | undefined, image: string): RootfsImage {
  let config: unknown;
  try {
    config = configDump ? JSON.parse(configDump.toString('utf8')) : undefined;
  } catch (err) {
    throw new CreateContainerError(`checkpoint image ${image}: config.dump is not JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  const name = isRecord(config) ? (config.rootfsImageName ?? config.rootfsImage) : undefined;
  const ref = isRecord(config) ? config.rootfsImageRef : undefined;
  if (typeof name !== 'string' || !name || typeof ref !== 'string' || !ref) {
    throw new CreateContainerError(`checkpoint image ${image}: the archive's config.dump names no rootfs image to restore onto`);
  }
  return { name, ref };
}

class CreateContainerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CreateContainerError';
  }
}
