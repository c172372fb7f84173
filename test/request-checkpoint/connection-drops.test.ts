// A kubelet call whose connection drops is transient: request-checkpoint answers
// 503, the broker retries, and the retry checkpoints only the containers that
// failed; the others' checkpoints wait for it and are emitted once, with it.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AppsV1Api } from '@kubernetes/client-node';
import { startSimulatedCluster, type SimulatedCluster } from '../../simulator/index.js';
import { Kubernetes } from '../../functions/core/kubernetes/kubernetes.js';
import { createRequestCheckpoint } from '../../functions/request-checkpoint/handler.js';
import { apiServerProxyRoute } from '../../functions/request-checkpoint/kubelet-route.js';
import { serveFunction, type RunningFunction } from '../../functions/core/runtime/server.js';
import { createLogger } from '../../functions/core/runtime/logger.js';
import type { CheckpointCreatedData, FailedData } from '../../functions/core/contract/events.js';
import { startLocalBroker, type BrokerObservation } from '../../local/broker.js';
import { startSink, type TestSink } from '../support/sink.js';
import { deployment, runningPods } from '../../simulator/workloads.js';

const NS = 'default';
const OPT_IN = { 'kcr.io/checkpoint-restore-schedule': '0 0 1 1 *' };
/** shop: 2 replicas × 2 containers. */
const CONTAINERS = 4;

/** A ping as the PingSource sends it; the broker retries it with the same id. */
function ping(id: string) {
  return {
    specversion: '1.0',
    id,
    source: `/apis/v1/namespaces/${NS}/pingsources/kcr-deployment-shop`,
    type: 'dev.knative.sources.ping',
    datacontenttype: 'application/json',
    data: { namespace: NS, kind: 'Deployment', name: 'shop' },
  };
}

let seq = 0;
const newId = () => `ping-drop-${++seq}-${Date.now()}`;

describe('request-checkpoint when the connection to the kubelet drops', () => {
  let cluster: SimulatedCluster;
  let kube: Kubernetes;
  let sink: TestSink;
  let fn: RunningFunction;
  const post = (id: string) => fetch(fn.url, { method: 'POST', headers: { 'content-type': 'application/cloudevents+json' }, body: JSON.stringify(ping(id)) });
  const created = () => sink.events.filter((e) => e.type === 'io.kcr.checkpoint.created').map((e) => e.data as CheckpointCreatedData);
  const failed = () => sink.events.filter((e) => e.type === 'io.kcr.checkpoint.failed').map((e) => e.data as FailedData);
  const kubeletCalls = () => cluster.callCount('create', 'nodes/proxy');
  /** Every container of shop checkpointed, each once. */
  const expectEveryContainerOnce = (events: CheckpointCreatedData[]) => {
    expect(events).toHaveLength(CONTAINERS);
    expect(new Set(events.map((d) => `${d.pod}/${d.container}`)).size).toBe(CONTAINERS);
  };

  beforeAll(async () => {
    cluster = await startSimulatedCluster({ nodes: ['node-a', 'node-b'], kubelet: { tickMs: 20, dataSize: 4096 } });
    kube = new Kubernetes(cluster.kubeConfig);
    sink = await startSink();
    fn = await serveFunction(createRequestCheckpoint({ kube, kubelet: apiServerProxyRoute(kube), timeoutSeconds: 30, concurrency: 4 }), {
      port: 0,
      host: '127.0.0.1',
      sink: sink.url,
      logger: createLogger('request-checkpoint', 'silent'),
    });
    await cluster.kubeConfig.makeApiClient(AppsV1Api).createNamespacedDeployment({ namespace: NS, body: deployment({ name: 'shop', replicas: 2, containers: ['app', 'cache'], annotations: OPT_IN }) });
    await runningPods(kube, NS, 'app=shop', 2);
  });
  afterAll(async () => {
    await fn?.close();
    await sink?.close();
    await cluster?.stop();
  });
  beforeEach(() => {
    sink.events.length = 0;
    cluster.clearFailures();
    cluster.resetApiCalls();
  });

  it('dropped before the answer: 503 and nothing emitted; the retry calls the kubelet for that container alone and emits every checkpoint once', async () => {
    const id = newId();
    cluster.dropNext({ resource: 'nodes/proxy', when: 'before-answer' });
    expect((await post(id)).status).toBe(503);
    expect(sink.events).toHaveLength(0);
    expect(kubeletCalls()).toBe(CONTAINERS);

    cluster.resetApiCalls();
    expect((await post(id)).status).toBe(202);
    expect(kubeletCalls()).toBe(1);
    expectEveryContainerOnce(created());
    expect(failed()).toHaveLength(0);
  });

  it('broken off after the kubelet checkpointed: 503, and the retry checkpoints that container again', async () => {
    const id = newId();
    cluster.dropNext({ resource: 'nodes/proxy', when: 'mid-answer' });
    expect((await post(id)).status).toBe(503);
    expect(sink.events).toHaveLength(0);

    cluster.resetApiCalls();
    expect((await post(id)).status).toBe(202);
    expect(kubeletCalls()).toBe(1);
    expectEveryContainerOnce(created());
  });

  it('holds the checkpoints per event: another event meanwhile checkpoints every container, and the retry still emits its own', async () => {
    const first = newId();
    cluster.dropNext({ resource: 'nodes/proxy', when: 'before-answer' });
    expect((await post(first)).status).toBe(503);

    expect((await post(newId())).status).toBe(202);
    expectEveryContainerOnce(created());

    sink.events.length = 0;
    cluster.resetApiCalls();
    expect((await post(first)).status).toBe(202);
    expect(kubeletCalls()).toBe(1);
    expectEveryContainerOnce(created());
  });

  it("a container whose connection keeps dropping: on the third attempt the others' checkpoints go out, with checkpoint.failed for it", async () => {
    const [victim] = await runningPods(kube, NS, 'app=shop', 2);
    const pod = victim!.metadata!.name!;
    cluster.dropNext({ path: new RegExp(`/proxy/checkpoint/${NS}/${pod}/cache$`), count: 100, when: 'before-answer' });
    const id = newId();
    expect((await post(id)).status).toBe(503);
    cluster.resetApiCalls();
    expect((await post(id)).status).toBe(503);
    expect(kubeletCalls()).toBe(1);
    expect(sink.events).toHaveLength(0);

    expect((await post(id)).status).toBe(202);
    expect(created()).toHaveLength(CONTAINERS - 1);
    expect(created().some((d) => d.pod === pod && d.container === 'cache')).toBe(false);
    expect(failed()).toEqual([expect.objectContaining({ pod, container: 'cache', stage: 'request', reason: expect.stringMatching(/^checkpoint default\/.*\/cache on node node-\w: socket hang up/) })]);
  });

  it('every connection dropping: 503 on every attempt, nothing emitted', async () => {
    cluster.dropNext({ resource: 'nodes/proxy', count: 100, when: 'before-answer' });
    const id = newId();
    for (let attempt = 1; attempt <= 4; attempt++) expect((await post(id)).status, `attempt ${attempt}`).toBe(503);
    expect(sink.events).toHaveLength(0);
  });

  it("end to end through the broker: the checkpoint is taken on the broker's retry, and store-artifact gets every checkpoint once", async () => {
    const store = await startSink();
    const broker = await startLocalBroker({ services: { 'store-artifact': store.url }, backoffScale: 0.05 });
    const viaBroker = await serveFunction(createRequestCheckpoint({ kube, kubelet: apiServerProxyRoute(kube), timeoutSeconds: 30, concurrency: 4 }), {
      port: 0,
      host: '127.0.0.1',
      sink: broker.url,
      logger: createLogger('request-checkpoint', 'silent'),
    });
    const seen: BrokerObservation[] = [];
    broker.onDelivery((o) => seen.push(o));
    try {
      // The function's sink is the broker and the broker's subscriber the function: wired once both listen.
      broker.setService('request-checkpoint', viaBroker.url);
      cluster.dropNext({ resource: 'nodes/proxy', when: 'before-answer' });
      const res = await fetch(broker.url, { method: 'POST', headers: { 'content-type': 'application/cloudevents+json' }, body: JSON.stringify(ping(newId())) });
      expect(res.status).toBe(202);
      await broker.idle();
      const toRequestCheckpoint = seen.filter((o) => 'trigger' in o && o.trigger === 'request-checkpoint');
      expect(toRequestCheckpoint.map((o) => [o.kind, 'status' in o ? o.status : undefined])).toEqual([
        ['retrying', 503],
        ['delivered', 202],
      ]);
      expect(kubeletCalls()).toBe(CONTAINERS + 1);
      expectEveryContainerOnce(store.events.filter((e) => e.type === 'io.kcr.checkpoint.created').map((e) => e.data as CheckpointCreatedData));
    } finally {
      await viaBroker.close();
      await broker.close();
      await store.close();
    }
  });
});
