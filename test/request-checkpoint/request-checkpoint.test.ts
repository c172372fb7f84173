import { basename, join } from 'node:path';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AppsV1Api, CoreV1Api } from '@kubernetes/client-node';
import { startSimulatedCluster, type SimulatedCluster } from '../../simulator/index.js';
import { Kubernetes } from '../../functions/core/kubernetes/kubernetes.js';
import { createRequestCheckpoint } from '../../functions/request-checkpoint/handler.js';
import { apiServerProxyRoute } from '../../functions/request-checkpoint/kubelet-route.js';
import { serveFunction, type RunningFunction } from '../../functions/core/runtime/server.js';
import { createLogger } from '../../functions/core/runtime/logger.js';
import { checkpointId } from '../../functions/core/contract/checkpoint-id.js';
import type { CheckpointCreatedData, FailedData } from '../../functions/core/contract/events.js';
import { scrape } from '../support/metrics.js';
import { startSink, type TestSink } from '../support/sink.js';
import { deployment, runningPods } from '../../simulator/workloads.js';
import { namespaceExclusion } from '../../functions/core/kubernetes/excluded-namespaces.js';

const NS = 'default';
const OPT_IN = { 'kcr.io/checkpoint-restore-schedule': '0 0 1 1 *' };

function ping(name: string, extensions: Record<string, string> = {}, kind = 'Deployment', namespace = NS) {
  return {
    headers: { 'content-type': 'application/cloudevents+json' },
    body: JSON.stringify({
      specversion: '1.0',
      id: `ping-${Math.random().toString(16).slice(2)}`,
      source: `/apis/v1/namespaces/${namespace}/pingsources/kcr-deployment-${name}`,
      type: 'dev.knative.sources.ping',
      datacontenttype: 'application/json',
      data: { namespace, kind, name },
      ...extensions,
    }),
  };
}

function requested(data: Record<string, string>) {
  return {
    headers: { 'content-type': 'application/cloudevents+json' },
    body: JSON.stringify({ specversion: '1.0', id: `req-${Math.random()}`, source: '/kcr/cli', type: 'io.kcr.checkpoint.requested', data }),
  };
}

describe('request-checkpoint against the simulated cluster, over HTTP', () => {
  let cluster: SimulatedCluster;
  let kube: Kubernetes;
  let sink: TestSink;
  let fn: RunningFunction;
  const post = (req: { headers: Record<string, string>; body: string }) => fetch(fn.url, { method: 'POST', ...req });
  const created = () => sink.events.filter((e) => e.type === 'io.kcr.checkpoint.created').map((e) => e.data as CheckpointCreatedData);
  const failed = () => sink.events.filter((e) => e.type === 'io.kcr.checkpoint.failed').map((e) => e.data as FailedData);

  beforeAll(async () => {
    cluster = await startSimulatedCluster({ nodes: ['node-a', 'node-b', 'node-c'], kubelet: { tickMs: 20, dataSize: 4096 } });
    kube = new Kubernetes(cluster.kubeConfig);
    sink = await startSink();
    fn = await serveFunction(createRequestCheckpoint({ kube, kubelet: apiServerProxyRoute(kube), timeoutSeconds: 30, concurrency: 4, excluded: namespaceExclusion('kube-system,knative-*') }), {
      port: 0,
      host: '127.0.0.1',
      sink: sink.url,
      logger: createLogger('request-checkpoint', 'silent'),
    });
    const apps = cluster.kubeConfig.makeApiClient(AppsV1Api);
    await apps.createNamespacedDeployment({ namespace: NS, body: deployment({ name: 'shop', replicas: 3, containers: ['app', 'cache'], annotations: OPT_IN }) });
    await apps.createNamespacedDeployment({
      namespace: NS,
      body: deployment({ name: 'solo', replicas: 1, containers: ['app', 'sidecar'], annotations: { ...OPT_IN, 'kcr.io/checkpoint-containers': 'app' } }),
    });
    // Not opted in, and one in an excluded namespace that says it is.
    await apps.createNamespacedDeployment({ namespace: NS, body: deployment({ name: 'plain', replicas: 1 }) });
    const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: 'knative-serving' } } });
    await apps.createNamespacedDeployment({ namespace: 'knative-serving', body: deployment({ name: 'activator', namespace: 'knative-serving', replicas: 1, annotations: OPT_IN }) });
    await runningPods(kube, NS, 'app=shop', 3);
    await runningPods(kube, NS, 'app=solo', 1);
    await runningPods(kube, NS, 'app=plain', 1);
    await runningPods(kube, 'knative-serving', 'app=activator', 1);
  });
  afterAll(async () => {
    await fn?.close();
    await sink?.close();
    await cluster?.stop();
  });
  beforeEach(() => {
    sink.events.length = 0;
    cluster.clearFailures();
  });

  it('checkpoints every container of every replica: 3 pods × 2 containers = 6 created events, archives on the right nodes', async () => {
    const res = await post(ping('shop'));
    expect(res.status).toBe(202);
    const out = created();
    expect(out).toHaveLength(6);
    const pods = await runningPods(kube, NS, 'app=shop', 3);
    for (const pod of pods) {
      for (const container of ['app', 'cache']) {
        const e = out.find((d) => d.pod === pod.metadata?.name && d.container === container);
        expect(e, `${pod.metadata?.name}/${container}`).toBeDefined();
        expect(e!.node).toBe(pod.spec?.nodeName);
        expect(e!.podUid).toBe(pod.metadata?.uid);
        expect(e).toMatchObject({ namespace: NS, workload: { kind: 'Deployment', name: 'shop' } });
        expect(e!.id).toBe(checkpointId({ podUid: pod.metadata!.uid!, container, checkpointedAt: e!.checkpointedAt }));
        expect(e!.archivePath).toMatch(/^\/var\/lib\/kubelet\/checkpoints\/checkpoint-/);
        expect(existsSync(join(cluster.checkpointDir(e!.node), basename(e!.archivePath)))).toBe(true);
      }
    }
    expect(sink.events.every((e) => e.source === '/kcr/request-checkpoint' && typeof e.kcrcheckpointid === 'string')).toBe(true);
  });

  it('keeps going when one pod fails: 5 created and 1 failed naming the pod', async () => {
    const [victim] = await runningPods(kube, NS, 'app=shop', 3);
    cluster.failCheckpoints(victim!.spec!.nodeName!, { pod: victim!.metadata!.name!, container: 'cache', message: 'criu dump failed: (00.012) Error (criu/cr-dump.c:1791): Dumping FAILED.' });
    try {
      expect((await post(ping('shop'))).status).toBe(202);
    } finally {
      cluster.clearCheckpointFailures();
    }
    expect(created()).toHaveLength(5);
    expect(failed()).toHaveLength(1);
    expect(failed()[0]).toMatchObject({ pod: victim!.metadata!.name, container: 'cache', stage: 'request' });
    expect(failed()[0]!.reason).toMatch(/container runtime failed to checkpoint \(HTTP 500: .*Dumping FAILED/);
  });

  it('honours kcr.io/checkpoint-containers, read from the workload', async () => {
    expect((await post(ping('solo'))).status).toBe(202);
    expect(created().map((d) => d.container)).toEqual(['app']);
  });

  it('measures each kubelet checkpoint call on /metrics, by outcome', async () => {
    const before = (await scrape(fn.url, 'kcr_kubelet_checkpoint_duration_seconds_count', { function: 'request-checkpoint', outcome: 'created' })) ?? 0;
    expect((await post(ping('shop'))).status).toBe(202);
    expect(created()).toHaveLength(6);
    expect(await scrape(fn.url, 'kcr_kubelet_checkpoint_duration_seconds_count', { function: 'request-checkpoint', outcome: 'created' })).toBe(before + 6);
  });

  it('costs at most 2 API calls per container plus 1 read of the workload and 1 list per ping', async () => {
    cluster.resetApiCalls();
    expect((await post(ping('shop'))).status).toBe(202);
    const calls = cluster.apiCalls();
    expect(created()).toHaveLength(6);
    expect(calls.total).toBeLessThanOrEqual(2 * 6 + 2);
    expect(cluster.callCount('get', 'deployments')).toBe(1);
    expect(cluster.callCount('list', 'pods')).toBe(1);
    expect(cluster.callCount('create', 'nodes/proxy')).toBe(6);
    expect(cluster.callCount('create', 'events')).toBe(6);
  });

  it('records a core/v1 Event on the pod for each checkpoint', async () => {
    const [pod] = await runningPods(kube, NS, 'app=solo', 1);
    await post(requested({ namespace: NS, pod: pod!.metadata!.name!, container: 'app' }));
    const id = created()[0]!.id;
    const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
    const events = await core.listNamespacedEvent({ namespace: NS, fieldSelector: `involvedObject.name=${pod!.metadata!.name}` });
    const mine = events.items.find((e) => e.reason === 'Checkpointed' && e.message?.includes(id));
    expect(mine?.involvedObject.fieldPath).toBe('spec.containers{app}');
  });

  it('checkpoints one pod on demand, and fails clearly for a pod that does not exist', async () => {
    const [pod] = await runningPods(kube, NS, 'app=solo', 1);
    expect((await post(requested({ namespace: NS, pod: pod!.metadata!.name! }))).status).toBe(202);
    expect(
      created()
        .map((d) => d.container)
        .sort(),
    ).toEqual(['app', 'sidecar']);
    expect(created()[0]).toMatchObject({ workload: { kind: 'Deployment', name: 'solo' } });
    sink.events.length = 0;
    expect((await post(requested({ namespace: NS, pod: 'ghost' }))).status).toBe(202);
    expect(failed()).toEqual([expect.objectContaining({ pod: 'ghost', reason: 'pod default/ghost not found', stage: 'request' })]);
  });

  describe('checkpoints only what opted in on the live object, outside the excluded namespaces', () => {
    // Anyone in the cluster can post a ping or a request: the event names a target, the API decides.
    it.each([
      ['a ping for an un-annotated Deployment', () => ping('plain')],
      ['a request for an un-annotated Deployment', () => requested({ namespace: NS, kind: 'Deployment', name: 'plain' })],
      ['a ping for an annotated Deployment in an excluded namespace', () => ping('activator', {}, 'Deployment', 'knative-serving')],
      ['a request for an annotated Deployment in an excluded namespace', () => requested({ namespace: 'knative-serving', kind: 'Deployment', name: 'activator' })],
      ['a ping whose selector extension widens it to other pods', () => ping('plain', { kcrselector: 'app in (plain,shop)' })],
    ])('%s: no kubelet call, checkpoint.failed saying why', async (_what, event) => {
      cluster.resetApiCalls();
      expect((await post(event())).status).toBe(202);
      expect(cluster.callCount('create', 'nodes/proxy')).toBe(0);
      expect(created()).toHaveLength(0);
      expect(failed()).toEqual([
        expect.objectContaining({
          stage: 'request',
          reason: expect.stringMatching(/has not opted in: no kcr\.io\/checkpoint-restore-schedule annotation|is excluded from checkpoints \(KCR_EXCLUDED_NAMESPACES\)/),
        }),
      ]);
    });

    it('a request for a pod of an un-annotated Deployment: no kubelet call', async () => {
      const [pod] = await runningPods(kube, NS, 'app=plain', 1);
      cluster.resetApiCalls();
      expect((await post(requested({ namespace: NS, pod: pod!.metadata!.name! }))).status).toBe(202);
      expect(cluster.callCount('create', 'nodes/proxy')).toBe(0);
      expect(failed()[0]!.reason).toBe(`pod ${NS}/${pod!.metadata!.name} has not opted in: its Deployment plain has no kcr.io/checkpoint-restore-schedule annotation`);
    });

    it('a request for a pod in an excluded namespace: no API call at all', async () => {
      const [pod] = await runningPods(kube, 'knative-serving', 'app=activator', 1);
      cluster.resetApiCalls();
      expect((await post(requested({ namespace: 'knative-serving', pod: pod!.metadata!.name! }))).status).toBe(202);
      expect(cluster.apiCalls().total).toBe(0);
      expect(failed()[0]!.reason).toBe('namespace knative-serving is excluded from checkpoints (KCR_EXCLUDED_NAMESPACES)');
    });
  });

  it('never runs two checkpoints of the same container at once: concurrent requests share one', async () => {
    const [pod] = await runningPods(kube, NS, 'app=solo', 1);
    cluster.resetApiCalls();
    const req = requested({ namespace: NS, pod: pod!.metadata!.name!, container: 'app' });
    const [a, b] = await Promise.all([post(req), post(req)]);
    expect([a.status, b.status]).toEqual([202, 202]);
    expect(cluster.callCount('create', 'nodes/proxy')).toBe(1);
    expect(new Set(created().map((d) => d.id)).size).toBe(1);
  });

  describe('maps each kubelet answer to its outcome', () => {
    const one = async () => {
      const [pod] = await runningPods(kube, NS, 'app=solo', 1);
      return { pod: pod!, res: await post(requested({ namespace: NS, pod: pod!.metadata!.name!, container: 'app' })) };
    };

    it('403 from the API server: failed, naming nodes/proxy', async () => {
      const undo = cluster.denyPermission({ verb: 'create', resource: 'nodes/proxy' });
      try {
        expect((await one()).res.status).toBe(202);
      } finally {
        undo();
      }
      expect(failed()[0]!.reason).toMatch(/refused kcr \(HTTP 403: .*forbidden.*\); fix: grant .*"create" on "nodes\/proxy"/);
    });

    it('403 from the kubelet: failed, naming nodes/checkpoint for kube-apiserver-kubelet-client', async () => {
      cluster.setApiServerKubeletCheckpointPermission(false);
      try {
        expect((await one()).res.status).toBe(202);
      } finally {
        cluster.setApiServerKubeletCheckpointPermission(true);
      }
      expect(failed()[0]!.reason).toMatch(/kubelet refused the API server .*kube-apiserver-kubelet-client "create" on "nodes\/checkpoint"/);
    });

    it('404 (feature gate off): failed', async () => {
      const [pod] = await runningPods(kube, NS, 'app=solo', 1);
      cluster.setCheckpointFeatureGate(pod!.spec!.nodeName!, false);
      try {
        expect((await one()).res.status).toBe(202);
      } finally {
        cluster.setCheckpointFeatureGate(pod!.spec!.nodeName!, true);
      }
      expect(failed()[0]!.reason).toMatch(/404: the ContainerCheckpoint feature gate is off/);
    });

    it('500 from the runtime: failed with its text', async () => {
      const [pod] = await runningPods(kube, NS, 'app=solo', 1);
      cluster.failCheckpoints(pod!.spec!.nodeName!, { message: 'rpc error: code = Unknown desc = failed to checkpoint' });
      try {
        expect((await one()).res.status).toBe(202);
      } finally {
        cluster.clearCheckpointFailures();
      }
      expect(failed()[0]!.reason).toMatch(/HTTP 500: .*failed to checkpoint/);
    });

    it.each([429, 502, 503, 504])('%i from the API server: 503 so the broker retries, nothing emitted', async (code) => {
      cluster.failNext({ resource: 'nodes/proxy', code, count: 1 });
      expect((await one()).res.status).toBe(503);
      expect(sink.events).toHaveLength(0);
    });

    it('API server unreachable while listing: 503', async () => {
      cluster.failNext({ verb: 'list', resource: 'pods', code: 500, count: 1 });
      expect((await post(ping('shop'))).status).toBe(503);
      expect(sink.events).toHaveLength(0);
    });
  });
});
