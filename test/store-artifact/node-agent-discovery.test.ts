// Finding a node's node-agent through the API (KCR_NODE_AGENT_SELECTOR): the
// serving agent pod on that node, called on its pod IP. Against the simulated
// cluster through client-node; the store-artifact handler maps what cannot be
// found to checkpoint.failed or 503.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { parse as parseYaml } from 'yaml';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { InClusterPods } from '../../functions/core/kubernetes/in-cluster-pods.js';
import { Kubernetes } from '../../functions/core/kubernetes/kubernetes.js';
import { NodeAgentLookupError, nodeAgentLocator, nodeAgentPods } from '../../functions/core/node-agent/locator.js';
import { NodeAgentClient } from '../../functions/store-artifact/node-agent-client.js';
import { checkpointId, kubeletArchiveName, KUBELET_CHECKPOINT_DIR, type CheckpointCreatedData } from '../../functions/core/contract/index.js';
import { TransientError } from '../../functions/core/runtime/errors.js';
import type { IncomingEvent } from '../../functions/core/runtime/handler.js';
import { createStoreArtifact } from '../../functions/store-artifact/handler.js';
import { startSimulatedCluster, type SimulatedCluster } from '../../simulator/index.js';
import { MemoryStore } from '../support/memory-store.js';
import { runningPods } from '../../simulator/workloads.js';

const NS = 'kcr-system';
const SELECTOR = 'app.kubernetes.io/part-of=kcr,app.kubernetes.io/component=node-agent';
const PORT = 10380;

let cluster: SimulatedCluster;
let kube: Kubernetes;
let agents: V1Pod[];
const saDirs: string[] = [];

function agentPod(node: string, labels: Record<string, string> = { 'app.kubernetes.io/part-of': 'kcr', 'app.kubernetes.io/component': 'node-agent' }): V1Pod {
  return { metadata: { name: `node-agent-${node}`, namespace: NS, labels }, spec: { nodeName: node, containers: [{ name: 'node-agent', image: 'ghcr.io/kcr-dev/kcr:0.1.0' }] } };
}

beforeAll(async () => {
  cluster = await startSimulatedCluster({ nodes: ['node-a', 'node-b', 'node-c'], kubelet: { tickMs: 20 } });
  kube = new Kubernetes(cluster.kubeConfig);
  const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: NS } } });
  // Agents on node-a and node-b; node-c has none, and a look-alike without the component label runs there.
  for (const node of ['node-a', 'node-b']) await core.createNamespacedPod({ namespace: NS, body: agentPod(node) });
  await core.createNamespacedPod({
    namespace: NS,
    body: { ...agentPod('node-c', { 'app.kubernetes.io/part-of': 'kcr' }), metadata: { name: 'not-an-agent', namespace: NS, labels: { 'app.kubernetes.io/part-of': 'kcr' } } },
  });
  agents = await runningPods(kube, NS, SELECTOR, 2);
  await runningPods(kube, NS, 'app.kubernetes.io/part-of=kcr', 3);
});
afterAll(async () => {
  await cluster?.stop();
  for (const d of saDirs) rmSync(d, { recursive: true, force: true });
});
beforeEach(() => {
  cluster.clearFailures();
  cluster.resetApiCalls();
});

const discover = () => nodeAgentPods(kube, { namespace: NS, selector: SELECTOR, port: PORT });

/** The pod's view: KUBERNETES_SERVICE_HOST/PORT and a ServiceAccount directory with the token and CA of the kubeconfig. */
function inCluster(token?: string): { pods: InClusterPods; saDir: string } {
  const kc = parseYaml(readFileSync(cluster.kubeconfigPath, 'utf8')) as { clusters: { cluster: { server: string; 'certificate-authority-data': string } }[]; users: { user: { token: string } }[] };
  const saDir = mkdtempSync(join(tmpdir(), 'kcr-sa-'));
  saDirs.push(saDir);
  writeFileSync(join(saDir, 'ca.crt'), Buffer.from(kc.clusters[0]!.cluster['certificate-authority-data'], 'base64'));
  writeFileSync(join(saDir, 'token'), token ?? kc.users[0]!.user.token);
  const server = new URL(kc.clusters[0]!.cluster.server);
  return { pods: InClusterPods.fromEnv({ KUBERNETES_SERVICE_HOST: server.hostname, KUBERNETES_SERVICE_PORT: server.port }, saDir), saDir };
}

describe('node-agent discovery', () => {
  it('finds the agent pod on the node and calls its pod IP, with one pod list', async () => {
    const onB = agents.find((p) => p.spec?.nodeName === 'node-b')!;
    expect(onB.status?.podIP).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(await discover()('node-b')).toBe(`http://${onB.status!.podIP}:${PORT}`);
    expect(cluster.apiCalls().total).toBe(1);
    expect(cluster.callCount('list', 'pods')).toBe(1);
  });

  it('answers a transient error when no agent pod serves on the node', async () => {
    const locate = nodeAgentLocator({ discover: discover(), template: 'http://{node}:10380' });
    await expect(locate('node-c')).rejects.toThrow(TransientError);
    await expect(locate('node-c')).rejects.toThrow(/no Ready node-agent pod on node node-c/);
  });

  it('prefers a URL given for the node in KCR_NODE_AGENT_URLS, without asking the API', async () => {
    const locate = nodeAgentLocator({ urls: { 'node-a': 'http://127.0.0.1:9999/' }, discover: discover() });
    expect(await locate('node-a')).toBe('http://127.0.0.1:9999');
    expect(cluster.apiCalls().total).toBe(0);
  });

  it('tells a missing permission apart from a passing API failure', async () => {
    const undo = cluster.denyPermission({ verb: 'list', resource: 'pods', namespace: NS });
    try {
      await expect(discover()('node-a')).rejects.toThrow(NodeAgentLookupError);
      await expect(discover()('node-a')).rejects.toThrow(/HTTP 403.*needs list on pods there/);
    } finally {
      undo();
    }
    cluster.failNext({ verb: 'list', resource: 'pods', code: 503 });
    await expect(discover()('node-a')).rejects.toThrow(TransientError);
  });
});

describe('node-agent discovery from inside the cluster (ServiceAccount token, no client-node)', () => {
  it('finds the same agent pod as the Kubernetes adapter does', async () => {
    const { pods } = inCluster();
    const viaAdapter = await discover()('node-b');
    expect(await nodeAgentPods(pods, { namespace: NS, selector: SELECTOR, port: PORT })('node-b')).toBe(viaAdapter);
    expect(await nodeAgentPods(pods, { namespace: NS, selector: SELECTOR, port: PORT })('node-c')).toBeUndefined();
  });

  it('re-reads the token on every call, and classifies refusals and passing failures', async () => {
    const { pods, saDir } = inCluster();
    const find = nodeAgentPods(pods, { namespace: NS, selector: SELECTOR, port: PORT });
    expect(await find('node-a')).toMatch(/^http:\/\/[\d.]+:10380$/);
    writeFileSync(join(saDir, 'token'), 'a-revoked-token');
    await expect(find('node-a')).rejects.toThrow(NodeAgentLookupError);
    await expect(find('node-a')).rejects.toThrow(/HTTP 401/);
    writeFileSync(join(saDir, 'token'), (parseYaml(readFileSync(cluster.kubeconfigPath, 'utf8')) as { users: { user: { token: string } }[] }).users[0]!.user.token);
    cluster.failNext({ verb: 'list', resource: 'pods', code: 503 });
    await expect(find('node-a')).rejects.toThrow(TransientError);
    expect(await find('node-a')).toMatch(/:10380$/);
  });

  it('needs to be in a cluster', () => {
    expect(() => InClusterPods.fromEnv({}, '/nonexistent')).toThrow(/KUBERNETES_SERVICE_HOST is unset/);
  });
});

describe('store-artifact with discovery', () => {
  const timestamp = '2026-11-23T18:15:04Z';
  const data: CheckpointCreatedData = {
    id: checkpointId({ podUid: 'uid-redis-0', container: 'redis', checkpointedAt: timestamp }),
    namespace: 'shop',
    workload: { kind: 'StatefulSet', name: 'redis' },
    pod: 'redis-0',
    podUid: 'uid-redis-0',
    container: 'redis',
    node: 'node-c',
    archivePath: `${KUBELET_CHECKPOINT_DIR}/${kubeletArchiveName({ pod: 'redis-0', namespace: 'shop', container: 'redis', timestamp })}`,
    checkpointedAt: timestamp,
  };
  const event = { type: 'io.kcr.checkpoint.created', data, id: 'ev-1', source: '/kcr/request-checkpoint', extensions: {} } as IncomingEvent<'io.kcr.checkpoint.created'>;
  const handler = (store: MemoryStore) =>
    createStoreArtifact({
      pods: { getPod: () => Promise.resolve(undefined) },
      store,
      agents: new NodeAgentClient({ locate: nodeAgentLocator({ discover: discover() }), token: () => 'token', timeoutMs: 2_000 }),
    });
  const ctx = { log: pino({ level: 'silent' }) };

  it('answers 503 (a transient error) while the node has no serving agent, and commits nothing', async () => {
    const store = new MemoryStore();
    await expect(handler(store).handle(event, ctx)).rejects.toThrow(TransientError);
    expect(store.writes).toEqual([]);
  });

  it('emits checkpoint.failed naming the missing permission, and commits nothing', async () => {
    const store = new MemoryStore();
    const undo = cluster.denyPermission({ verb: 'list', resource: 'pods', namespace: NS });
    try {
      const out = await handler(store).handle(event, ctx);
      expect(out.map((e) => e.type)).toEqual(['io.kcr.checkpoint.failed']);
      expect((out[0]!.data as { reason: string }).reason).toMatch(/node-agent of node-c not found: .*needs list on pods/);
    } finally {
      undo();
    }
    expect(store.writes).toEqual([]);
  });
});
