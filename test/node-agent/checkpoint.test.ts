// node-agent's POST /checkpoint/{ns}/{pod}/{container}: it calls its node's kubelet
// directly (the simulated kubelet's HTTPS port, which authenticates with TokenReview and
// authorizes nodes/checkpoint with SubjectAccessReview, as kubernetes
// pkg/kubelet/server/auth.go maps /checkpoint) with the node-agent's ServiceAccount token,
// read from its file on every call, and answers with what the kubelet said.
import { mkdtempSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CoreV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { kubeletCheckpointer } from '../../node-agent/kubelet-client.js';
import { resolveCheckpointRoute, startNodeAgent, type NodeAgent } from '../../node-agent/server.js';
import { startSimulatedCluster, type SimulatedCluster } from '../../simulator/index.js';
import { kubeletTls } from '../../simulator/cluster/kubelet-tls.js';
import { rawRequest } from '../support/http.js';
import { capturingLogger } from '../support/logs.js';

const TOKEN = 'agent-token';
const REPO = fileURLToPath(new URL('../..', import.meta.url));
const NS = 'shop';

describe('resolveCheckpointRoute', () => {
  it('takes namespace, pod, container and ?timeout=', () => {
    expect(resolveCheckpointRoute('/checkpoint/shop/redis-0/redis', new URLSearchParams('timeout=30'))).toEqual({
      ok: true,
      namespace: 'shop',
      pod: 'redis-0',
      container: 'redis',
      timeoutSeconds: 30,
    });
    expect(resolveCheckpointRoute('/checkpoint/shop/a.b/c', new URLSearchParams(''), 60)).toMatchObject({ ok: true, timeoutSeconds: 60 });
  });
  it.each([
    ['/checkpoint/shop/redis-0', '', 400],
    ['/checkpoint/shop/redis-0/redis/extra', '', 400],
    ['/checkpoint/Shop/redis-0/redis', '', 400],
    ['/checkpoint/shop/..%2f..%2frun/redis', '', 400],
    ['/checkpoint/shop/redis-0/a.b', '', 400],
    ['/checkpoint/shop/redis-0/redis', 'timeout=abc', 400],
    ['/checkpoint/shop/redis-0/redis', 'timeout=0', 400],
    ['/checkpoint/shop/redis-0/redis', 'timeout=-1', 400],
    ['/checkpointx/shop/redis-0/redis', '', 404],
  ])('refuses %s?%s with %i', (path, query, status) => {
    expect(resolveCheckpointRoute(path, new URLSearchParams(query))).toMatchObject({ ok: false, status });
  });
});

describe('node-agent → its kubelet', () => {
  let cluster: SimulatedCluster;
  let node: string;
  let root: string;
  let tokenFile: string;
  let agent: NodeAgent;
  let unconfigured: NodeAgent;
  let core: CoreV1Api;
  const log = capturingLogger();

  const saToken = async (name: string) => (await core.createNamespacedServiceAccountToken({ namespace: 'kcr-system', name, body: { spec: { expirationSeconds: 600, audiences: [] } } })).status!.token;
  const post = (path: string, token = TOKEN, a: NodeAgent = agent) => rawRequest(a.url, 'POST', path, { authorization: `Bearer ${token}` });

  beforeAll(async () => {
    cluster = await startSimulatedCluster({ kubelet: { tickMs: 20, dataSize: 4096 }, kubeletAuthCacheTtl: { authenticationMs: 0, authorizedMs: 0, unauthorizedMs: 0 } });
    core = cluster.kubeConfig.makeApiClient(CoreV1Api);
    const rbac = cluster.kubeConfig.makeApiClient(RbacAuthorizationV1Api);
    for (const ns of [NS, 'kcr-system']) await core.createNamespace({ body: { metadata: { name: ns } } });
    for (const name of ['node-agent', 'other']) await core.createNamespacedServiceAccount({ namespace: 'kcr-system', body: { metadata: { name } } });
    await rbac.createClusterRole({ body: { metadata: { name: 'kcr-node-agent' }, rules: [{ apiGroups: [''], resources: ['nodes/checkpoint'], verbs: ['create'] }] } });
    await rbac.createClusterRoleBinding({
      body: {
        metadata: { name: 'kcr-node-agent' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'kcr-node-agent' },
        subjects: [{ kind: 'ServiceAccount', name: 'node-agent', namespace: 'kcr-system' }],
      },
    });
    await core.createNamespacedPod({ namespace: NS, body: { metadata: { name: 'redis-0' }, spec: { containers: [{ name: 'redis', image: 'quay.io/kcr/counter:1' }] } } });
    const pod = await cluster.waitFor(async () => {
      const p = await core.readNamespacedPod({ namespace: NS, name: 'redis-0' });
      return p.status?.phase === 'Running' ? p : undefined;
    });
    node = pod.spec!.nodeName!;
    root = mkdtempSync(join(tmpdir(), 'kcr-agent-ckpt-'));
    tokenFile = join(root, 'token');
    writeFileSync(tokenFile, await saToken('node-agent'));
    agent = await startNodeAgent({
      dir: cluster.checkpointDir(node),
      token: TOKEN,
      allowDelete: false,
      kubelet: kubeletCheckpointer({ url: cluster.kubeletUrl(node), caFile: cluster.kubeletCaFile, tokenFile }),
      logger: log.logger,
    });
    unconfigured = await startNodeAgent({ dir: cluster.checkpointDir(node), token: TOKEN, allowDelete: false, logger: log.logger });
  });

  afterAll(async () => {
    await agent?.close();
    await unconfigured?.close();
    await cluster?.stop();
  });

  it('200 with the kubelet answer, the archive written on the node, nothing through the API server proxy', async () => {
    cluster.resetApiCalls();
    const res = await post(`/checkpoint/${NS}/redis-0/redis?timeout=30`);
    expect(res.status).toBe(200);
    const body = JSON.parse(res.body.toString()) as { items: string[] };
    expect(body.items).toEqual([expect.stringMatching(new RegExp(`^/var/lib/kubelet/checkpoints/checkpoint-redis-0_${NS}-redis-.+\\.tar$`))]);
    expect(cluster.callCount('create', 'nodes/proxy')).toBe(0);
    expect(cluster.callCount('create', 'tokenreviews')).toBe(1);
  });

  it("passes the kubelet's refusal on: 403 for an identity without nodes/checkpoint, 404 for an unknown pod", async () => {
    writeFileSync(tokenFile, await saToken('other')); // re-read on the next call: no restart
    const refused = await post(`/checkpoint/${NS}/redis-0/redis`);
    expect(refused.status).toBe(403);
    expect(JSON.parse(refused.body.toString())).toEqual({
      error: 'Forbidden (user=system:serviceaccount:kcr-system:other, verb=create, resource=nodes, subresource(s)=[checkpoint])',
      kubeletStatus: 403,
    });
    writeFileSync(tokenFile, await saToken('node-agent'));
    const missing = await post(`/checkpoint/${NS}/ghost/redis`);
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.body.toString())).toMatchObject({ kubeletStatus: 404 });
  });

  it('401 from the kubelet for an expired or unknown ServiceAccount token', async () => {
    writeFileSync(tokenFile, 'not-a-token');
    const res = await post(`/checkpoint/${NS}/redis-0/redis`);
    expect(res.status).toBe(401);
    expect(JSON.parse(res.body.toString())).toEqual({ error: 'Unauthorized', kubeletStatus: 401 });
    writeFileSync(tokenFile, await saToken('node-agent'));
  });

  it('refuses callers without the node-agent token, bad names and other methods before calling the kubelet', async () => {
    cluster.resetApiCalls();
    expect((await post(`/checkpoint/${NS}/redis-0/redis`, 'wrong')).status).toBe(401);
    expect((await rawRequest(agent.url, 'POST', `/checkpoint/${NS}/redis-0/redis`)).status).toBe(401);
    expect((await post(`/checkpoint/${NS}/..%2F..%2Frun/redis`)).status).toBe(400);
    expect((await rawRequest(agent.url, 'GET', `/checkpoint/${NS}/redis-0/redis`, { authorization: `Bearer ${TOKEN}` })).status).toBe(405);
    expect(cluster.apiCalls().total).toBe(0);
  });

  it('501 when no kubelet is configured', async () => {
    const res = await post(`/checkpoint/${NS}/redis-0/redis`, TOKEN, unconfigured);
    expect(res.status).toBe(501);
  });

  it('502 when the kubelet is unreachable, 504 when it does not answer in time', async () => {
    const down = await startNodeAgent({
      dir: cluster.checkpointDir(node),
      token: TOKEN,
      allowDelete: false,
      kubelet: kubeletCheckpointer({ url: 'https://127.0.0.1:1', caFile: cluster.kubeletCaFile, tokenFile }),
      logger: log.logger,
    });
    const tls = await kubeletTls(['slow']);
    const silent = https.createServer({ ...tls.serving.get('slow')!, ca: tls.caPem }, () => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const caFile = join(root, 'ca.crt');
    writeFileSync(caFile, tls.caPem);
    const slow = await startNodeAgent({
      dir: cluster.checkpointDir(node),
      token: TOKEN,
      allowDelete: false,
      kubelet: kubeletCheckpointer({ url: `https://127.0.0.1:${(silent.address() as AddressInfo).port}`, caFile, tokenFile, marginMs: 50 }),
      logger: log.logger,
    });
    try {
      expect((await post(`/checkpoint/${NS}/redis-0/redis`, TOKEN, down)).status).toBe(502);
      const timedOut = await post(`/checkpoint/${NS}/redis-0/redis?timeout=1`, TOKEN, slow);
      expect(timedOut.status).toBe(504);
      expect(JSON.parse(timedOut.body.toString()).error).toMatch(/did not answer within 1050 ms/);
    } finally {
      await down.close();
      await slow.close();
      silent.closeAllConnections();
      await new Promise<void>((r) => silent.close(() => r()));
    }
  });

  it('refuses a kubelet whose certificate the CA did not sign (502)', async () => {
    // The API server's serving certificate is a CA, but not the one that signed the kubelets'.
    const wrong = await startNodeAgent({
      dir: cluster.checkpointDir(node),
      token: TOKEN,
      allowDelete: false,
      kubelet: kubeletCheckpointer({ url: cluster.kubeletUrl(node), caFile: join(REPO, 'simulator', 'tls', 'loopback.crt'), tokenFile }),
      logger: log.logger,
    });
    try {
      const res = await post(`/checkpoint/${NS}/redis-0/redis`, TOKEN, wrong);
      expect(res.status).toBe(502);
      expect(JSON.parse(res.body.toString()).error).toMatch(/certificate/);
    } finally {
      await wrong.close();
    }
  });
});
