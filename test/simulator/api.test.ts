// The simulated API server through @kubernetes/client-node: CRUD, selectors, watch,
// conflicts, patch strategies, errors, authentication, failure injection, GC.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppsV1Api, CoreV1Api, CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions, Watch, type V1Pod } from '@kubernetes/client-node';
import { startSimulatedCluster, type SimulatedCluster } from '../../simulator/index.js';
import { apiError } from './helpers.js';

let cluster: SimulatedCluster;
let core: CoreV1Api;
let apps: AppsV1Api;
let custom: CustomObjectsApi;

function pod(name: string, labels: Record<string, string> = {}): V1Pod {
  return {
    metadata: { name, labels },
    spec: {
      containers: [
        { name: 'c', image: 'quay.io/kcr/counter:1' },
        { name: 'side', image: 'busybox:1' },
      ],
    },
  };
}

beforeAll(async () => {
  cluster = await startSimulatedCluster({ kubelet: { tickMs: 20 } });
  core = cluster.kubeConfig.makeApiClient(CoreV1Api);
  apps = cluster.kubeConfig.makeApiClient(AppsV1Api);
  custom = cluster.kubeConfig.makeApiClient(CustomObjectsApi);
  await core.createNamespace({ body: { metadata: { name: 'api' } } });
});

afterAll(async () => {
  await cluster?.stop();
});

describe('CRUD and list', () => {
  it('creates with defaults, gets, lists with label and field selectors, deletes', async () => {
    const created = await core.createNamespacedPod({ namespace: 'api', body: pod('a', { app: 'x', tier: 'web' }) });
    expect(created.metadata?.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.metadata?.creationTimestamp).toBeInstanceOf(Date);
    expect(created.spec?.restartPolicy).toBe('Always');
    expect(created.status?.phase).toBe('Pending');
    await core.createNamespacedPod({ namespace: 'api', body: pod('b', { app: 'y' }) });
    await core.createNamespacedPod({ namespace: 'api', body: pod('c') });
    const gen = await core.createNamespacedPod({ namespace: 'api', body: { metadata: { generateName: 'gen-' }, spec: pod('x').spec } });
    expect(gen.metadata?.name).toMatch(/^gen-[a-z0-9]{5}$/);

    const names = async (labelSelector?: string, fieldSelector?: string): Promise<string[]> =>
      (await core.listNamespacedPod({ namespace: 'api', labelSelector, fieldSelector })).items.map((p) => p.metadata!.name!).sort();
    expect(await names('app=x')).toEqual(['a']);
    expect(await names('app==x')).toEqual(['a']);
    expect(await names('app!=x')).toEqual(['b', 'c', gen.metadata!.name!].sort());
    expect(await names('app in (x,y)')).toEqual(['a', 'b']);
    expect(await names('app notin (x)')).toEqual(['b', 'c', gen.metadata!.name!].sort());
    expect(await names('app')).toEqual(['a', 'b']);
    expect(await names('!app')).toEqual(['c', gen.metadata!.name!].sort());
    expect(await names('app=x,tier=web')).toEqual(['a']);
    expect(await names(undefined, 'metadata.name=b')).toEqual(['b']);
    expect(await names(undefined, 'metadata.namespace=api,metadata.name!=b')).toEqual(['a', 'c', gen.metadata!.name!].sort());

    // Scheduling happens in the background: wait for spec.nodeName, then select on it.
    await cluster.waitFor(async () => (await core.readNamespacedPod({ namespace: 'api', name: 'a' })).spec?.nodeName, { description: 'pod a scheduled' });
    const a = await core.readNamespacedPod({ namespace: 'api', name: 'a' });
    expect(await names(undefined, `spec.nodeName=${a.spec!.nodeName}`)).toContain('a');
    await cluster.waitFor(async () => (await core.readNamespacedPod({ namespace: 'api', name: 'a' })).status?.phase === 'Running');
    expect(await names('app=x', 'status.phase=Running')).toEqual(['a']);

    const all = await core.listPodForAllNamespaces({ labelSelector: 'app=y' });
    expect(all.items.map((p) => p.metadata?.name)).toEqual(['b']);

    const page1 = await core.listNamespacedPod({ namespace: 'api', limit: 2 });
    expect(page1.items).toHaveLength(2);
    expect(page1.metadata?._continue).toBeTruthy();
    const page2 = await core.listNamespacedPod({ namespace: 'api', limit: 2, _continue: page1.metadata!._continue });
    expect(page2.items.map((p) => p.metadata?.name)).not.toContain(page1.items[0]!.metadata!.name);

    const deleted = await core.deleteNamespacedPod({ namespace: 'api', name: 'c', gracePeriodSeconds: 0 });
    expect(deleted.metadata?.name).toBe('c');
    const nf = await apiError(() => core.readNamespacedPod({ namespace: 'api', name: 'c' }));
    expect(nf.code).toBe(404);
    expect(nf.body).toMatchObject({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404, message: 'pods "c" not found' });
  });

  it('rejects duplicates, invalid names, namespace mismatches and missing namespaces with real Status bodies', async () => {
    await core.createNamespacedConfigMap({ namespace: 'api', body: { metadata: { name: 'cm' }, data: { k: 'v' } } });
    const dup = await apiError(() => core.createNamespacedConfigMap({ namespace: 'api', body: { metadata: { name: 'cm' } } }));
    expect(dup.code).toBe(409);
    expect(dup.body).toMatchObject({ reason: 'AlreadyExists', message: 'configmaps "cm" already exists' });

    const bad = await apiError(() => core.createNamespacedPod({ namespace: 'api', body: pod('Bad_Name') }));
    expect(bad.code).toBe(422);
    expect(bad.body.reason).toBe('Invalid');
    expect(bad.body.message).toMatch(/^Pod "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain/);

    const noName = await apiError(() => core.createNamespacedPod({ namespace: 'api', body: { metadata: {}, spec: pod('x').spec } }));
    expect(noName.code).toBe(422);
    expect(noName.body.message).toContain('name or generateName is required');

    const noContainers = await apiError(() => core.createNamespacedPod({ namespace: 'api', body: { metadata: { name: 'empty' }, spec: { containers: [] } } }));
    expect(noContainers.code).toBe(422);
    expect(noContainers.body.message).toContain('spec.containers: Required value');

    // The real server answers a namespace mismatch with 400 BadRequest.
    const mismatch = await apiError(() => core.createNamespacedPod({ namespace: 'api', body: { ...pod('m'), metadata: { name: 'm', namespace: 'default' } } }));
    expect(mismatch.code).toBe(400);
    expect(mismatch.body).toMatchObject({ reason: 'BadRequest', message: 'the namespace of the provided object does not match the namespace sent on the request' });

    const noNs = await apiError(() => core.createNamespacedPod({ namespace: 'nope', body: pod('p') }));
    expect(noNs.code).toBe(404);
    expect(noNs.body.message).toBe('namespaces "nope" not found');

    const selector = await apiError(() =>
      apps.createNamespacedDeployment({
        namespace: 'api',
        body: { metadata: { name: 'd' }, spec: { selector: { matchLabels: { app: 'a' } }, template: { metadata: { labels: { app: 'b' } }, spec: pod('x').spec! } } },
      }),
    );
    expect(selector.code).toBe(422);
    expect(selector.body.message).toContain('`selector` does not match template `labels`');
  });

  it('answers a stale update with 409 Conflict and keeps a global resourceVersion', async () => {
    const cm = await core.createNamespacedConfigMap({ namespace: 'api', body: { metadata: { name: 'conf' }, data: { v: '1' } } });
    const rv1 = Number(cm.metadata!.resourceVersion);
    const updated = await core.replaceNamespacedConfigMap({ namespace: 'api', name: 'conf', body: { ...cm, data: { v: '2' } } });
    expect(Number(updated.metadata!.resourceVersion)).toBeGreaterThan(rv1);
    const stale = await apiError(() => core.replaceNamespacedConfigMap({ namespace: 'api', name: 'conf', body: { ...cm, data: { v: '3' } } }));
    expect(stale.code).toBe(409);
    expect(stale.body).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'Operation cannot be fulfilled on configmaps "conf": the object has been modified; please apply your changes to the latest version and try again',
      reason: 'Conflict',
      details: { name: 'conf', kind: 'configmaps' },
      code: 409,
    });
    // A patch carrying a stale resourceVersion is a precondition failure too.
    const stalePatch = await apiError(() =>
      core.patchNamespacedConfigMap(
        { namespace: 'api', name: 'conf', body: { metadata: { resourceVersion: String(rv1) }, data: { v: '4' } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      ),
    );
    expect(stalePatch.code).toBe(409);
    // Deployment: generation follows spec changes only.
    const d = await apps.createNamespacedDeployment({
      namespace: 'api',
      body: {
        metadata: { name: 'gen' },
        spec: { replicas: 0, selector: { matchLabels: { app: 'gen' } }, template: { metadata: { labels: { app: 'gen' } }, spec: { containers: [{ name: 'c', image: 'i:1' }] } } },
      },
    });
    expect(d.metadata?.generation).toBe(1);
    const d2 = await apps.patchNamespacedDeployment({ namespace: 'api', name: 'gen', body: { metadata: { labels: { x: 'y' } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    expect(d2.metadata?.generation).toBe(1);
    const d3 = await apps.patchNamespacedDeployment({ namespace: 'api', name: 'gen', body: { spec: { replicas: 0, minReadySeconds: 1 } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    expect(d3.metadata?.generation).toBe(2);
  });
});

describe('patch strategies', () => {
  it('merge patch replaces lists and deletes keys with null', async () => {
    await core.createNamespacedPod({ namespace: 'api', body: pod('mp', { a: '1', b: '2' }) });
    const p = await core.patchNamespacedPod({ namespace: 'api', name: 'mp', body: { metadata: { labels: { a: null, c: '3' } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    expect(p.metadata?.labels).toEqual({ b: '2', c: '3' });
  });

  it('strategic merge patch merges containers by name and honours $patch: delete', async () => {
    const p = await core.patchNamespacedPod(
      { namespace: 'api', name: 'mp', body: { spec: { containers: [{ name: 'c', image: 'quay.io/kcr/counter:2' }] } } },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
    );
    expect(p.spec?.containers.map((c) => [c.name, c.image])).toEqual([
      ['c', 'quay.io/kcr/counter:2'],
      ['side', 'busybox:1'],
    ]);
    // Same patch as a JSON merge patch would replace the list (and be rejected: pod spec is immutable).
    const merge = await apiError(() =>
      core.patchNamespacedPod({ namespace: 'api', name: 'mp', body: { spec: { containers: [{ name: 'c', image: 'x:1' }] } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch)),
    );
    expect(merge.code).toBe(422);
    expect(merge.body.message).toContain('pod updates may not change fields other than');

    const d = await apps.createNamespacedDeployment({
      namespace: 'api',
      body: {
        metadata: { name: 'smp' },
        spec: {
          replicas: 0,
          selector: { matchLabels: { app: 'smp' } },
          template: {
            metadata: { labels: { app: 'smp' } },
            spec: {
              containers: [
                { name: 'a', image: 'a:1', env: [{ name: 'X', value: '1' }] },
                { name: 'b', image: 'b:1' },
              ],
            },
          },
        },
      },
    });
    expect(d.spec?.template.spec?.containers).toHaveLength(2);
    const patched = await apps.patchNamespacedDeployment(
      {
        namespace: 'api',
        name: 'smp',
        body: {
          spec: {
            template: {
              spec: {
                containers: [
                  { name: 'b', $patch: 'delete' },
                  { name: 'a', env: [{ name: 'Y', value: '2' }] },
                  { name: 'c', image: 'c:1' },
                ],
              },
            },
          },
        },
      },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
    );
    const cs = patched.spec!.template.spec!.containers;
    expect(cs.map((c) => c.name)).toEqual(['a', 'c']);
    expect(cs[0]!.env).toEqual([
      { name: 'X', value: '1' },
      { name: 'Y', value: '2' },
    ]);
    expect(cs[0]!.image).toBe('a:1');
  });

  it('JSON patch applies RFC 6902 operations, and a failed test aborts the patch', async () => {
    const p = await core.patchNamespacedPod(
      {
        namespace: 'api',
        name: 'mp',
        body: [
          { op: 'test', path: '/spec/containers/0/name', value: 'c' },
          { op: 'replace', path: '/spec/containers/0/image', value: 'quay.io/kcr/counter:3' },
          { op: 'add', path: '/metadata/annotations', value: { 'kcr.io/x': 'y' } },
          { op: 'remove', path: '/metadata/labels/b' },
        ],
      },
      setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
    );
    expect(p.spec?.containers[0]?.image).toBe('quay.io/kcr/counter:3');
    expect(p.metadata?.annotations).toEqual({ 'kcr.io/x': 'y' });
    expect(p.metadata?.labels).toEqual({ c: '3' });
    const failed = await apiError(() =>
      core.patchNamespacedPod(
        {
          namespace: 'api',
          name: 'mp',
          body: [
            { op: 'test', path: '/spec/containers/0/image', value: 'something-else' },
            { op: 'replace', path: '/spec/containers/0/image', value: 'evil:1' },
          ],
        },
        setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
      ),
    );
    expect(failed.code).toBe(422);
    const after = await core.readNamespacedPod({ namespace: 'api', name: 'mp' });
    expect(after.spec?.containers[0]?.image).toBe('quay.io/kcr/counter:3');
  });

  it('custom resources take merge and JSON patch but not strategic merge patch (415)', async () => {
    await custom.createNamespacedCustomObject({
      group: 'sources.knative.dev',
      version: 'v1',
      namespace: 'api',
      plural: 'pingsources',
      body: { apiVersion: 'sources.knative.dev/v1', kind: 'PingSource', metadata: { name: 'ps' }, spec: { schedule: '*/5 * * * *', data: '{}' } },
    });
    const merged = (await custom.patchNamespacedCustomObject(
      { group: 'sources.knative.dev', version: 'v1', namespace: 'api', plural: 'pingsources', name: 'ps', body: { spec: { schedule: '*/10 * * * *' } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    )) as { spec: { schedule: string; data: string }; metadata: { generation: number } };
    expect(merged.spec).toEqual({ schedule: '*/10 * * * *', data: '{}' });
    expect(merged.metadata.generation).toBe(2);
    const smp = await apiError(() =>
      custom.patchNamespacedCustomObject(
        { group: 'sources.knative.dev', version: 'v1', namespace: 'api', plural: 'pingsources', name: 'ps', body: { spec: { schedule: 'x' } } },
        setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
      ),
    );
    expect(smp.code).toBe(415);
    expect(smp.body.reason).toBe('UnsupportedMediaType');
  });
});

describe('watch', () => {
  it('streams ADDED/MODIFIED/DELETED in order and resumes from a resourceVersion', async () => {
    const watch = new Watch(cluster.kubeConfig);
    const seen: string[] = [];
    let lastRv = '';
    const req = await watch.watch(
      '/api/v1/namespaces/api/configmaps',
      { labelSelector: 'w=1' },
      (type, obj: { metadata: { name: string; resourceVersion: string } }) => {
        seen.push(`${type} ${obj.metadata.name}`);
        lastRv = obj.metadata.resourceVersion;
      },
      () => undefined,
    );
    const list = await core.listNamespacedConfigMap({ namespace: 'api' });
    await core.createNamespacedConfigMap({ namespace: 'api', body: { metadata: { name: 'w1', labels: { w: '1' } } } });
    await core.createNamespacedConfigMap({ namespace: 'api', body: { metadata: { name: 'other' } } });
    await core.patchNamespacedConfigMap({ namespace: 'api', name: 'w1', body: { data: { a: 'b' } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    // Label no longer matches: the watcher sees it leave as DELETED.
    await core.patchNamespacedConfigMap({ namespace: 'api', name: 'w1', body: { metadata: { labels: { w: '2' } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    await core.patchNamespacedConfigMap({ namespace: 'api', name: 'w1', body: { metadata: { labels: { w: '1' } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    await core.deleteNamespacedConfigMap({ namespace: 'api', name: 'w1' });
    await cluster.waitFor(() => seen.length >= 5, { description: 'watch events' });
    req.abort();
    expect(seen).toEqual(['ADDED w1', 'MODIFIED w1', 'DELETED w1', 'ADDED w1', 'DELETED w1']);
    expect(Number(lastRv)).toBeGreaterThan(Number(list.metadata!.resourceVersion));

    // Resume from the list's resourceVersion: the same history is replayed.
    const replay: string[] = [];
    const req2 = await watch.watch(
      '/api/v1/namespaces/api/configmaps',
      { labelSelector: 'w=1', resourceVersion: list.metadata!.resourceVersion },
      (type, obj: { metadata: { name: string } }) => replay.push(`${type} ${obj.metadata.name}`),
      () => undefined,
    );
    await cluster.waitFor(() => replay.length >= 5, { description: 'replayed events' });
    req2.abort();
    expect(replay).toEqual(seen);
  });

  it('reports 410 Expired as an ERROR event when the resourceVersion is compacted away', async () => {
    const list = await core.listNamespacedConfigMap({ namespace: 'api' });
    await core.createNamespacedConfigMap({ namespace: 'api', body: { metadata: { name: 'late' } } });
    cluster.compactWatchHistory();
    const watch = new Watch(cluster.kubeConfig);
    const events: { type: string; obj: { code?: number; reason?: string } }[] = [];
    let done: unknown = 'pending';
    await watch.watch(
      '/api/v1/namespaces/api/configmaps',
      { resourceVersion: list.metadata!.resourceVersion },
      (type, obj: { code?: number; reason?: string }) => events.push({ type, obj }),
      (err) => {
        done = err ?? null;
      },
    );
    await cluster.waitFor(() => done !== 'pending', { description: 'watch to end' });
    expect(events).toHaveLength(1);
    expect(events[0]!.type).toBe('ERROR');
    expect(events[0]!.obj).toMatchObject({ kind: 'Status', code: 410, reason: 'Expired' });
  });
});

describe('authentication, authorization, failure injection and call counting', () => {
  it('answers 401 without a token and 403 with the real message for a denied permission', async () => {
    const res = await fetch(`${cluster.url}/api/v1/namespaces`);
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401 });

    const bad = new KubeConfig();
    bad.loadFromFile(cluster.kubeconfigPath);
    bad.users[0] = { ...bad.users[0]!, token: 'wrong' };
    const unauth = await apiError(() => bad.makeApiClient(CoreV1Api).listNamespace());
    expect(unauth.code).toBe(401);

    const undo = cluster.denyPermission({ verb: 'list', resource: 'pods' });
    const forbidden = await apiError(() => core.listNamespacedPod({ namespace: 'api' }));
    expect(forbidden.code).toBe(403);
    expect(forbidden.body.message).toBe('pods is forbidden: User "kcr" cannot list resource "pods" in API group "" in the namespace "api"');
    undo();
    await core.listNamespacedPod({ namespace: 'api' });
  });

  it('fails the next N matching calls with the given status and counts calls', async () => {
    cluster.resetApiCalls();
    cluster.failNext({ verb: 'get', resource: 'deployments', count: 2, code: 503 });
    cluster.failNext({ verb: 'list', resource: 'pods', count: 1, code: 429, retryAfterSeconds: 1 });
    const e1 = await apiError(() => apps.readNamespacedDeployment({ namespace: 'api', name: 'gen' }));
    const e2 = await apiError(() => apps.readNamespacedDeployment({ namespace: 'api', name: 'gen' }));
    expect([e1.code, e2.code]).toEqual([503, 503]);
    expect(e1.body).toMatchObject({ kind: 'Status', reason: 'ServiceUnavailable', code: 503 });
    const ok = await apps.readNamespacedDeployment({ namespace: 'api', name: 'gen' });
    expect(ok.metadata?.name).toBe('gen');
    const throttled = await apiError(() => core.listNamespacedPod({ namespace: 'api' }));
    expect(throttled.code).toBe(429);
    expect(throttled.body).toMatchObject({ reason: 'TooManyRequests', details: { retryAfterSeconds: 1 } });

    cluster.failNext({ path: /\/configmaps\/conf$/, code: 500, message: 'etcd is sad' });
    const e500 = await apiError(() => core.readNamespacedConfigMap({ namespace: 'api', name: 'conf' }));
    expect(e500.body).toMatchObject({ code: 500, reason: 'InternalError', message: 'etcd is sad' });

    expect(cluster.callCount('get', 'deployments')).toBe(3);
    expect(cluster.callCount('get', 'deployments.apps')).toBe(3);
    expect(cluster.callCount('list', 'pods')).toBe(1);
    expect(cluster.apiCalls().byKey).toEqual({ 'get deployments.apps': 3, 'list pods': 1, 'get configmaps': 1 });
    expect(cluster.apiCalls().total).toBe(5);
    cluster.resetApiCalls();
    expect(cluster.apiCalls().total).toBe(0);
  });
});

describe('garbage collection', () => {
  it('deletes dependents whose owners are all gone (background), keeps them with Orphan', async () => {
    const owner = await core.createNamespacedConfigMap({ namespace: 'api', body: { metadata: { name: 'owner' } } });
    const ref = { apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: owner.metadata!.uid! };
    await custom.createNamespacedCustomObject({
      group: 'sources.knative.dev',
      version: 'v1',
      namespace: 'api',
      plural: 'pingsources',
      body: { apiVersion: 'sources.knative.dev/v1', kind: 'PingSource', metadata: { name: 'owned', ownerReferences: [ref] }, spec: { schedule: '* * * * *' } },
    });
    await core.createNamespacedConfigMap({ namespace: 'api', body: { metadata: { name: 'child', ownerReferences: [ref] } } });
    await core.deleteNamespacedConfigMap({ namespace: 'api', name: 'owner' });
    await cluster.waitFor(
      async () => {
        const cms = await core.listNamespacedConfigMap({ namespace: 'api', fieldSelector: 'metadata.name=child' });
        const ps = (await custom.listNamespacedCustomObject({ group: 'sources.knative.dev', version: 'v1', namespace: 'api', plural: 'pingsources', fieldSelector: 'metadata.name=owned' })) as {
          items: unknown[];
        };
        return cms.items.length === 0 && ps.items.length === 0;
      },
      { description: 'dependents collected' },
    );

    const owner2 = await core.createNamespacedConfigMap({ namespace: 'api', body: { metadata: { name: 'owner2' } } });
    await core.createNamespacedConfigMap({
      namespace: 'api',
      body: { metadata: { name: 'orphan', ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'owner2', uid: owner2.metadata!.uid! }] } },
    });
    await core.deleteNamespacedConfigMap({ namespace: 'api', name: 'owner2', propagationPolicy: 'Orphan' });
    // The collector runs after a deletion; one that collects a witness deleted later has passed over the orphan too.
    const owner3 = await core.createNamespacedConfigMap({ namespace: 'api', body: { metadata: { name: 'owner3' } } });
    await core.createNamespacedConfigMap({
      namespace: 'api',
      body: { metadata: { name: 'witness', ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'owner3', uid: owner3.metadata!.uid! }] } },
    });
    await core.deleteNamespacedConfigMap({ namespace: 'api', name: 'owner3' });
    await cluster.waitFor(async () => (await core.listNamespacedConfigMap({ namespace: 'api', fieldSelector: 'metadata.name=witness' })).items.length === 0, {
      description: 'the witness collected',
    });
    const orphan = await core.readNamespacedConfigMap({ namespace: 'api', name: 'orphan' });
    expect(orphan.metadata?.ownerReferences ?? []).toEqual([]);
  });
});
