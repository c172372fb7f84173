// `kcr doctor`'s least-privilege lines against the simulated cluster: each node's
// node-agent asked (GET /kubelet-check) whether it reaches its kubelet's HTTPS port
// and may create nodes/checkpoint there, then made to fail once each way: the
// kubelet port down, the agent's token rejected (401), its RBAC removed (403); and
// the kcr ServiceAccounts that may use nodes/proxy, from SubjectAccessReviews.
// The agent's probe is POST /checkpoint/kcr-system/KCR-ACCESS-PROBE/probe: kubernetes
// pkg/kubelet/server/server.go authorizes in its auth filter (InstallAuthFilter,
// /checkpoint → nodes/checkpoint in auth.go) before its checkpoint handler answers
// 404 "pod does not exist" for a pod it cannot find (GetPodByName), so nothing is
// checkpointed and a 404 from the handler proves the authorization.
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, RbacAuthorizationV1Api, type V1ClusterRoleBinding } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentAnswerCheck, kubeletAccessCheck, nodesProxyCheck, parseKubeletCheck } from '../../cli/doctor-kubelet.js';
import type { CheckResult } from '../../cli/doctor.js';
import { runCli } from '../../cli/run.js';
import { applyNodeAgentIdentity } from '../../local/node-agent-identity.js';
import { kubeletCheck, type KubeletCheck } from '../../node-agent/kubelet-check.js';
import { kubeletCheckpointer } from '../../node-agent/kubelet-client.js';
import { startNodeAgent, type NodeAgent } from '../../node-agent/server.js';
import { startSimulatedCluster, type SimulatedCluster } from '../../simulator/index.js';
import { rawRequest } from '../support/http.js';
import { capturingLogger } from '../support/logs.js';

const KCR = 'kcr-system';
const NODES = ['node-a', 'node-b'];
const AGENT_TOKEN = 'doctor-test-agent-token';

describe('kcr doctor: node-agent → kubelet, and nodes/proxy', () => {
  let cluster: SimulatedCluster;
  let core: CoreV1Api;
  let rbac: RbacAuthorizationV1Api;
  const agents = new Map<string, NodeAgent>();
  const tokenFiles = new Map<string, string>();

  async function doctor(extraEnv: Record<string, string> = {}): Promise<CheckResult[]> {
    let out = '';
    const env = {
      KUBECONFIG: cluster.kubeconfigPath,
      KCR_NODE_AGENT_URLS: JSON.stringify(Object.fromEntries([...agents].map(([n, a]) => [n, a.url]))),
      KCR_NODE_AGENT_TOKEN: AGENT_TOKEN,
      ...extraEnv,
    };
    await runCli(['doctor', '-o', 'json'], { stdout: { write: (s: string) => (out += s) }, stderr: { write: () => undefined }, env });
    return (JSON.parse(out) as { checks: CheckResult[] }).checks;
  }
  const kubeletLines = async (env?: Record<string, string>) => (await doctor(env)).filter((c) => c.check === 'node-agent-kubelet');
  const proxyLines = async (env?: Record<string, string>) => (await doctor(env)).filter((c) => c.check === 'nodes-proxy');

  beforeAll(async () => {
    // No caching of the kubelet's webhook answers, so each change is seen by the next run (the real kubelet caches: auth.ts).
    cluster = await startSimulatedCluster({ nodes: NODES, kubelet: { tickMs: 20, dataSize: 4096 }, kubeletAuthCacheTtl: { authenticationMs: 0, authorizedMs: 0, unauthorizedMs: 0 } });
    core = cluster.kubeConfig.makeApiClient(CoreV1Api);
    rbac = cluster.kubeConfig.makeApiClient(RbacAuthorizationV1Api);
    await core.createNamespace({ body: { metadata: { name: KCR } } });
    // The ServiceAccount and ClusterRole of manifests/node-agent.yaml, as installed.
    await applyNodeAgentIdentity(cluster.kubeConfig);
    const root = mkdtempSync(join(tmpdir(), 'kcr-doctor-kubelet-'));
    for (const node of NODES) {
      const tokenFile = join(root, `${node}-token`);
      writeFileSync(tokenFile, cluster.serviceAccountToken(KCR, 'node-agent', 600));
      tokenFiles.set(node, tokenFile);
      agents.set(
        node,
        await startNodeAgent({
          dir: cluster.checkpointDir(node),
          token: AGENT_TOKEN,
          allowDelete: false,
          kubelet: kubeletCheckpointer({ url: cluster.kubeletUrl(node), caFile: cluster.kubeletCaFile, tokenFile }),
          logger: capturingLogger().logger,
        }),
      );
    }
  });
  afterAll(async () => {
    for (const a of agents.values()) await a.close();
    await cluster?.stop();
  });

  it('reachable and authorized on every node, without checkpointing anything', async () => {
    const lines = await kubeletLines();
    expect(lines).toEqual(NODES.map((node) => ({ check: 'node-agent-kubelet', target: node, result: 'pass', detail: `node-agent → kubelet on ${node}: reachable, authorized for nodes/checkpoint` })));
    for (const node of NODES) expect(readdirSync(cluster.checkpointDir(node))).toEqual([]);
    expect(await proxyLines()).toEqual([{ check: 'nodes-proxy', target: KCR, result: 'pass', detail: 'no kcr ServiceAccount may use nodes/proxy' }]);
  });

  it('the kubelet port down on one node: unreachable, with the network fix', async () => {
    cluster.nodeDown('node-b');
    try {
      const lines = await kubeletLines();
      expect(lines.find((l) => l.target === 'node-a')?.result).toBe('pass');
      const b = lines.find((l) => l.target === 'node-b');
      expect(b).toMatchObject({ result: 'fail', detail: expect.stringMatching(/^node-agent → kubelet on node-b: unreachable at https:\/\/127\.0\.0\.1:\d+/) });
      expect(b?.fix).toContain('10250');
    } finally {
      cluster.nodeUp('node-b');
    }
  });

  it("the agent's token rejected by the kubelet: 401, fix the projected token", async () => {
    const file = tokenFiles.get('node-a')!;
    const good = readFileSync(file, 'utf8');
    writeFileSync(file, 'not-a-service-account-token');
    try {
      const lines = await kubeletLines();
      const a = lines.find((l) => l.target === 'node-a');
      expect(a).toMatchObject({ result: 'fail', detail: expect.stringContaining("rejected the node-agent's ServiceAccount token (HTTP 401: Unauthorized)") });
      expect(a?.fix).toContain('projected token');
      expect(lines.find((l) => l.target === 'node-b')?.result).toBe('pass');
    } finally {
      writeFileSync(file, good);
    }
  });

  it("the agent's RBAC removed: 403 from the kubelet, fix names ClusterRole kcr-node-agent", async () => {
    const binding = await rbac.readClusterRoleBinding({ name: 'kcr-node-agent' });
    await rbac.deleteClusterRoleBinding({ name: 'kcr-node-agent' });
    try {
      const lines = await kubeletLines();
      expect(lines.map((l) => [l.target, l.result])).toEqual(NODES.map((n) => [n, 'fail']));
      expect(lines[0]?.detail).toContain('Forbidden (user=system:serviceaccount:kcr-system:node-agent, verb=create, resource=nodes, subresource(s)=[checkpoint])');
      expect(lines[0]?.fix).toContain('ClusterRole kcr-node-agent');
    } finally {
      const { metadata, roleRef, subjects } = binding;
      await rbac.createClusterRoleBinding({ body: { metadata: { name: metadata!.name!, labels: metadata?.labels ?? {} }, roleRef, subjects: subjects ?? [] } as V1ClusterRoleBinding });
    }
    expect((await kubeletLines()).every((l) => l.result === 'pass')).toBe(true);
  });

  it('warns of a kcr ServiceAccount that may use nodes/proxy, unless it is request-checkpoint with KCR_CHECKPOINT_VIA=apiserver-proxy', async () => {
    for (const name of ['request-checkpoint', 'store-artifact']) await core.createNamespacedServiceAccount({ namespace: KCR, body: { metadata: { name } } });
    await rbac.createClusterRole({ body: { metadata: { name: 'test-node-proxy' }, rules: [{ apiGroups: [''], resources: ['nodes/proxy'], verbs: ['create'] }] } });
    const bind = (sa: string) =>
      rbac.createClusterRoleBinding({
        body: {
          metadata: { name: `test-node-proxy-${sa}` },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'test-node-proxy' },
          subjects: [{ kind: 'ServiceAccount', name: sa, namespace: KCR }],
        },
      });
    await bind('request-checkpoint');
    let lines = await proxyLines();
    expect(lines).toEqual([expect.objectContaining({ target: `${KCR}/request-checkpoint`, result: 'warn', detail: expect.stringContaining('may create nodes/proxy') })]);
    expect(lines[0]?.fix).toContain('remove nodes/proxy');
    expect(await proxyLines({ KCR_CHECKPOINT_VIA: 'apiserver-proxy' })).toEqual([expect.objectContaining({ target: KCR, result: 'pass' })]);
    await bind('store-artifact');
    lines = await proxyLines({ KCR_CHECKPOINT_VIA: 'apiserver-proxy' });
    expect(lines.map((l) => [l.target, l.result])).toEqual([[`${KCR}/store-artifact`, 'warn']]);
    for (const sa of ['request-checkpoint', 'store-artifact']) await rbac.deleteClusterRoleBinding({ name: `test-node-proxy-${sa}` });
  });

  it("the doctor's own token refused by the node-agent is told apart from the kubelet's answer", async () => {
    const lines = await kubeletLines({ KCR_NODE_AGENT_TOKEN: 'wrong-agent-token' });
    expect(lines.map((l) => [l.target, l.result])).toEqual(NODES.map((n) => [n, 'fail']));
    expect(lines[0]?.detail).toMatch(/^node-agent http:\/\/127\.0\.0\.1:\d+ answered 401/);
    expect(lines[0]?.fix).toContain('kcr-node-agent-token');
  });

  it('a kubelet port with nothing listening (a wrong hostIP, the kubelet stopped): unreachable, connection refused', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const agent = await startNodeAgent({
      dir: cluster.checkpointDir('node-a'),
      token: AGENT_TOKEN,
      allowDelete: false,
      kubelet: kubeletCheckpointer({ url: `https://127.0.0.1:${port}`, caFile: cluster.kubeletCaFile, tokenFile: tokenFiles.get('node-a')! }),
      logger: capturingLogger().logger,
    });
    try {
      const res = await rawRequest(agent.url, 'GET', '/kubelet-check', { authorization: `Bearer ${AGENT_TOKEN}` });
      const check = JSON.parse(res.body.toString()) as KubeletCheck;
      expect(check).toMatchObject({ access: 'unreachable', detail: expect.stringContaining('ECONNREFUSED') });
      expect(kubeletAccessCheck('node-a', check)).toMatchObject({ result: 'fail', detail: expect.stringContaining(`unreachable at https://127.0.0.1:${port}`) });
    } finally {
      await agent.close();
    }
  });

  it('GET /kubelet-check needs the bearer token and GET', async () => {
    const agent = agents.get('node-a')!;
    expect((await rawRequest(agent.url, 'GET', '/kubelet-check', {})).status).toBe(401);
    expect((await rawRequest(agent.url, 'POST', '/kubelet-check', { authorization: `Bearer ${AGENT_TOKEN}` })).status).toBe(405);
    const ok = await rawRequest(agent.url, 'GET', '/kubelet-check', { authorization: `Bearer ${AGENT_TOKEN}` });
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body.toString())).toMatchObject({ kubelet: cluster.kubeletUrl('node-a'), access: 'authorized', kubeletStatus: 404, detail: 'pod does not exist' });
  });
});

describe('doctor-kubelet decisions', () => {
  it('reads the kubelet answer to the probe', () => {
    expect(kubeletCheck('k', { kind: 'answer', status: 404, body: 'pod does not exist' }).access).toBe('authorized');
    expect(kubeletCheck('k', { kind: 'answer', status: 404, body: '404 page not found\n' }).access).toBe('no-checkpoint-api');
    expect(kubeletCheck('k', { kind: 'answer', status: 401, body: 'Unauthorized\n' }).access).toBe('unauthenticated');
    expect(kubeletCheck('k', { kind: 'answer', status: 403, body: 'Forbidden (...)' }).access).toBe('forbidden');
    expect(kubeletCheck('k', { kind: 'answer', status: 500, body: 'Internal Server Error' }).access).toBe('error');
    expect(kubeletCheck('k', { kind: 'unreachable', message: 'ECONNREFUSED' })).toEqual({ kubelet: 'k', access: 'unreachable', detail: 'ECONNREFUSED' });
  });

  it('gives each failure its fix', () => {
    expect(kubeletAccessCheck('n', { kubelet: 'k', access: 'no-checkpoint-api', kubeletStatus: 404, detail: '404 page not found' }).fix).toContain('ContainerCheckpoint: true');
    expect(kubeletAccessCheck('n', { kubelet: 'k', access: 'error', kubeletStatus: 500, detail: 'x' }).result).toBe('fail');
    expect(agentAnswerCheck('n', 'u', 501, '{}').fix).toContain('KCR_KUBELET_URL');
  });

  it("takes only a KubeletCheck from an agent's 200", () => {
    expect(parseKubeletCheck('{"kubelet":"k","access":"forbidden","kubeletStatus":403,"detail":"Forbidden"}')).toEqual({ kubelet: 'k', access: 'forbidden', kubeletStatus: 403, detail: 'Forbidden' });
    expect(parseKubeletCheck('{"kubelet":"k","access":"maybe","detail":""}')).toBeUndefined();
    expect(parseKubeletCheck('{"status":"ok"}')).toBeUndefined();
    expect(parseKubeletCheck('<html>')).toBeUndefined();
  });

  it('lets only request-checkpoint hold nodes/proxy, and only on the proxy route', () => {
    const rc = { account: `${KCR}/request-checkpoint`, verbs: ['create'] };
    expect(nodesProxyCheck([rc], 'node-agent')[0]?.result).toBe('warn');
    expect(nodesProxyCheck([rc], 'apiserver-proxy')[0]?.result).toBe('pass');
    expect(nodesProxyCheck([], 'node-agent')[0]?.result).toBe('pass');
  });
});
