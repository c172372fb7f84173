// Entry point of the simulated cluster: an in-process Kubernetes API server (real REST over
// HTTP on loopback), simulated controllers and per-node simulated kubelets.

import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { KubeConfig } from '@kubernetes/client-node';
import { ObjectApi } from './api.js';
import { ApiError } from './errors.js';
import { writeKubeconfig } from './kubeconfig.js';
import { DEFAULT_CUSTOM_RESOURCES, ResourceRegistry, resourceKey, splitApiVersion, type CustomResourceDefinitionInput, type ResourceType } from './resources.js';
import { ApiServer, type ConnectionDrop, type DenyRule, type NodeBackend } from './server.js';
import { Controllers } from './controllers.js';
import { EventRecorder } from './events.js';
import type { ImageSource } from './images.js';
import { Kubelet, type CheckpointFailure, type ContainerSnapshot, type KubeletTiming } from './kubelet.js';
import type { FlagValue } from './state.js';
import { Store } from './store.js';
import { clone, nowRfc3339, withCondition, type KubeObject } from './types.js';

export interface SimulatedClusterOptions {
  /** Directory for the kubeconfig and the nodes' checkpoint directories (default: a new temp dir). */
  stateDir?: string;
  /** Node names (default `node-a`, `node-b`). */
  nodes?: string[];
  /** Extra custom resources to serve, beside the Knative ones registered by default. */
  customResources?: CustomResourceDefinitionInput[];
  /** User name of the kubeconfig's identity (default `kcr`). */
  user?: string;
  /** Pod termination: real milliseconds per simulated grace-period second (default 10). */
  gracePeriodScaleMs?: number;
  /** Cap on a pod's real termination delay (default 300 ms). */
  maxGraceMs?: number;
  /** Interval of watch BOOKMARK events when requested (default 5000 ms). */
  bookmarkIntervalMs?: number;
  /** Kubelet behaviour: tick of the simulated containers, back-offs, data size. */
  kubelet?: Partial<KubeletTiming> & { dataSize?: number };
  /** ContainerCheckpoint feature gate per node (default on for every node). */
  checkpointFeatureGate?: Record<string, boolean>;
  /**
   * Where the kubelets pull images from, by registry host: an OCI image-layout directory or
   * an http registry. Hosts not listed are "already on the node" (containers start fresh);
   * `localhost:*` and `127.0.0.1:*` are pulled over http without being listed.
   */
  imageSources?: Record<string, ImageSource>;
  /** After a node goes down, how long until its pods are deleted and replaced (default 200 ms). */
  podEvictionTimeoutMs?: number;
}

export interface SimulatedCluster {
  /** Plain-http URL of the API server (no TLS; same handler as httpsUrl). */
  readonly url: string;
  /** HTTPS URL the kubeconfig points to (kubectl sends bearer tokens only over https). */
  readonly httpsUrl: string;
  readonly kubeconfigPath: string;
  readonly kubeConfig: KubeConfig;
  readonly nodes: readonly string[];
  readonly stateDir: string;
  /** The bearer token of the kubeconfig's user. */
  readonly token: string;
  checkpointDir(node: string): string;
  apiCalls(): { total: number; byKey: Record<string, number> };
  callCount(verb: string, resource: string): number;
  resetApiCalls(): void;
  /** Make the next `count` API calls matching verb/resource/path fail with `code`. */
  failNext(rule: { verb?: string; resource?: string; path?: RegExp; count?: number; code: number; reason?: string; message?: string; retryAfterSeconds?: number }): void;
  /** Drop the connection of the next `count` API calls matching verb/resource/path, before or after serving them (see ConnectionDrop). */
  dropNext(rule: { verb?: string; resource?: string; path?: RegExp; count?: number; when: ConnectionDrop }): void;
  clearFailures(): void;
  /** Deny the kubeconfig user a permission (e.g. create nodes/proxy); returns an undo function. */
  denyPermission(rule: DenyRule): () => void;
  /** The API server's own kubelet-client identity loses (or regains) `nodes/checkpoint`. */
  setApiServerKubeletCheckpointPermission(allowed: boolean, node?: string): void;
  /** The kubelet answers checkpoint calls with 500 (runtime error text) until cleared or `count` is used up. */
  failCheckpoints(node: string, failure?: CheckpointFailure): void;
  clearCheckpointFailures(node?: string): void;
  setCheckpointFeatureGate(node: string, enabled: boolean): void;
  killContainer(namespace: string, pod: string, container: string, opts?: { exitCode?: number; oomKilled?: boolean }): void;
  /** Node-pressure eviction by the kubelet (phase Failed, reason Evicted). */
  evictPod(namespace: string, pod: string, message?: string): void;
  nodeDown(node: string): void;
  nodeUp(node: string): void;
  containerState(namespace: string, pod: string, container: string): ContainerSnapshot | undefined;
  setContainerState(namespace: string, pod: string, container: string, patch: { counter?: number; data?: Buffer; flags?: Record<string, FlagValue>; crashOnRestore?: boolean }): void;
  /** Create objects directly (no HTTP, not counted); apiVersion/kind pick the resource. */
  seed(...objects: KubeObject[]): KubeObject[];
  /** Read an object directly from the store (no HTTP, not counted). */
  getObject(apiVersion: string, kind: string, namespace: string | undefined, name: string): KubeObject | undefined;
  listObjects(apiVersion: string, kind: string, namespace?: string): KubeObject[];
  registerCustomResource(def: CustomResourceDefinitionInput): void;
  /** Forget the watch history, so resuming from an older resourceVersion gets 410 Expired. */
  compactWatchHistory(): void;
  waitFor<T>(probe: () => T | undefined | false | Promise<T | undefined | false>, opts?: { timeoutMs?: number; intervalMs?: number; description?: string }): Promise<T>;
  stop(): Promise<void>;
}

export async function startSimulatedCluster(options: SimulatedClusterOptions = {}): Promise<SimulatedCluster> {
  const stateDir = options.stateDir ?? mkdtempSync(join(tmpdir(), 'kcr-sim-'));
  mkdirSync(stateDir, { recursive: true });
  const nodeNames = options.nodes ?? ['node-a', 'node-b'];
  const user = options.user ?? 'kcr';
  const token = randomBytes(24).toString('hex');

  const registry = new ResourceRegistry();
  for (const crd of [...DEFAULT_CUSTOM_RESOURCES, ...(options.customResources ?? [])]) registry.registerCustom(crd);
  const store = new Store();
  const api = new ObjectApi(store, registry, {
    gracePeriodScaleMs: options.gracePeriodScaleMs ?? 10,
    maxGraceMs: options.maxGraceMs ?? 300,
  });

  const recorder = new EventRecorder(api);
  const podType = registry.find('', 'v1', 'pods')!;
  const nodeType = registry.find('', 'v1', 'nodes')!;

  const checkpointDirs = new Map<string, string>();
  for (const n of nodeNames) {
    const d = join(stateDir, 'nodes', n, 'checkpoints');
    mkdirSync(d, { recursive: true });
    checkpointDirs.set(n, d);
  }
  const k = options.kubelet ?? {};
  const kubelets = new Map<string, Kubelet>();
  nodeNames.forEach((node, i) => {
    kubelets.set(
      node,
      new Kubelet(api, podType, recorder, {
        node,
        nodeIndex: i,
        checkpointDir: checkpointDirs.get(node)!,
        tickMs: k.tickMs ?? 100,
        backoffBaseMs: k.backoffBaseMs ?? 200,
        backoffMaxMs: k.backoffMaxMs ?? 3000,
        backoffResetMs: k.backoffResetMs ?? 5000,
        imagePullBackoffMs: k.imagePullBackoffMs ?? 500,
        dataSize: k.dataSize ?? 64 * 1024,
        imageSources: options.imageSources ?? {},
        checkpointFeatureGate: options.checkpointFeatureGate?.[node] ?? true,
      }),
    );
  });
  const kubeletOf = (node: string): Kubelet => {
    const kl = kubelets.get(node);
    if (!kl) throw new Error(`unknown node "${node}" (nodes: ${nodeNames.join(', ')})`);
    return kl;
  };
  const kubeletForPod = (namespace: string, pod: string): Kubelet => {
    const p = api.tryGet(podType, namespace, pod);
    if (!p) throw new Error(`pod ${namespace}/${pod} not found`);
    const node = p.spec?.nodeName;
    if (typeof node !== 'string' || !node) throw new Error(`pod ${namespace}/${pod} is not scheduled`);
    return kubeletOf(node);
  };

  const backend: NodeBackend = {
    proxy: async (node, req) => {
      const kl = kubeletOf(node);
      if (kl.down) {
        const ip = `192.168.49.${nodeNames.indexOf(node) + 2}`;
        throw new ApiError(503, 'ServiceUnavailable', `error trying to reach service: dial tcp ${ip}:10250: connect: no route to host`);
      }
      return kl.serve(req);
    },
    logs: (pod, container, { previous }) => kubeletOf(String(pod.spec?.nodeName ?? '')).logs(pod, container, previous),
    followLogs: (pod, container, onLine) => kubeletOf(String(pod.spec?.nodeName ?? '')).followLogs(pod, container, onLine),
  };
  const server = new ApiServer(api, backend, {
    tokens: new Map([[token, user]]),
    bookmarkIntervalMs: options.bookmarkIntervalMs ?? 5000,
    version: { major: '1', minor: '31', gitVersion: 'v1.31.0' },
  });
  const here = dirname(fileURLToPath(import.meta.url));
  const cert = readFileSync(join(here, 'tls', 'loopback.crt'));
  const key = readFileSync(join(here, 'tls', 'loopback.key'));
  const url = await server.listen({ cert, key });

  const controllers = new Controllers(api, recorder);
  // Kubelets sync pods bound to their node; a change queues the controllers that own it.
  const pendingPods = new Map<string, { namespace: string; name: string }>();
  let podSyncScheduled = false;
  let stopped = false;
  const flushPods = (): void => {
    podSyncScheduled = false;
    if (stopped) return;
    const batch = [...pendingPods.values()];
    pendingPods.clear();
    for (const { namespace, name } of batch) {
      const pod = api.tryGet(podType, namespace, name);
      const node = pod?.spec?.nodeName;
      if (pod && typeof node === 'string' && kubelets.has(node)) {
        try {
          kubelets.get(node)!.sync(pod);
        } catch (err) {
          if (!(err instanceof ApiError)) console.error(`simulator: kubelet sync of ${namespace}/${name} failed:`, err);
        }
      }
    }
  };
  store.subscribe((ev) => {
    if (stopped) return;
    if (ev.resource === resourceKey(podType)) {
      const ns = ev.object.metadata.namespace!;
      const name = ev.object.metadata.name!;
      if (ev.type === 'DELETED') {
        const node = ev.object.spec?.nodeName;
        if (typeof node === 'string') kubelets.get(node)?.forget(ev.object.metadata.uid!);
      } else {
        pendingPods.set(`${ns}/${name}`, { namespace: ns, name });
        if (!podSyncScheduled) {
          podSyncScheduled = true;
          setImmediate(flushPods);
        }
      }
    }
    controllers.observe(ev.resource, ev.object);
  });

  seedBaseObjects(api, registry, nodeNames);
  controllers.resyncAll();

  const kubeconfigPath = join(stateDir, 'kubeconfig');
  writeKubeconfig(kubeconfigPath, server.httpsUrl, cert, user, token);
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(kubeconfigPath);

  const evictionTimeoutMs = options.podEvictionTimeoutMs ?? 200;
  const nodeTimers = new Map<string, NodeJS.Timeout>();
  const setNodeReady = (node: string, ready: boolean): void => {
    api.mutate(
      nodeType,
      undefined,
      node,
      (o) => {
        const st = o.status ?? {};
        const now = nowRfc3339();
        const conds = Array.isArray(st.conditions) ? (st.conditions as Record<string, unknown>[]) : [];
        st.conditions = conds.map((c) => {
          if (c.type === 'Ready') {
            return ready
              ? { ...c, status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status', lastHeartbeatTime: now, lastTransitionTime: now }
              : { ...c, status: 'Unknown', reason: 'NodeStatusUnknown', message: 'Kubelet stopped posting node status.', lastTransitionTime: now };
          }
          return ready
            ? { ...c, status: 'False', lastHeartbeatTime: now, lastTransitionTime: now }
            : { ...c, status: 'Unknown', reason: 'NodeStatusUnknown', message: 'Kubelet stopped posting node status.', lastTransitionTime: now };
        });
        o.status = st;
      },
      'status',
    );
    api.mutate(nodeType, undefined, node, (o) => {
      const spec = o.spec ?? {};
      const taints = (Array.isArray(spec.taints) ? (spec.taints as Record<string, unknown>[]) : []).filter((t) => t.key !== 'node.kubernetes.io/unreachable');
      if (!ready) {
        taints.push({ key: 'node.kubernetes.io/unreachable', effect: 'NoSchedule', timeAdded: nowRfc3339() });
        taints.push({ key: 'node.kubernetes.io/unreachable', effect: 'NoExecute', timeAdded: nowRfc3339() });
      }
      if (taints.length > 0) spec.taints = taints;
      else delete spec.taints;
      o.spec = spec;
    });
  };

  const typeOf = (apiVersion: string, kind: string): ResourceType => {
    const t = registry.byKind(apiVersion, kind);
    if (!t) throw new Error(`no resource registered for ${apiVersion} ${kind}`);
    return t;
  };

  const cluster: SimulatedCluster = {
    url,
    httpsUrl: server.httpsUrl,
    kubeconfigPath,
    kubeConfig,
    nodes: nodeNames,
    stateDir,
    token,
    checkpointDir(node: string): string {
      const d = checkpointDirs.get(node);
      if (!d) throw new Error(`checkpointDir: unknown node "${node}" (nodes: ${nodeNames.join(', ')})`);
      return d;
    },
    apiCalls: () => server.apiCalls(),
    callCount: (verb, resource) => server.callCount(verb, resource),
    resetApiCalls: () => server.resetCalls(),
    failNext(rule) {
      server.failures.push({ ...rule, remaining: rule.count ?? 1 });
    },
    dropNext({ when, ...rule }) {
      server.failures.push({ ...rule, drop: when, remaining: rule.count ?? 1 });
    },
    clearFailures() {
      server.failures.length = 0;
    },
    denyPermission(rule) {
      const r = { user, ...rule };
      server.denyRules.push(r);
      return () => {
        const i = server.denyRules.indexOf(r);
        if (i >= 0) server.denyRules.splice(i, 1);
      };
    },
    setApiServerKubeletCheckpointPermission(allowed, node) {
      for (const [n, kl] of kubelets) if (node === undefined || node === n) kl.apiServerMayCheckpoint = allowed;
    },
    failCheckpoints(node, failure = {}) {
      kubeletOf(node).checkpointFailures.push({ ...failure });
    },
    clearCheckpointFailures(node) {
      for (const [n, kl] of kubelets) if (node === undefined || node === n) kl.checkpointFailures = [];
    },
    setCheckpointFeatureGate(node, enabled) {
      kubeletOf(node).opts.checkpointFeatureGate = enabled;
    },
    killContainer: (namespace, pod, container, opts) => kubeletForPod(namespace, pod).killContainer(namespace, pod, container, opts),
    evictPod: (namespace, pod, message) => kubeletForPod(namespace, pod).evictPod(namespace, pod, message),
    nodeDown(node) {
      const kl = kubeletOf(node);
      kl.down = true;
      setNodeReady(node, false);
      clearTimeout(nodeTimers.get(node));
      // The node lifecycle controller evicts the pods of an unreachable node after a timeout.
      const t = setTimeout(() => {
        if (stopped || !kl.down) return;
        for (const p of api.list(podType, undefined, { fieldSelector: [{ path: 'spec.nodeName', op: 'eq', value: node }] })) {
          recorder.record(p, 'Normal', 'TaintManagerEviction', `Marking for deletion Pod ${p.metadata.namespace}/${p.metadata.name}`, 'taint-eviction-controller');
          try {
            // Since Kubernetes 1.26 the controller marks the pod before deleting it.
            api.mutate(
              podType,
              p.metadata.namespace,
              p.metadata.name!,
              (o) => {
                const conditions = withCondition(o.status, { type: 'DisruptionTarget', status: 'True', reason: 'DeletionByTaintManager', message: 'Taint manager: deleting due to NoExecute taint' });
                o.status = { ...o.status, conditions };
              },
              'status',
            );
            api.delete(podType, p.metadata.namespace, p.metadata.name!, { gracePeriodSeconds: 0 });
          } catch (err) {
            if (!(err instanceof ApiError && err.code === 404)) throw err;
          }
          kl.forget(p.metadata.uid!);
        }
      }, evictionTimeoutMs);
      t.unref();
      nodeTimers.set(node, t);
    },
    nodeUp(node) {
      const kl = kubeletOf(node);
      clearTimeout(nodeTimers.get(node));
      kl.down = false;
      setNodeReady(node, true);
      for (const p of api.list(podType, undefined, { fieldSelector: [{ path: 'spec.nodeName', op: 'eq', value: node }] })) kl.sync(p);
    },
    containerState: (namespace, pod, container) => {
      const p = api.tryGet(podType, namespace, pod);
      const node = p?.spec?.nodeName;
      if (typeof node !== 'string' || !kubelets.has(node)) return undefined;
      return kubelets.get(node)!.containerState(namespace, pod, container);
    },
    setContainerState: (namespace, pod, container, patch) => kubeletForPod(namespace, pod).setContainerState(namespace, pod, container, patch),
    seed(...objects) {
      return objects.map((o) => {
        const t = typeOf(String(o.apiVersion), String(o.kind));
        return api.create(t, o.metadata.namespace, o);
      });
    },
    getObject: (apiVersion, kind, namespace, name) => api.tryGet(typeOf(apiVersion, kind), namespace, name),
    listObjects: (apiVersion, kind, namespace) => api.list(typeOf(apiVersion, kind), namespace),
    registerCustomResource(def) {
      registry.registerCustom(def);
    },
    compactWatchHistory: () => store.compact(),
    async waitFor(probe, opts = {}) {
      const timeoutMs = opts.timeoutMs ?? 10_000;
      const intervalMs = opts.intervalMs ?? 20;
      const deadline = Date.now() + timeoutMs;
      let lastError: unknown;
      for (;;) {
        try {
          const v = await probe();
          if (v !== undefined && v !== false) return v;
        } catch (err) {
          lastError = err;
        }
        if (Date.now() > deadline) {
          const why = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
          throw new Error(`waitFor: timed out after ${timeoutMs} ms waiting for ${opts.description ?? 'condition'}${why}`);
        }
        await new Promise((r) => setTimeout(r, intervalMs));
      }
    },
    async stop(): Promise<void> {
      stopped = true;
      for (const t of nodeTimers.values()) clearTimeout(t);
      controllers.stop();
      for (const kl of kubelets.values()) kl.stop();
      api.stop();
      await server.close();
    },
  };
  return cluster;
}

function seedBaseObjects(api: ObjectApi, registry: ResourceRegistry, nodeNames: string[]): void {
  const nsType = registry.find('', 'v1', 'namespaces')!;
  for (const ns of ['default', 'kube-system', 'kube-public', 'kube-node-lease']) {
    api.create(nsType, undefined, { metadata: { name: ns } });
  }
  const nodeType = registry.find('', 'v1', 'nodes')!;
  nodeNames.forEach((name, i) => api.create(nodeType, undefined, nodeObject(name, i)));
}

function nodeObject(name: string, index: number): KubeObject {
  const now = nowRfc3339();
  return {
    metadata: {
      name,
      labels: {
        'kubernetes.io/hostname': name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        'beta.kubernetes.io/os': 'linux',
        'beta.kubernetes.io/arch': 'amd64',
      },
      annotations: { 'node.alpha.kubernetes.io/ttl': '0' },
    },
    spec: { podCIDR: `10.244.${index}.0/24`, podCIDRs: [`10.244.${index}.0/24`] },
    status: {
      capacity: { cpu: '4', memory: '8148204Ki', pods: '110', 'ephemeral-storage': '102350Mi' },
      allocatable: { cpu: '4', memory: '8045804Ki', pods: '110', 'ephemeral-storage': '96589Mi' },
      conditions: [
        { type: 'MemoryPressure', status: 'False', lastHeartbeatTime: now, lastTransitionTime: now, reason: 'KubeletHasSufficientMemory', message: 'kubelet has sufficient memory available' },
        { type: 'DiskPressure', status: 'False', lastHeartbeatTime: now, lastTransitionTime: now, reason: 'KubeletHasNoDiskPressure', message: 'kubelet has no disk pressure' },
        { type: 'PIDPressure', status: 'False', lastHeartbeatTime: now, lastTransitionTime: now, reason: 'KubeletHasSufficientPID', message: 'kubelet has sufficient PID available' },
        { type: 'Ready', status: 'True', lastHeartbeatTime: now, lastTransitionTime: now, reason: 'KubeletReady', message: 'kubelet is posting ready status' },
      ],
      addresses: [
        { type: 'InternalIP', address: `192.168.49.${index + 2}` },
        { type: 'Hostname', address: name },
      ],
      daemonEndpoints: { kubeletEndpoint: { Port: 10250 } },
      nodeInfo: {
        machineID: randomBytes(16).toString('hex'),
        systemUUID: randomBytes(16).toString('hex'),
        bootID: randomBytes(16).toString('hex'),
        kernelVersion: '6.1.0-28-amd64',
        osImage: 'Debian GNU/Linux 12 (bookworm)',
        containerRuntimeVersion: 'cri-o://1.31.0',
        kubeletVersion: 'v1.31.0',
        kubeProxyVersion: 'v1.31.0',
        operatingSystem: 'linux',
        architecture: 'amd64',
      },
    },
  };
}

export type { ResourceType, KubeObject, ImageSource, CheckpointFailure, ConnectionDrop, ContainerSnapshot, DenyRule, FlagValue, CustomResourceDefinitionInput };
export { ApiError, clone, splitApiVersion };
export { decodePages, encodePages, PAGES_MAGIC } from './state.js';
export { buildCheckpointArchive, readTar } from './archive.js';
export { parseImageRef, resolveImage } from './images.js';
