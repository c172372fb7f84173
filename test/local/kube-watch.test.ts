// List+watch recovery against a scripted API server: the simulated cluster
// cannot be told to expire a resourceVersion on demand, this fake can.
import { afterEach, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { startListWatch, type WatchedObject, type WatchEventType } from '../../local/kube-watch.js';
import { labelSelectorString, matchesLabelSelector } from '../../functions/core/kubernetes/label-selector.js';
import { startApiServerSources } from '../../local/apiserver-source.js';
import { parseSourcesYaml } from '../../local/sources.js';
import { startSubscriber } from './support.js';
import { until } from '../support/wait.js';

const deployment = (name: string, rv: string) => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name, namespace: 'demo', uid: `uid-${name}`, resourceVersion: rv },
  spec: { selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'c', image: 'i' }] } } },
});

interface FakeApi {
  kubeConfig: KubeConfig;
  lists: number;
  watchVersions: string[];
  close(): Promise<void>;
}

/**
 * List 1 → rv 10; watch from 10 → 410 Expired; list 2 → rv 20 with an object
 * created during the gap; watch from 20 → ADDED "after" (rv 21), stream ends;
 * watch from 21 → MODIFIED "after" (rv 22), stays open.
 */
async function startFakeApi(): Promise<FakeApi> {
  const state = { lists: 0, watchVersions: [] as string[] };
  const open = new Set<() => void>();
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const json = (body: unknown) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    if (url.pathname === '/apis/apps/v1') {
      return json({
        kind: 'APIResourceList',
        apiVersion: 'v1',
        groupVersion: 'apps/v1',
        resources: [{ name: 'deployments', singularName: 'deployment', namespaced: true, kind: 'Deployment', verbs: ['list', 'watch'] }],
      });
    }
    if (url.pathname !== '/apis/apps/v1/namespaces/demo/deployments') return res.writeHead(404).end();
    if (url.searchParams.get('watch') !== 'true') {
      state.lists++;
      return json({ apiVersion: 'apps/v1', kind: 'DeploymentList', metadata: { resourceVersion: state.lists === 1 ? '10' : '20' }, items: state.lists === 1 ? [] : [deployment('during-gap', '15')] });
    }
    const rv = url.searchParams.get('resourceVersion') ?? '';
    state.watchVersions.push(rv);
    res.writeHead(200, { 'content-type': 'application/json' });
    const line = (type: string, object: unknown) => res.write(`${JSON.stringify({ type, object })}\n`);
    if (rv === '10') {
      line('ERROR', { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Expired', code: 410, message: 'too old resource version: 10 (15)' });
      return res.end();
    }
    if (rv === '20') {
      line('ADDED', deployment('after', '21'));
      return res.end();
    }
    if (rv === '21') line('MODIFIED', deployment('after', '22'));
    const close = () => res.end();
    open.add(close);
    res.on('close', () => open.delete(close));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: 'fake', server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true }],
    users: [{ name: 'u', token: 't' }],
    contexts: [{ name: 'fake', cluster: 'fake', user: 'u' }],
    currentContext: 'fake',
  });
  return {
    kubeConfig,
    get lists() {
      return state.lists;
    },
    get watchVersions() {
      return state.watchVersions;
    },
    close: () =>
      new Promise((resolve) => {
        for (const c of open) c();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const waitFor = (what: string, check: () => boolean) => until(what, check, { timeout: 5000, interval: 20 });

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

describe('list+watch', () => {
  it('relists on 410 Gone and resumes from the last resourceVersion when a stream ends', async () => {
    const fake = await startFakeApi();
    cleanups.push(() => fake.close());
    const listed: string[][] = [];
    const events: [WatchEventType, string, string][] = [];
    const lw = startListWatch({
      kubeConfig: fake.kubeConfig,
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      namespace: 'demo',
      retryDelayMs: 50,
      onList: (items: WatchedObject[]) => void listed.push(items.map((i) => i.metadata?.name ?? '')),
      onEvent: (type, o) => void events.push([type, o.metadata?.name ?? '', o.metadata?.resourceVersion ?? '']),
    });
    cleanups.push(() => lw.stop());
    await waitFor('two watch events', () => events.length >= 2);
    expect(fake.watchVersions).toEqual(['10', '20', '21']);
    expect(lw.lists()).toBe(2);
    expect(listed).toEqual([[], ['during-gap']]);
    expect(events).toEqual([
      ['ADDED', 'after', '21'],
      ['MODIFIED', 'after', '22'],
    ]);
  });

  it('the ApiServerSource adapter sends nothing for what a relist finds, only for watched changes', async () => {
    const fake = await startFakeApi();
    cleanups.push(() => fake.close());
    const sink = await startSubscriber();
    cleanups.push(() => sink.close());
    const source = parseSourcesYaml(`
apiVersion: sources.knative.dev/v1
kind: ApiServerSource
metadata: {name: s, namespace: demo}
spec:
  mode: Resource
  resources: [{apiVersion: apps/v1, kind: Deployment}]
  sink: {uri: ${sink.url}}
`).apiServerSources;
    const adapter = startApiServerSources({ kubeConfig: fake.kubeConfig, sources: source, retryDelayMs: 50 });
    cleanups.push(() => adapter.stop());
    await sink.waitFor(2);
    expect(sink.received.map((r) => [r.event.attributes.type, r.event.attributes.name])).toEqual([
      ['dev.knative.apiserver.resource.add', 'after'],
      ['dev.knative.apiserver.resource.update', 'after'],
    ]);
    expect(fake.lists).toBe(2);
  });
});

describe('label selectors', () => {
  const selector = {
    matchLabels: { app: 'web' },
    matchExpressions: [
      { key: 'tier', operator: 'In', values: ['a', 'b'] },
      { key: 'legacy', operator: 'DoesNotExist' },
      { key: 'zone', operator: 'Exists' },
      { key: 'env', operator: 'NotIn', values: ['prod'] },
    ],
  };

  it('renders the query syntax', () => {
    expect(labelSelectorString(selector)).toBe('app=web,tier in (a,b),!legacy,zone,env notin (prod)');
    expect(labelSelectorString({})).toBe('');
    expect(() => labelSelectorString({ matchExpressions: [{ key: 'k', operator: 'Gt' }] })).toThrow(/operator "Gt" on k/);
  });

  it.each([
    [{ app: 'web', tier: 'a', zone: 'z' }, true],
    [{ app: 'web', tier: 'c', zone: 'z' }, false],
    [{ app: 'web', tier: 'a', zone: 'z', legacy: '1' }, false],
    [{ app: 'web', tier: 'a' }, false],
    [{ app: 'web', tier: 'b', zone: 'z', env: 'prod' }, false],
    [{ app: 'api', tier: 'a', zone: 'z' }, false],
  ])('matches %o → %s', (labels, want) => {
    expect(matchesLabelSelector(selector, labels)).toBe(want);
  });
});
