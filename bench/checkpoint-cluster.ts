// Worker thread of bench/checkpoint.ts: hosts the simulated cluster (API server,
// controllers, kubelets writing real archives) on its own thread, as the API
// server and kubelets run on other machines than the function in a cluster.
// The main thread talks to it over HTTPS like kcr does, and over messages for
// the benchmark's bookkeeping (API call counts, archive clean-up, stop).
import { parentPort, workerData } from 'node:worker_threads';
import { readdirSync, rmSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { startSimulatedCluster, type KubeObject } from '../simulator/index.js';
import { ANNOTATIONS } from '../functions/core/kubernetes/annotations.js';
import { deployment } from '../simulator/workloads.js';

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
      };
      port.postMessage({ id: req.id, result: counts });
      break;
    }
    case 'clearArchives':
      clearArchives();
      port.postMessage({ id: req.id });
      break;
    case 'stop':
      await cluster.stop();
      rmSync(cluster.stateDir, { recursive: true, force: true });
      port.postMessage({ id: req.id });
      port.close();
      break;
  }
}

const ready: ClusterReady = {
  kubeconfigPath: cluster.kubeconfigPath,
  targets: cluster
    .listObjects('v1', 'Pod')
    .flatMap((p) =>
      ((p.spec?.containers as { name: string }[] | undefined) ?? []).map((c) => ({ node: String(p.spec?.nodeName), namespace: p.metadata.namespace!, pod: p.metadata.name!, container: c.name })),
    ),
  setupMs: performance.now() - started,
};
port.postMessage({ ready });
