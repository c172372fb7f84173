// What a simulated kubelet knows of its node: the options it runs with, the pods bound to it
// and their containers (the runtime's view, as CRI-O would hold it), and the lookups the
// other kubelet/ files share. Kubelet (../kubelet.ts) owns one NodeRuntime per node.

import { randomBytes } from 'node:crypto';
import type { ObjectApi } from '../api.js';
import type { EventRecorder } from '../events.js';
import type { ImageSource } from '../images.js';
import type { ResourceType } from '../resources.js';
import type { ContainerState, FlagValue } from '../state.js';
import type { KubeObject } from '../types.js';
import type { ContainerRuntime, ContainerRuntimeFactory } from './container-runtime.js';

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

export interface KubeletOptions extends KubeletTiming {
  node: string;
  nodeIndex: number;
  checkpointDir: string;
  /** Size of each container's data block (bytes). */
  dataSize: number;
  imageSources: Record<string, ImageSource>;
  /** ContainerCheckpoint feature gate (default on, as since Kubernetes 1.30). */
  checkpointFeatureGate: boolean;
  /** The container runtime (default: the simulated one). */
  containerRuntime?: ContainerRuntimeFactory;
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
  startTimings?: StartTimings;
}

export interface StartTimings {
  pullMs: number;
  runtimeMs: number;
}

export interface Terminated {
  exitCode: number;
  reason: string;
  message?: string;
  startedAt: string;
  finishedAt: string;
  containerID: string;
}

export interface RootfsImage {
  /** config.dump's rootfsImageName: the image reference the workload asked for. */
  name: string;
  /** config.dump's rootfsImageRef: that image's ID. */
  ref: string;
}

export interface RuntimeContainer {
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
  /** How the last start spent its time: the image pull (a checkpoint image's layer too), then the runtime's create or restore. */
  startTimings?: StartTimings;
  timer?: NodeJS.Timeout;
}

export interface RuntimePod {
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

export function containerId(): string {
  return randomBytes(32).toString('hex');
}

export class NodeRuntime {
  /** The node is down (set through Kubelet.down): no syncs, ticks or status writes. */
  down = false;
  stopped = false;
  readonly pods = new Map<string, RuntimePod>();
  readonly followers = new Map<string, Set<(line: string) => void>>();
  nextIp = 2;
  /** Set by the Kubelet right after construction (the runtime reports back to the kubelet). */
  runtime!: ContainerRuntime;

  constructor(
    readonly api: ObjectApi,
    readonly podType: ResourceType,
    readonly recorder: EventRecorder,
    readonly opts: KubeletOptions,
  ) {}

  get node(): string {
    return this.opts.node;
  }

  /** The pod as the API has it now, if it is still the same pod (same uid). */
  currentPod(p: RuntimePod): KubeObject | undefined {
    const pod = this.api.tryGet(this.podType, p.namespace, p.name);
    return pod && pod.metadata.uid === p.uid ? pod : undefined;
  }

  find(namespace: string, pod: string): RuntimePod | undefined {
    for (const p of this.pods.values()) if (p.namespace === namespace && p.name === pod) return p;
    return undefined;
  }
}
