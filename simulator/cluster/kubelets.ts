// The simulated nodes' kubelets: one Kubelet (kubelet.ts) per node with its checkpoint
// directory and timing, found by node or by pod, and the NodeBackend through which the
// API server reaches them (nodes/proxy over each kubelet's HTTPS port, pods/log; 503
// "no route to host" while a node is down).

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ObjectApi } from '../api.js';
import { ApiError } from '../errors.js';
import type { EventRecorder } from '../events.js';
import type { ImageSource } from '../images.js';
import { Kubelet, type KubeletTiming } from '../kubelet.js';
import type { ContainerRuntimeFactory } from '../kubelet/container-runtime.js';
import type { ResourceType } from '../resources.js';
import type { NodeBackend, ProxyRequest, ProxyResponse } from '../server/node-backend.js';

/** How the API server's node proxy reaches a kubelet: over its HTTPS port once the cluster serves them (kubelet-serving.ts). */
export type KubeletTransport = (node: string, req: ProxyRequest) => Promise<ProxyResponse>;

export interface KubeletsOptions {
  stateDir: string;
  nodeNames: readonly string[];
  kubelet?: Partial<KubeletTiming> & { dataSize?: number };
  imageSources?: Record<string, ImageSource>;
  checkpointFeatureGate?: Record<string, boolean>;
  /** The container runtime every node's kubelet uses (default: simulated). */
  containerRuntime?: ContainerRuntimeFactory;
}

export class NodeKubelets {
  private readonly checkpointDirs = new Map<string, string>();
  /** Every node's kubelet, by node name. */
  readonly byNode = new Map<string, Kubelet>();
  private readonly nodeNames: readonly string[];
  private transport: KubeletTransport | undefined;

  constructor(
    private readonly api: ObjectApi,
    private readonly podType: ResourceType,
    recorder: EventRecorder,
    options: KubeletsOptions,
  ) {
    const { stateDir, nodeNames } = options;
    this.nodeNames = nodeNames;
    for (const n of nodeNames) {
      const d = join(stateDir, 'nodes', n, 'checkpoints');
      mkdirSync(d, { recursive: true });
      this.checkpointDirs.set(n, d);
    }
    const k = options.kubelet ?? {};
    nodeNames.forEach((node, i) => {
      this.byNode.set(
        node,
        new Kubelet(api, podType, recorder, {
          node,
          nodeIndex: i,
          checkpointDir: this.checkpointDirs.get(node)!,
          tickMs: k.tickMs ?? 100,
          backoffBaseMs: k.backoffBaseMs ?? 200,
          backoffMaxMs: k.backoffMaxMs ?? 3000,
          backoffResetMs: k.backoffResetMs ?? 5000,
          imagePullBackoffMs: k.imagePullBackoffMs ?? 500,
          dataSize: k.dataSize ?? 64 * 1024,
          imageSources: options.imageSources ?? {},
          checkpointFeatureGate: options.checkpointFeatureGate?.[node] ?? true,
          ...(options.containerRuntime ? { containerRuntime: options.containerRuntime } : {}),
        }),
      );
    });
  }

  checkpointDir(node: string): string {
    const d = this.checkpointDirs.get(node);
    if (!d) throw new Error(`checkpointDir: unknown node "${node}" (nodes: ${this.nodeNames.join(', ')})`);
    return d;
  }

  /** The kubelet of `node`; throws for an unknown node. */
  of(node: string): Kubelet {
    const kl = this.byNode.get(node);
    if (!kl) throw new Error(`unknown node "${node}" (nodes: ${this.nodeNames.join(', ')})`);
    return kl;
  }

  /** The kubelet of the node the pod is bound to; throws when the pod is missing or unscheduled. */
  forPod(namespace: string, pod: string): Kubelet {
    const p = this.api.tryGet(this.podType, namespace, pod);
    if (!p) throw new Error(`pod ${namespace}/${pod} not found`);
    const node = p.spec?.nodeName;
    if (typeof node !== 'string' || !node) throw new Error(`pod ${namespace}/${pod} is not scheduled`);
    return this.of(node);
  }

  /** From now on the node proxy calls the kubelets' HTTPS ports, as the real API server calls :10250. */
  useTransport(transport: KubeletTransport): void {
    this.transport = transport;
  }

  /** How the API server reaches the kubelets. */
  backend(): NodeBackend {
    return {
      proxy: async (node, req) => {
        const kl = this.of(node);
        if (kl.down) {
          const ip = `192.168.49.${this.nodeNames.indexOf(node) + 2}`;
          throw new ApiError(503, 'ServiceUnavailable', `error trying to reach service: dial tcp ${ip}:10250: connect: no route to host`);
        }
        return this.transport ? this.transport(node, req) : kl.serve(req);
      },
      logs: (pod, container, { previous }) => this.of(String(pod.spec?.nodeName ?? '')).logs(pod, container, previous),
      followLogs: (pod, container, onLine) => this.of(String(pod.spec?.nodeName ?? '')).followLogs(pod, container, onLine),
    };
  }

  async stop(): Promise<void> {
    await Promise.all([...this.byNode.values()].map((kl) => kl.stop()));
  }
}
