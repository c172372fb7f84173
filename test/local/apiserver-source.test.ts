// Against the simulated cluster (real REST + watch over HTTP, client-node),
// with the project's own sources/*.yaml.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubernetesObjectApi, type KubernetesObject } from '@kubernetes/client-node';
import { startSimulatedCluster, type SimulatedCluster } from '../../simulator/index.js';
import { dataOf } from '../../functions/core/runtime/cloudevents-http.js';
import { makeResourceEvent, startApiServerSources, type ApiServerSourceAdapter, type ApiServerSourceObservation } from '../../local/apiserver-source.js';
import { brokerSinkResolver, loadSourcesDir, parseSourcesYaml } from '../../local/sources.js';
import { startSubscriber, type Subscriber } from './support.js';
import { until } from '../support/wait.js';

let cluster: SimulatedCluster;
let api: KubernetesObjectApi;
let sink: Subscriber;
let adapter: ApiServerSourceAdapter;
const seen: ApiServerSourceObservation[] = [];

const deployment = (name: string, namespace: string, labels: Record<string, string> = {}): KubernetesObject =>
  ({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace, labels },
    spec: {
      replicas: 0,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'app', image: 'registry.local/counter:1' }] } },
    },
  }) as KubernetesObject;

const about = (s: Subscriber, kind: string, name: string) => s.received.filter((r) => r.event.attributes.kind === kind && r.event.attributes.name === name);

const waitFor = (what: string, check: () => boolean) => until(what, check, { timeout: 8000, interval: 25 });

beforeAll(async () => {
  cluster = await startSimulatedCluster();
  api = KubernetesObjectApi.makeApiClient(cluster.kubeConfig);
  for (const ns of ['demo', 'kcr-system']) await api.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } } as KubernetesObject);
  await api.create(deployment('preexisting', 'demo'));
  sink = await startSubscriber();
  adapter = startApiServerSources({
    kubeConfig: cluster.kubeConfig,
    sources: loadSourcesDir().apiServerSources,
    resolveSink: brokerSinkResolver(`${sink.url}kcr-system/kcr`),
    retryDelayMs: 100,
  });
  adapter.onEvent((o) => seen.push(o));
  await adapter.synced;
});

afterAll(async () => {
  await adapter?.stop();
  await sink?.close();
  await cluster?.stop();
});

describe('ApiServerSource adapter (sources/apiserversources.yaml) against the simulated cluster', () => {
  it('sends add, update and delete for a Deployment, with the attributes of the real adapter', async () => {
    await api.create(deployment('counter', 'demo', { 'kcr.io/demo': 'yes' }));
    await waitFor('add event', () => about(sink, 'Deployment', 'counter').length >= 1);
    await api.patch(
      { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'counter', namespace: 'demo', annotations: { 'kcr.io/checkpoint-restore-schedule': '*/10 * * * * *' } } } as KubernetesObject,
      undefined,
      undefined,
      undefined,
      undefined,
      'application/merge-patch+json' as never,
    );
    await waitFor('update event', () => about(sink, 'Deployment', 'counter').some((r) => r.event.attributes.type?.endsWith('.update')));
    await api.delete(deployment('counter', 'demo'));
    await waitFor('delete event', () => about(sink, 'Deployment', 'counter').some((r) => r.event.attributes.type?.endsWith('.delete')));

    const events = about(sink, 'Deployment', 'counter').map((r) => r.event);
    const types = events.map((e) => e.attributes.type);
    expect(types[0]).toBe('dev.knative.apiserver.resource.add');
    expect(types.at(-1)).toBe('dev.knative.apiserver.resource.delete');
    expect(types.slice(1, -1).every((t) => t === 'dev.knative.apiserver.resource.update')).toBe(true);

    const add = events[0]!;
    expect(add.attributes).toMatchObject({
      specversion: '1.0',
      source: cluster.kubeConfig.getCurrentCluster()!.server,
      subject: '/apis/apps/v1/namespaces/demo/deployments/counter',
      datacontenttype: 'application/json',
      kind: 'Deployment',
      name: 'counter',
      namespace: 'demo',
      apiversion: 'apps/v1',
    });
    expect(add.attributes.id).toMatch(/^[0-9a-f-]{36}$/);
    const object = dataOf(add) as { apiVersion: string; kind: string; metadata: { uid: string; labels: Record<string, string> }; spec: unknown };
    expect(object).toMatchObject({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { labels: { 'kcr.io/demo': 'yes' } }, spec: { replicas: 0 } });
    expect(object.metadata.uid).toBeTruthy();
    // Controllers may update the object too (status); one update carries the patched annotation.
    const annotated = events
      .filter((e) => e.attributes.type?.endsWith('.update'))
      .map((e) => (dataOf(e) as { metadata: { annotations?: Record<string, string> } }).metadata.annotations?.['kcr.io/checkpoint-restore-schedule']);
    expect(annotated).toContain('*/10 * * * * *');
    expect(sink.received.every((r) => r.path === '/kcr-system/kcr')).toBe(true);
    expect(seen.some((o) => o.kind === 'sent' && o.source === 'kcr-system/kcr-workloads' && o.status === 202)).toBe(true);
  });

  it('sent nothing for the Deployment that existed before it started', () => {
    expect(about(sink, 'Deployment', 'preexisting')).toHaveLength(0);
  });

  it('skips namespaces its namespaceSelector excludes', async () => {
    await api.create(deployment('internal', 'kcr-system'));
    await api.create(deployment('marker', 'demo'));
    await waitFor('marker add event', () => about(sink, 'Deployment', 'marker').length >= 1);
    expect(about(sink, 'Deployment', 'internal')).toHaveLength(0);
  });

  it('watches its own namespace only without a namespaceSelector, and applies a resource label selector', async () => {
    const own = await startSubscriber();
    const yaml = `
apiVersion: sources.knative.dev/v1
kind: ApiServerSource
metadata: {name: labelled, namespace: demo}
spec:
  mode: Resource
  resources:
    - apiVersion: apps/v1
      kind: Deployment
      selector: {matchLabels: {tier: web}}
  ceOverrides: {extensions: {kcrorigin: local}}
  sink: {uri: ${own.url}}
`;
    const second = startApiServerSources({ kubeConfig: cluster.kubeConfig, sources: parseSourcesYaml(yaml).apiServerSources, retryDelayMs: 100 });
    try {
      await second.synced;
      await api.create(deployment('web-elsewhere', 'default', { tier: 'web' }));
      await api.create(deployment('plain', 'demo'));
      await api.create(deployment('web', 'demo', { tier: 'web' }));
      await waitFor('labelled add event', () => about(own, 'Deployment', 'web').length >= 1);
      await waitFor('the other source saw it too', () => about(sink, 'Deployment', 'web').length >= 1);
      expect(about(own, 'Deployment', 'web')[0]!.event.attributes.kcrorigin).toBe('local');
      expect(about(own, 'Deployment', 'plain')).toHaveLength(0);
      expect(about(own, 'Deployment', 'web-elsewhere')).toHaveLength(0);
    } finally {
      await second.stop();
      await own.close();
    }
  });
});

describe('makeResourceEvent', () => {
  it('builds the subject the way Knative does for core kinds', () => {
    const e = makeResourceEvent('MODIFIED', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'counter-0', namespace: 'demo' } }, 'https://10.96.0.1:443');
    expect(e.attributes).toMatchObject({
      type: 'dev.knative.apiserver.resource.update',
      subject: '/apis/v1/namespaces/demo/pods/counter-0',
      source: 'https://10.96.0.1:443',
      kind: 'Pod',
      apiversion: 'v1',
    });
  });
});
