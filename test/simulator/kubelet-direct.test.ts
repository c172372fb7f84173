// The simulated kubelet's own HTTPS port and the API server's authentication and
// authorization APIs it relies on. Checked against kubernetes:
// - pkg/kubelet/server/auth.go GetRequestAttributes: verb from the HTTP method,
//   resource nodes, subresource by path (/stats stats, /metrics metrics, /logs log,
//   /checkpoint checkpoint, else proxy; with KubeletFineGrainedAuthz /pods and
//   /runningpods pods, /healthz healthz, /configz configz, /statusz statusz first);
// - pkg/kubelet/server/server.go InstallAuthFilter: 401 "Unauthorized", 403
//   "Forbidden (user=…, verb=…, resource=nodes, subresource(s)=[…])";
// - authentication.k8s.io/v1 TokenReview, authorization.k8s.io/v1 SubjectAccessReview,
//   TokenRequest (serviceaccounts/token, expirationSeconds ≥ 600).
import https from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthenticationV1Api, AuthorizationV1Api, CoreV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { startSimulatedCluster, type SimulatedCluster } from '../../simulator/index.js';
import { kubeletRequestAttributes, KubeletAuthenticator, type KubeletAuthBackend } from '../../simulator/kubelet/auth.js';
import { apiError } from './helpers.js';

let cluster: SimulatedCluster;
let core: CoreV1Api;
let node: string;
const NS = 'kd';

beforeAll(async () => {
  cluster = await startSimulatedCluster({ kubelet: { tickMs: 20, dataSize: 4096 }, kubeletAuthCacheTtl: { authenticationMs: 0, authorizedMs: 0, unauthorizedMs: 0 } });
  core = cluster.kubeConfig.makeApiClient(CoreV1Api);
  const rbac = cluster.kubeConfig.makeApiClient(RbacAuthorizationV1Api);
  await core.createNamespace({ body: { metadata: { name: NS } } });
  for (const name of ['checkpointer', 'nobody']) await core.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name } } });
  await rbac.createClusterRole({ body: { metadata: { name: 'checkpoint-only' }, rules: [{ apiGroups: [''], resources: ['nodes/checkpoint'], verbs: ['create'] }] } });
  await rbac.createClusterRoleBinding({
    body: {
      metadata: { name: 'checkpoint-only' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'checkpoint-only' },
      subjects: [{ kind: 'ServiceAccount', name: 'checkpointer', namespace: NS }],
    },
  });
  await core.createNamespacedPod({ namespace: NS, body: { metadata: { name: 'app' }, spec: { containers: [{ name: 'app', image: 'quay.io/kcr/counter:1' }] } } });
  const pod = await cluster.waitFor(async () => {
    const p = await core.readNamespacedPod({ namespace: NS, name: 'app' });
    return p.status?.phase === 'Running' ? p : undefined;
  });
  node = pod.spec!.nodeName!;
});

afterAll(async () => {
  await cluster?.stop();
});

async function tokenFor(sa: string): Promise<string> {
  const tr = await core.createNamespacedServiceAccountToken({ namespace: NS, name: sa, body: { spec: { expirationSeconds: 600, audiences: [] } } });
  return tr.status!.token;
}

/** A request to the node's kubelet port, verifying it with the kubelet CA only. */
function kubelet(method: string, path: string, token?: string, ca = cluster.kubeletCaPem): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(`${cluster.kubeletUrl(node)}${path}`, { method, ca, headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('kubelet request attributes (auth.go)', () => {
  it.each([
    ['POST', '/checkpoint/ns/pod/c', 'create', ['checkpoint']],
    ['POST', '/checkpoint', 'create', ['checkpoint']],
    ['POST', '/checkpointx/ns', 'create', ['proxy']],
    ['POST', '/run/ns/pod/c', 'create', ['proxy']],
    ['POST', '/exec/ns/pod/c', 'create', ['proxy']],
    ['GET', '/exec/ns/pod/c', 'get', ['proxy']],
    ['GET', '/stats/summary', 'get', ['stats']],
    ['GET', '/metrics/cadvisor', 'get', ['metrics']],
    ['GET', '/logs/syslog', 'get', ['log']],
    ['GET', '/pods', 'get', ['pods', 'proxy']],
    ['GET', '/runningpods/', 'get', ['pods', 'proxy']],
    ['GET', '/healthz', 'get', ['healthz', 'proxy']],
    ['GET', '/configz', 'get', ['configz', 'proxy']],
    ['DELETE', '/spec', 'delete', ['proxy']],
    ['OPTIONS', '/checkpoint/a/b/c', '', ['checkpoint']],
  ])('%s %s → verb %s, nodes/%s', (method, path, verb, subresources) => {
    expect(kubeletRequestAttributes(method, path)).toEqual({ verb, subresources });
  });
});

describe('kubelet auth caching', () => {
  it('asks the webhook once per token and decision within the TTLs, again after them', async () => {
    let now = 0;
    const calls = { review: 0, allowed: 0 };
    const backend: KubeletAuthBackend = {
      review: async (t) => (calls.review++, t === 'good' ? { username: 'u', groups: [] } : undefined),
      allowed: async (_u, _v, _n, sub) => (calls.allowed++, sub === 'checkpoint'),
    };
    const auth = new KubeletAuthenticator('n', backend, { authenticationMs: 100, authorizedMs: 300, unauthorizedMs: 30 }, () => now);
    expect(await auth.check('Bearer good', 'POST', '/checkpoint/a/b/c')).toMatchObject({ ok: true });
    expect(await auth.check('Bearer good', 'POST', '/checkpoint/a/b/c')).toMatchObject({ ok: true });
    expect(calls).toEqual({ review: 1, allowed: 1 });
    expect(await auth.check('Bearer good', 'POST', '/run/a/b/c')).toEqual({ ok: false, status: 403, message: 'Forbidden (user=u, verb=create, resource=nodes, subresource(s)=[proxy])' });
    now = 50; // denial cached 30: asked again; token cached 100: not
    await auth.check('Bearer good', 'POST', '/run/a/b/c');
    expect(calls).toEqual({ review: 1, allowed: 3 });
    now = 150;
    await auth.check('Bearer good', 'POST', '/checkpoint/a/b/c');
    expect(calls).toEqual({ review: 2, allowed: 3 });
    expect(await auth.check(undefined, 'POST', '/checkpoint/a/b/c')).toEqual({ ok: false, status: 401, message: 'Unauthorized' });
    expect(await auth.check('Bearer bad', 'POST', '/checkpoint/a/b/c')).toEqual({ ok: false, status: 401, message: 'Unauthorized' });
  });
});

describe('the kubelet HTTPS port', () => {
  it('a nodes/checkpoint-only ServiceAccount checkpoints directly; /run and /exec are 403', async () => {
    const token = await tokenFor('checkpointer');
    const ok = await kubelet('POST', `/checkpoint/${NS}/app/app?timeout=30`, token);
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.text)).toEqual({ items: [expect.stringMatching(new RegExp(`^/var/lib/kubelet/checkpoints/checkpoint-app_${NS}-app-.+\\.tar$`))] });
    const run = await kubelet('POST', `/run/${NS}/app/app?cmd=id`, token);
    expect(run).toEqual({ status: 403, text: `Forbidden (user=system:serviceaccount:${NS}:checkpointer, verb=create, resource=nodes, subresource(s)=[proxy])\n` });
    const exec = await kubelet('GET', `/exec/${NS}/app/app?command=id`, token);
    expect(exec.status).toBe(403);
    expect(exec.text).toContain('verb=get, resource=nodes, subresource(s)=[proxy]');
    const pods = await kubelet('GET', '/pods', token);
    expect(pods.text).toContain('subresource(s)=[pods proxy]');
  });

  it('a ServiceAccount without permissions gets 403 on /checkpoint; no token or a bad one 401', async () => {
    const token = await tokenFor('nobody');
    expect(await kubelet('POST', `/checkpoint/${NS}/app/app`, token)).toEqual({
      status: 403,
      text: `Forbidden (user=system:serviceaccount:${NS}:nobody, verb=create, resource=nodes, subresource(s)=[checkpoint])\n`,
    });
    expect(await kubelet('POST', `/checkpoint/${NS}/app/app`)).toEqual({ status: 401, text: 'Unauthorized\n' });
    expect((await kubelet('POST', `/checkpoint/${NS}/app/app`, 'not-a-token')).status).toBe(401);
  });

  it('the cluster admin (system:masters) may do anything; the kubelet errors pass through after auth', async () => {
    expect((await kubelet('POST', `/checkpoint/${NS}/missing/app`, cluster.token)).status).toBe(404);
    expect((await kubelet('GET', '/healthz', cluster.token)).text).toBe('ok');
  });

  it('is verified only with the kubelet CA', async () => {
    await expect(kubelet('GET', '/healthz', cluster.token, '')).rejects.toThrow(/certificate/);
  });

  it('each check is a TokenReview and a SubjectAccessReview on the API server', async () => {
    const token = await tokenFor('checkpointer');
    cluster.resetApiCalls();
    await kubelet('POST', `/checkpoint/${NS}/app/app`, token);
    expect(cluster.callCount('create', 'tokenreviews')).toBe(1);
    expect(cluster.callCount('create', 'subjectaccessreviews')).toBe(1);
  });
});

describe("the API server's node proxy", () => {
  it('calls the kubelet port as kube-apiserver-kubelet-client, which the kubelet reviews like any caller', async () => {
    cluster.resetApiCalls();
    const res = await fetch(`${cluster.url}/api/v1/nodes/${node}/proxy/checkpoint/${NS}/app/app?timeout=30`, { method: 'POST', headers: { authorization: `Bearer ${cluster.token}` } });
    expect(res.status).toBe(200);
    expect(cluster.callCount('create', 'nodes/proxy')).toBe(1);
    // This cluster's kubelets cache nothing: one review of the API server's own token per proxied call.
    expect(cluster.callCount('create', 'tokenreviews')).toBe(1);
    expect(cluster.callCount('create', 'subjectaccessreviews')).toBe(1);
  });
});

describe('TokenRequest, TokenReview and SubjectAccessReview', () => {
  it('issues tokens that review as the ServiceAccount and authorize by RBAC', async () => {
    const token = await tokenFor('checkpointer');
    const review = await cluster.kubeConfig.makeApiClient(AuthenticationV1Api).createTokenReview({ body: { spec: { token } } });
    expect(review.status).toMatchObject({
      authenticated: true,
      user: { username: `system:serviceaccount:${NS}:checkpointer`, groups: ['system:serviceaccounts', `system:serviceaccounts:${NS}`, 'system:authenticated'] },
    });
    const bad = await cluster.kubeConfig.makeApiClient(AuthenticationV1Api).createTokenReview({ body: { spec: { token: 'nope' } } });
    expect(bad.status).toMatchObject({ authenticated: false, error: 'invalid bearer token' });

    const authz = cluster.kubeConfig.makeApiClient(AuthorizationV1Api);
    const sar = (subresource: string) =>
      authz.createSubjectAccessReview({
        body: { spec: { user: `system:serviceaccount:${NS}:checkpointer`, groups: ['system:serviceaccounts'], resourceAttributes: { verb: 'create', resource: 'nodes', subresource, name: node } } },
      });
    expect((await sar('checkpoint')).status).toMatchObject({ allowed: true, reason: expect.stringContaining('ClusterRoleBinding "checkpoint-only"') });
    expect((await sar('proxy')).status?.allowed).toBe(false);
  });

  it('refuses expirationSeconds under 10 minutes and unknown ServiceAccounts', async () => {
    const short = await apiError(() => core.createNamespacedServiceAccountToken({ namespace: NS, name: 'checkpointer', body: { spec: { expirationSeconds: 60, audiences: [] } } }));
    expect(short.code).toBe(422);
    const unknown = await apiError(() => core.createNamespacedServiceAccountToken({ namespace: NS, name: 'ghost', body: { spec: { audiences: [] } } }));
    expect(unknown.code).toBe(404);
  });

  it('a ServiceAccount token on the API server is held to RBAC', async () => {
    const token = await tokenFor('checkpointer');
    const res = await fetch(`${cluster.url}/api/v1/namespaces/${NS}/pods`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { message: string }).message).toBe(
      `pods is forbidden: User "system:serviceaccount:${NS}:checkpointer" cannot list resource "pods" in API group "" in the namespace "${NS}"`,
    );
  });
});
