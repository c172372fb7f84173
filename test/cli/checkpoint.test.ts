// `kcr checkpoint`: the on-demand request as the contract has it, sent to a
// broker stand-in, and end to end to request-checkpoint serving the simulated
// cluster; bad targets are refused before anything is sent.
import { AppsV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runCli } from '../../cli/run.js';
import { Kubernetes } from '../../functions/core/kubernetes/kubernetes.js';
import type { CheckpointCreatedData } from '../../functions/core/contract/events.js';
import { createRequestCheckpoint } from '../../functions/request-checkpoint/handler.js';
import { apiServerProxyRoute } from '../../functions/request-checkpoint/kubelet-route.js';
import { createLogger } from '../../functions/core/runtime/logger.js';
import { serveFunction, type RunningFunction } from '../../functions/core/runtime/server.js';
import { startSimulatedCluster, type SimulatedCluster } from '../../simulator/index.js';
import { startSink, type TestSink } from '../support/sink.js';
import { deployment, runningPods } from '../../simulator/workloads.js';

let sink: TestSink;

async function kcr(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli(args, { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) }, env });
  return { code, out, err };
}

beforeAll(async () => {
  sink = await startSink();
});
afterAll(async () => {
  await sink?.close();
});
beforeEach(() => {
  sink.events.length = 0;
  sink.status = 202;
});

describe('kcr checkpoint', () => {
  it('sends io.kcr.checkpoint.requested for a workload to the broker', async () => {
    const r = await kcr(['checkpoint', 'deployment/counter', '--broker', `${sink.url}/kcr-system/kcr`]);
    expect(r.code).toBe(0);
    expect(sink.events).toHaveLength(1);
    const e = sink.events[0]!;
    expect({ type: e.type, source: e.source, subject: e.subject, data: e.data }).toEqual({
      type: 'io.kcr.checkpoint.requested',
      source: '/kcr/cli',
      subject: 'default/Deployment/counter',
      data: { namespace: 'default', kind: 'Deployment', name: 'counter' },
    });
    expect(r.out).toContain(e.id);
  });

  it('asks for one container of one pod, and finds the broker in $K_SINK', async () => {
    const r = await kcr(['checkpoint', 'pod/web-0', '-n', 'shop', '-c', 'app'], { K_SINK: sink.url });
    expect(r.code).toBe(0);
    expect(sink.events.map((e) => [e.subject, e.data])).toEqual([['shop/web-0/app', { namespace: 'shop', pod: 'web-0', container: 'app' }]]);
  });

  it('prints the event and sends nothing with --dry-run', async () => {
    const r = await kcr(['checkpoint', 'sts/web', '--broker', sink.url, '--dry-run', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ status: 'dry-run', type: 'io.kcr.checkpoint.requested', data: { namespace: 'default', kind: 'StatefulSet', name: 'web' } });
    expect(sink.events).toHaveLength(0);
  });

  it.each([
    [['daemonset/agent'], /is not deployment\/<name>, statefulset\/<name> or pod\/<name>/],
    [['deployment/'], /is not deployment\/<name>/],
    [['counter'], /is not deployment\/<name>/],
    [['deployment/counter', '-c', 'app'], /--container needs a pod target/],
    [['deployment/Counter'], /deployment\/Counter in default: .*name/i],
    [['pod/web-0', '-n', 'Not_A_Namespace'], /pod\/web-0 in Not_A_Namespace: .*namespace/i],
  ])('refuses %j with a usage error and sends nothing', async (args, message) => {
    const r = await kcr(['checkpoint', ...args, '--broker', sink.url]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
    expect(sink.events).toHaveLength(0);
  });

  it('needs somewhere to send to', async () => {
    const r = await kcr(['checkpoint', 'deployment/counter']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/needs a destination/);
  });

  it('fails when the broker does not accept the event', async () => {
    sink.status = 503;
    const r = await kcr(['checkpoint', 'deployment/counter', '--broker', sink.url]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/was not accepted by .*HTTP 503/);
  });
});

describe('kcr checkpoint --to request-checkpoint', () => {
  let cluster: SimulatedCluster;
  let fn: RunningFunction;

  beforeAll(async () => {
    cluster = await startSimulatedCluster({ nodes: ['node-a', 'node-b'], kubelet: { tickMs: 20, dataSize: 4096 } });
    const kube = new Kubernetes(cluster.kubeConfig);
    fn = await serveFunction(createRequestCheckpoint({ kube, kubelet: apiServerProxyRoute(kube), timeoutSeconds: 30, concurrency: 4 }), {
      port: 0,
      host: '127.0.0.1',
      sink: sink.url,
      logger: createLogger('request-checkpoint', 'silent'),
    });
    await cluster.kubeConfig.makeApiClient(AppsV1Api).createNamespacedDeployment({
      namespace: 'default',
      body: deployment({ name: 'counter', replicas: 2, containers: ['app'], annotations: { 'kcr.io/checkpoint-restore-schedule': '0 0 1 1 *' } }),
    });
    await runningPods(kube, 'default', 'app=counter', 2);
  });
  afterAll(async () => {
    await fn?.close();
    await cluster?.stop();
  });

  it('checkpoints every replica of the workload', async () => {
    const r = await kcr(['checkpoint', 'deployment/counter', '--to', fn.url]);
    expect(r.code).toBe(0);
    const created = sink.events.filter((e) => e.type === 'io.kcr.checkpoint.created').map((e) => e.data as CheckpointCreatedData);
    expect(created).toHaveLength(2);
    expect(new Set(created.map((c) => c.pod)).size).toBe(2);
    expect(created.every((c) => c.workload.kind === 'Deployment' && c.workload.name === 'counter' && c.container === 'app')).toBe(true);
  });
});
