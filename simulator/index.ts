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
import { ApiServer, type NodeBackend, type ProxyResponse } from './server.js';
import { Store } from './store.js';
import { clone, nowRfc3339, type KubeObject } from './types.js';

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

  const backend: NodeBackend = {
    proxy: async (): Promise<ProxyResponse> => ({ status: 404, contentType: 'text/plain; charset=utf-8', body: '404 page not found\n' }),
    logs: () => [],
    followLogs: () => () => undefined,
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

  seedBaseObjects(api, registry, nodeNames);

  const kubeconfigPath = join(stateDir, 'kubeconfig');
  writeKubeconfig(kubeconfigPath, server.httpsUrl, cert, user, token);
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(kubeconfigPath);

  const checkpointDirs = new Map<string, string>();
  for (const n of nodeNames) {
    const d = join(stateDir, 'nodes', n, 'checkpoints');
    mkdirSync(d, { recursive: true });
    checkpointDirs.set(n, d);
  }

  return {
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
    async stop(): Promise<void> {
      api.stop();
      await server.close();
    },
  };
}

function seedBaseObjects(api: ObjectApi, registry: ResourceRegistry, nodeNames: string[]): void {
  const nsType = registry.find('', 'v1', 'namespaces')!;
  for (const ns of ['default', 'kube-system', 'kube-public', 'kube-node-lease']) {
    api.create(nsType, undefined, { metadata: { name: ns } });
  }
  const nodeType = registry.find('', 'v1', 'nodes')!;
  nodeNames.forEach((name, i) => api.create(nodeType, undefined, nodeObject(name, i)));
}

export function nodeObject(name: string, index: number): KubeObject {
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

export type { ResourceType, KubeObject };
export { ApiError, clone, resourceKey, splitApiVersion };
