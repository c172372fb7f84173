// The container runtime behind a simulated kubelet (what CRI-O is to a real one): it
// starts a container fresh or from a pulled checkpoint image, checkpoints a running one
// into the kubelet's archive, kills and removes it, and reports its exits and log lines
// back to the kubelet. Two implementations: `simulated` (simulated-runtime.ts: a counter
// and a data block in this process, archives in CRI-O's layout) and `podman`
// (podman-runtime.ts: real containers under podman + runc, checkpointed by CRIU).
import type { RuntimeKind } from '../podman/engine.js';
import type { ContainerState } from '../state.js';
import type { NodeRuntime, RootfsImage, RuntimeContainer, RuntimePod } from './runtime.js';

export type { RuntimeKind } from '../podman/engine.js';

/** A checkpoint image as the kubelet pulled it: the container name it was taken from, its single layer (the kubelet archive). */
export interface PulledCheckpoint {
  containerName: string;
  archive: Buffer;
  annotations: Record<string, string>;
}

export interface StartedContainer {
  /** The runtime's container ID (64 hex, as CRI-O's). */
  id: string;
  /** The image ID the status reports, when the runtime knows it (else the pull's). */
  imageID?: string;
  /** What the container holds now (the simulated state; for a real one, what its log said). */
  state: ContainerState;
  restored?: { ref: string; checkpointedAt: string; rootfs: RootfsImage };
}

/** What a runtime tells its kubelet. */
export interface RuntimeCallbacks {
  /** The container's process exited (only while `attempt` is still the container's attempt). */
  exited(p: RuntimePod, c: RuntimeContainer, attempt: number, exitCode: number, reason: string): void;
  log(p: RuntimePod, c: RuntimeContainer, line: string): void;
}

export interface ContainerRuntime {
  readonly kind: RuntimeKind;
  /** Starts `c` fresh from `image`; throws ImagePullError or CreateContainerError. */
  create(p: RuntimePod, c: RuntimeContainer, image: string): Promise<StartedContainer>;
  /** Starts `c` from a checkpoint image (already checked to be for this container and namespace); throws CreateContainerError with the runtime's message. */
  restore(p: RuntimePod, c: RuntimeContainer, checkpoint: PulledCheckpoint, image: string): Promise<StartedContainer>;
  /** Writes the running container's checkpoint archive (CRI-O's layout, uncompressed tar) to `file`; the container keeps running. */
  checkpoint(p: RuntimePod, c: RuntimeContainer, file: string, checkpointedAt: string): Promise<void>;
  /** Kills the container's process; its exit comes back through `exited`. */
  kill(p: RuntimePod, c: RuntimeContainer, exitCode: number, reason: string): void;
  /** The node went down (true) or came back (false): its containers freeze, then go on, as the simulated ones stop ticking. */
  nodeDown(down: boolean): void;
  /** The container is stopped for good (deletion, eviction, a new attempt): remove what is left of it. */
  remove(c: RuntimeContainer): void;
  /** The kubelet stops: remove every container it runs. */
  close(): Promise<void>;
}

export type ContainerRuntimeFactory = (rt: NodeRuntime, callbacks: RuntimeCallbacks) => ContainerRuntime;
