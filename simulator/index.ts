// Entry point of the simulated cluster: an in-process Kubernetes API server (real REST over
// HTTP on loopback), simulated controllers and per-node simulated kubelets. This file
// declares the SimulatedCluster API and wires its parts together; each part lives in its
// own file:
//   server/            the API server (api-server.ts: the request pipeline; auth.ts, rbac.ts,
//                      identities.ts, reviews.ts (TokenReview, SubjectAccessReview, TokenRequest), faults.ts,
//                      discovery.ts, rest.ts, watch.ts, pod-log.ts, node-proxy.ts, scale.ts)
//   cluster/kubelets.ts        one kubelet per node, and how the API server reaches them
//   cluster/pod-dispatch.ts    store changes to the controllers, bound pods to their kubelet
//   cluster/node-lifecycle.ts  node down/up: Ready, taints, taint-manager eviction
//   cluster/api-endpoint.ts    listening with TLS, the kubeconfig, the token table
//   cluster/kubelet-serving.ts each kubelet's own HTTPS port (kubelet-tls.ts: its CA and certificates)
//   cluster/base-objects.ts    the namespaces and Nodes a fresh cluster starts with
//   controllers.ts             Deployment, ReplicaSet, StatefulSet controllers and the scheduler
//   kubelet.ts                 a node's containers: start, restart, restore, checkpoint API

import { mkdirSync, mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { KubeConfig } from '@kubernetes/client-node';
import { ObjectApi } from './api.js';
import { ApiError } from './errors.js';
import { DEFAULT_CUSTOM_RESOURCES, ResourceRegistry, splitApiVersion, type CustomResourceDefinitionInput, type ResourceType } from './resources.js';
import type { ConnectionDrop, DenyRule } from './server/api-server.js';
import { Controllers } from './controllers.js';
import { EventRecorder } from './events.js';
import type { ImageSource } from './images.js';
import type { CheckpointFailure, ContainerSnapshot, KubeletTiming } from './kubelet.js';
import type { FlagValue } from './state.js';
import { Store } from './store.js';
import { clone, type KubeObject } from './types.js';
import { clusterKubeconfig, listenApiServer } from './cluster/api-endpoint.js';
import { seedBaseObjects } from './cluster/base-objects.js';
import { seedKubeletRbac, serveKubelets } from './cluster/kubelet-serving.js';
import type { AuthTtl } from './kubelet/auth.js';
import { NodeKubelets } from './cluster/kubelets.js';
import { podmanRuntimeFactory } from './kubelet/podman-runtime.js';
import type { PodmanEngine, RuntimeKind } from './podman/engine.js';
import { NodeLifecycle } from './cluster/node-lifecycle.js';
import { dispatchStoreEvents } from './cluster/pod-dispatch.js';
import { waitFor } from './cluster/wait-for.js';

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
  /**
   * Run the pods' containers as real podman containers (runc, checkpointed by CRIU) in this
   * engine's storage, shared by every node; default: the simulated runtime.
   */
  podman?: PodmanEngine;
  /** How long the kubelets cache TokenReview and SubjectAccessReview answers (default: the kubelet's 2 min / 5 min / 30 s). */
  kubeletAuthCacheTtl?: AuthTtl;
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
  /** The container runtime behind the kubelets. */
  readonly runtime: RuntimeKind;
  /** The bearer token of the kubeconfig's user (system:masters). */
  readonly token: string;
  /** The node's kubelet API on its own HTTPS port (a real node's :10250): bearer tokens, TokenReview and SubjectAccessReview. */
  kubeletUrl(node: string): string;
  /** PEM file of the CA that signed the kubelets' serving certificates. */
  readonly kubeletCaFile: string;
  readonly kubeletCaPem: string;
  /** A ServiceAccount token as TokenRequest issues it (no HTTP, not counted); the ServiceAccount must exist. */
  serviceAccountToken(namespace: string, name: string, expirationSeconds?: number): string;
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
  // A directory the cluster made for itself goes with it; one it was given stays the caller's.
  const ownDir = options.stateDir === undefined;
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

  const kubelets = new NodeKubelets(api, podType, recorder, {
    stateDir,
    nodeNames,
    kubelet: options.kubelet,
    imageSources: options.imageSources,
    checkpointFeatureGate: options.checkpointFeatureGate,
    ...(options.podman ? { containerRuntime: podmanRuntimeFactory(options.podman) } : {}),
  });
  const { server, url, cert, identities } = await listenApiServer(api, kubelets.backend(), { user, token, bookmarkIntervalMs: options.bookmarkIntervalMs ?? 5000 });
  let kubeletServing: Awaited<ReturnType<typeof serveKubelets>>;
  try {
    kubeletServing = await serveKubelets(kubelets, nodeNames, { apiHttpsUrl: server.httpsUrl, apiCa: cert, identities, stateDir, ttl: options.kubeletAuthCacheTtl });
    kubelets.useTransport(kubeletServing.proxy);
  } catch (err) {
    await kubelets.stop();
    await server.close();
    throw err;
  }

  const controllers = new Controllers(api, recorder);
  let stopped = false;
  const isStopped = (): boolean => stopped;
  dispatchStoreEvents(store, api, podType, kubelets, controllers, isStopped);

  seedBaseObjects(api, registry, nodeNames);
  seedKubeletRbac(api, registry);
  controllers.resyncAll();

  const { kubeconfigPath, kubeConfig } = clusterKubeconfig(stateDir, server.httpsUrl, cert, user, token);

  const nodeLifecycle = new NodeLifecycle(api, nodeType, podType, recorder, kubelets, options.podEvictionTimeoutMs ?? 200, isStopped);

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
    runtime: options.podman ? 'podman' : 'simulated',
    token,
    kubeletUrl(node) {
      const u = kubeletServing.urls.get(node);
      if (!u) throw new Error(`kubeletUrl: unknown node "${node}" (nodes: ${nodeNames.join(', ')})`);
      return u;
    },
    kubeletCaFile: kubeletServing.caFile,
    kubeletCaPem: kubeletServing.caPem,
    serviceAccountToken(namespace, name, expirationSeconds = 3600) {
      const sa = api.get(typeOf('v1', 'ServiceAccount'), namespace, name);
      return identities.issue(namespace, name, String(sa.metadata.uid ?? ''), expirationSeconds, []).token;
    },
    checkpointDir: (node) => kubelets.checkpointDir(node),
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
      for (const [n, kl] of kubelets.byNode) if (node === undefined || node === n) kl.apiServerMayCheckpoint = allowed;
    },
    failCheckpoints(node, failure = {}) {
      kubelets.of(node).checkpointFailures.push({ ...failure });
    },
    clearCheckpointFailures(node) {
      for (const [n, kl] of kubelets.byNode) if (node === undefined || node === n) kl.checkpointFailures = [];
    },
    setCheckpointFeatureGate(node, enabled) {
      kubelets.of(node).opts.checkpointFeatureGate = enabled;
    },
    killContainer: (namespace, pod, container, opts) => kubelets.forPod(namespace, pod).killContainer(namespace, pod, container, opts),
    evictPod: (namespace, pod, message) => kubelets.forPod(namespace, pod).evictPod(namespace, pod, message),
    nodeDown: (node) => nodeLifecycle.down(node),
    nodeUp: (node) => nodeLifecycle.up(node),
    containerState: (namespace, pod, container) => {
      const p = api.tryGet(podType, namespace, pod);
      const node = p?.spec?.nodeName;
      if (typeof node !== 'string' || !kubelets.byNode.has(node)) return undefined;
      return kubelets.byNode.get(node)!.containerState(namespace, pod, container);
    },
    setContainerState: (namespace, pod, container, patch) => kubelets.forPod(namespace, pod).setContainerState(namespace, pod, container, patch),
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
    waitFor,
    async stop(): Promise<void> {
      stopped = true;
      nodeLifecycle.stop();
      controllers.stop();
      await kubelets.stop();
      api.stop();
      await kubeletServing.close();
      await server.close();
      if (ownDir) await rm(stateDir, { recursive: true, force: true, maxRetries: 3 });
    },
  };
  return cluster;
}

export type { ResourceType, KubeObject, ImageSource, CheckpointFailure, ConnectionDrop, ContainerSnapshot, DenyRule, FlagValue, CustomResourceDefinitionInput };
export { ApiError, clone, splitApiVersion };
export { decodePages, encodePages, PAGES_MAGIC } from './state.js';
export { buildCheckpointArchive, readTar } from './archive.js';
export { parseImageRef, resolveImage } from './images.js';
