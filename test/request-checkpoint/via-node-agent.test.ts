// request-checkpoint's default route (KCR_CHECKPOINT_VIA=node-agent): the node-agent
// of each pod's node calls its own kubelet directly, with a ServiceAccount that holds
// only nodes/checkpoint create; request-checkpoint itself holds no node permission, and
// nothing goes through the API server's node proxy.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AppsV1Api, CoreV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { startSimulatedCluster, type SimulatedCluster } from '../../simulator/index.js';
import { Kubernetes } from '../../functions/core/kubernetes/kubernetes.js';
import { nodeAgentLocator } from '../../functions/core/node-agent/locator.js';
import { createRequestCheckpoint } from '../../functions/request-checkpoint/handler.js';
import { nodeAgentRoute } from '../../functions/request-checkpoint/kubelet-route.js';
import { serveFunction, type RunningFunction } from '../../functions/core/runtime/server.js';
import { createLogger } from '../../functions/core/runtime/logger.js';
import type { CheckpointCreatedData, FailedData } from '../../functions/core/contract/events.js';
import { kubeletCheckpointer } from '../../node-agent/kubelet-client.js';
import { startNodeAgent, type NodeAgent } from '../../node-agent/server.js';
import { deployment, runningPods } from '../../simulator/workloads.js';
import { startSink, type TestSink } from '../support/sink.js';
import { capturingLogger } from '../support/logs.js';

const NS = 'default';
const AGENT_TOKEN = 'agent-token';
const OPT_IN = { 'kcr.io/checkpoint-restore-schedule': '0 0 1 1 *' };

function ping(name: string) {
  return {
    headers: { 'content-type': 'application/cloudevents+json' },
    body: JSON.stringify({
      specversion: '1.0',
      id: `ping-${Math.random().toString(16).slice(2)}`,
      source: `/apis/v1/namespaces/${NS}/pingsources/kcr-deployment-${name}`,
      type: 'dev.knative.sources.ping',
      data: { namespace: NS, kind: 'Deployment', name },
    }),
  };
}

describe('request-checkpoint through the node-agents', () => {
  let cluster: SimulatedCluster;
  let kube: Kubernetes;
  let sink: TestSink;
  let fn: RunningFunction;
  let core: CoreV1Api;
  const agents: NodeAgent[] = [];
  const tokenFiles = new Map<string, string>();
  const post = (req: { headers: Record<string, string>; body: string }) => fetch(fn.url, { method: 'POST', ...req });
  const created = () => sink.events.filter((e) => e.type === 'io.kcr.checkpoint.created').map((e) => e.data as CheckpointCreatedData);
  const failed = () => sink.events.filter((e) => e.type === 'io.kcr.checkpoint.failed').map((e) => e.data as FailedData);
  const saToken = async (name: string) => (await core.createNamespacedServiceAccountToken({ namespace: 'kcr-system', name, body: { spec: { expirationSeconds: 600, audiences: [] } } })).status!.token;

  beforeAll(async () => {
    // The kubelets' default cache TTLs: the second ping re-reviews nothing.
    cluster = await startSimulatedCluster({ nodes: ['node-a', 'node-b'], kubelet: { tickMs: 20, dataSize: 4096 } });
    kube = new Kubernetes(cluster.kubeConfig);
    core = cluster.kubeConfig.makeApiClient(CoreV1Api);
    const rbac = cluster.kubeConfig.makeApiClient(RbacAuthorizationV1Api);
    await core.createNamespace({ body: { metadata: { name: 'kcr-system' } } });
    for (const name of ['node-agent', 'unbound']) await core.createNamespacedServiceAccount({ namespace: 'kcr-system', body: { metadata: { name } } });
    await rbac.createClusterRole({ body: { metadata: { name: 'kcr-node-agent' }, rules: [{ apiGroups: [''], resources: ['nodes/checkpoint'], verbs: ['create'] }] } });
    await rbac.createClusterRoleBinding({
      body: {
        metadata: { name: 'kcr-node-agent' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'kcr-node-agent' },
        subjects: [{ kind: 'ServiceAccount', name: 'node-agent', namespace: 'kcr-system' }],
      },
    });
    const dir = mkdtempSync(join(tmpdir(), 'kcr-rc-agents-'));
    const urls: Record<string, string> = {};
    for (const node of cluster.nodes) {
      const tokenFile = join(dir, `${node}.token`);
      writeFileSync(tokenFile, await saToken('node-agent'));
      tokenFiles.set(node, tokenFile);
      const agent = await startNodeAgent({
        dir: cluster.checkpointDir(node),
        token: AGENT_TOKEN,
        allowDelete: false,
        kubelet: kubeletCheckpointer({ url: cluster.kubeletUrl(node), caFile: cluster.kubeletCaFile, tokenFile }),
        logger: capturingLogger().logger,
      });
      agents.push(agent);
      urls[node] = agent.url;
    }
    sink = await startSink();
    const kubelet = nodeAgentRoute({ locate: nodeAgentLocator({ urls }), token: () => AGENT_TOKEN });
    fn = await serveFunction(createRequestCheckpoint({ kube, kubelet, timeoutSeconds: 30, concurrency: 4 }), {
      port: 0,
      host: '127.0.0.1',
      sink: sink.url,
      logger: createLogger('request-checkpoint', 'silent'),
    });
    const apps = cluster.kubeConfig.makeApiClient(AppsV1Api);
    await apps.createNamespacedDeployment({ namespace: NS, body: deployment({ name: 'shop', replicas: 3, containers: ['app', 'cache'], annotations: OPT_IN }) });
    await runningPods(kube, NS, 'app=shop', 3);
  });
  afterAll(async () => {
    await fn?.close();
    await sink?.close();
    for (const a of agents) await a.close();
    await cluster?.stop();
  });
  beforeEach(() => {
    sink.events.length = 0;
  });

  it('checkpoints every container with no nodes/proxy call, at 2 API calls per container + 2 per ping once the kubelets cached the review', async () => {
    expect((await post(ping('shop'))).status).toBe(202);
    expect(created()).toHaveLength(6);
    const pods = await runningPods(kube, NS, 'app=shop', 3);
    for (const e of created()) expect(e.node).toBe(pods.find((p) => p.metadata?.name === e.pod)?.spec?.nodeName);

    sink.events.length = 0;
    cluster.resetApiCalls();
    expect((await post(ping('shop'))).status).toBe(202);
    expect(created()).toHaveLength(6);
    expect(cluster.callCount('create', 'nodes/proxy')).toBe(0);
    // get the Deployment, list its pods, one Event per container; the kubelets' reviews are cached.
    expect(cluster.apiCalls().byKey).toEqual({ 'get deployments.apps': 1, 'list pods': 1, 'create events': 6 });
  });

  it('a node-agent whose ServiceAccount lacks nodes/checkpoint gets checkpoint.failed naming the fix, and the other node keeps working', async () => {
    const pods = await runningPods(kube, NS, 'app=shop', 3);
    const node = pods[0]!.spec!.nodeName!;
    writeFileSync(tokenFiles.get(node)!, await saToken('unbound'));
    try {
      expect((await post(ping('shop'))).status).toBe(202);
    } finally {
      writeFileSync(tokenFiles.get(node)!, await saToken('node-agent'));
    }
    const onNode = pods.filter((p) => p.spec?.nodeName === node).length * 2;
    expect(failed()).toHaveLength(onNode);
    expect(created()).toHaveLength(6 - onNode);
    for (const f of failed()) {
      expect(f.reason).toMatch(
        /^the kubelet refused the node-agent \(HTTP 403: Forbidden \(user=system:serviceaccount:kcr-system:unbound, verb=create, resource=nodes, subresource\(s\)=\[checkpoint\]\)\); fix: grant ServiceAccount kcr-system\/node-agent/,
      );
    }
  });

  it('a node-agent that refuses request-checkpoint (wrong shared token) is a permanent failure; an unreachable one is retried (503)', async () => {
    const urls = Object.fromEntries(cluster.nodes.map((n, i) => [n, agents[i]!.url]));
    const wrongToken = await serveFunction(
      createRequestCheckpoint({ kube, kubelet: nodeAgentRoute({ locate: nodeAgentLocator({ urls }), token: () => 'wrong' }), timeoutSeconds: 30, concurrency: 4 }),
      { port: 0, host: '127.0.0.1', sink: sink.url, logger: createLogger('request-checkpoint', 'silent') },
    );
    const unreachable = await serveFunction(
      createRequestCheckpoint({
        kube,
        kubelet: nodeAgentRoute({ locate: nodeAgentLocator({ urls: Object.fromEntries(cluster.nodes.map((n) => [n, 'http://127.0.0.1:1'])) }), token: () => AGENT_TOKEN }),
        timeoutSeconds: 30,
        concurrency: 4,
      }),
      { port: 0, host: '127.0.0.1', sink: sink.url, logger: createLogger('request-checkpoint', 'silent') },
    );
    try {
      expect((await fetch(wrongToken.url, { method: 'POST', ...ping('shop') })).status).toBe(202);
      expect(failed()).toHaveLength(6);
      expect(failed()[0]!.reason).toMatch(/node-agent refused request-checkpoint's token \(HTTP 401/);
      sink.events.length = 0;
      expect((await fetch(unreachable.url, { method: 'POST', ...ping('shop') })).status).toBe(503);
      expect(sink.events).toHaveLength(0);
    } finally {
      await wrongToken.close();
      await unreachable.close();
    }
  });
});
