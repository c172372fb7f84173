// Worker thread of bench/checkpoint.ts: hosts the simulated cluster (API server,
// controllers, kubelets writing real archives) and one node-agent per node (calling
// its kubelet's HTTPS port with a nodes/checkpoint-only ServiceAccount token) on
// its own thread, as they run on other machines than the function in a cluster.
// The main thread talks to it over HTTPS like kcr does, and over messages for
// the benchmark's bookkeeping (API call counts, archive clean-up, stop).
import { parentPort, workerData } from 'node:worker_threads';
import { mkdtempSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { startSimulatedCluster, type KubeObject } from '../simulator/index.js';
import { ANNOTATIONS } from '../functions/core/kubernetes/annotations.js';
import { deployment } from '../simulator/workloads.js';
import { kubeletCheckpointer } from '../node-agent/kubelet-client.js';
import { startNodeAgent, type NodeAgent } from '../node-agent/server.js';
import { pino } from 'pino';

export interface ClusterSpec {
  nodes: string[];
  tickMs: number;
  dataSize: number;
  namespaces: string[];
  workloads: { namespace: string; name: string }[];
  replicas: number;
  schedule: string;
}

export interface ClusterReady {
  kubeconfigPath: string;
  /** The node-agent of each node, and the token request-checkpoint presents to them. */
  agentUrls: Record<string, string>;
  agentToken: string;
  targets: { node: string; namespace: string; pod: string; container: string }[];
  setupMs: number;
}

export type ClusterRequest = { id: number; op: 'resetApiCalls' | 'clearArchives' | 'stop' } | { id: number; op: 'apiCalls' };

export interface ApiCallCounts {
  total: number;
  gets: number;
  lists: number;
  proxies: number;
  events: number;
  /** TokenReview + SubjectAccessReview: the kubelets checking the node-agents' tokens (cached as a kubelet caches them). */
  reviews: number;
}

if (!parentPort) throw new Error('bench/checkpoint-cluster.ts runs as a worker thread of bench/checkpoint.ts');
const port = parentPort;
const spec = workerData as ClusterSpec;
const started = performance.now();
const cluster = await startSimulatedCluster({ nodes: spec.nodes, kubelet: { tickMs: spec.tickMs, dataSize: spec.dataSize } });

// Set-up goes straight into the store (not over HTTP, not counted): it is not what is measured.
cluster.seed(
  ...spec.namespaces.map((name): KubeObject => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } })),
  ...spec.workloads.map((w) => deployment({ ...w, replicas: spec.replicas, annotations: { [ANNOTATIONS.schedule]: spec.schedule } }) as KubeObject),
);
const expected = spec.workloads.length * spec.replicas;
await cluster.waitFor(
  () =>
    cluster.listObjects('v1', 'Pod').filter((p) => p.status?.phase === 'Running' && (p.status.containerStatuses as { state?: { running?: unknown } }[] | undefined)?.every((c) => c.state?.running))
      .length === expected,
  { timeoutMs: 180_000, intervalMs: 250, description: `${expected} running pods` },
);

// The node-agents: their ServiceAccount may create nodes/checkpoint and nothing else (manifests/node-agent.yaml).
cluster.seed(
  { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'kcr-system' } },
  { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'node-agent', namespace: 'kcr-system' } },
  { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'kcr-node-agent' }, rules: [{ apiGroups: [''], resources: ['nodes/checkpoint'], verbs: ['create'] }] },
  {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: 'kcr-node-agent' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'kcr-node-agent' },
    subjects: [{ kind: 'ServiceAccount', name: 'node-agent', namespace: 'kcr-system' }],
  },
);
const tokenDir = mkdtempSync(join(tmpdir(), 'kcr-bench-agents-'));
const agentToken = randomBytes(24).toString('hex');
const agents: NodeAgent[] = [];
const agentUrls: Record<string, string> = {};
for (const node of cluster.nodes) {
  const tokenFile = join(tokenDir, `${node}.token`);
  writeFileSync(tokenFile, cluster.serviceAccountToken('kcr-system', 'node-agent', 3600), { mode: 0o600 });
  const agent = await startNodeAgent({
    dir: cluster.checkpointDir(node),
    token: agentToken,
    allowDelete: false,
    kubelet: kubeletCheckpointer({ url: cluster.kubeletUrl(node), caFile: cluster.kubeletCaFile, tokenFile }),
    logger: pino({ level: 'silent' }),
  });
  agents.push(agent);
  agentUrls[node] = agent.url;
}
await settle();

function clearArchives(): void {
  for (const node of cluster.nodes) {
    const dir = cluster.checkpointDir(node);
    for (const f of readdirSync(dir)) unlinkSync(join(dir, f));
  }
}

/**
 * After the pods run, the simulated controllers keep reconciling statuses for
 * a while at full speed: wait until this thread is idle, so that work is not
 * billed to the checkpoints.
 */
async function settle(): Promise<void> {
  for (let i = 0; i < 240; i++) {
    const before = performance.eventLoopUtilization();
    await new Promise((resolve) => setTimeout(resolve, 500));
    if (performance.eventLoopUtilization(before).utilization < 0.05) return;
  }
  throw new Error('the simulated cluster did not go idle within 2 minutes after its pods started');
}

port.on('message', (req: ClusterRequest) => {
  onMessage(req).catch((err: unknown) => {
    console.error(`checkpoint-cluster: ${req.op} failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
});

async function onMessage(req: ClusterRequest): Promise<void> {
  switch (req.op) {
    case 'resetApiCalls':
      cluster.resetApiCalls();
      port.postMessage({ id: req.id });
      break;
    case 'apiCalls': {
      const counts: ApiCallCounts = {
        total: cluster.apiCalls().total,
        gets: cluster.callCount('get', 'deployments'),
        lists: cluster.callCount('list', 'pods'),
        proxies: cluster.callCount('create', 'nodes/proxy'),
        events: cluster.callCount('create', 'events'),
        reviews: cluster.callCount('create', 'tokenreviews') + cluster.callCount('create', 'subjectaccessreviews'),
      };
      port.postMessage({ id: req.id, result: counts });
      break;
    }
    case 'clearArchives':
      clearArchives();
      port.postMessage({ id: req.id });
      break;
    case 'stop':
      for (const a of agents) await a.close();
      await cluster.stop();
      rmSync(cluster.stateDir, { recursive: true, force: true });
      rmSync(tokenDir, { recursive: true, force: true });
      port.postMessage({ id: req.id });
      port.close();
      break;
  }
}

const ready: ClusterReady = {
  kubeconfigPath: cluster.kubeconfigPath,
  agentUrls,
  agentToken,
  targets: cluster
    .listObjects('v1', 'Pod')
    .flatMap((p) =>
      ((p.spec?.containers as { name: string }[] | undefined) ?? []).map((c) => ({ node: String(p.spec?.nodeName), namespace: p.metadata.namespace!, pod: p.metadata.name!, container: c.name })),
    ),
  setupMs: performance.now() - started,
};
port.postMessage({ ready });
