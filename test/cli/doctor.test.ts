// `kcr doctor` against the simulated cluster of the local stack, made to look
// installed (the Broker and Knative Services Ready, a node-agent pod per node,
// the registry pull secret), then broken one way at a time: each failure is
// reported once, with its fix, and exits 1. What the simulator does for each
// follows the kubelet and API server (simulator/kubelet/checkpoint-api.ts:
// an unregistered /checkpoint is "404 page not found"; k8s.io/kubernetes
// pkg/kubelet/server/server.go registers it only with the ContainerCheckpoint gate).
import { CustomObjectsApi } from '@kubernetes/client-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../cli/run.js';
import { knativeVersionCheck, probeCheck, versionCheck, type CheckResult } from '../../cli/doctor.js';
import { FUNCTIONS } from '../../functions/catalog.js';
import { TEST_TIMINGS, useLocalStack } from '../support/local-stack.js';

const KCR = 'kcr-system';
const NODES = ['node-a', 'node-b'];

describe('kcr doctor', () => {
  const kit = useLocalStack('doctor', { ...TEST_TIMINGS, nodes: NODES });
  const env = () => ({ KUBECONFIG: kit.stack.cluster.kubeconfigPath });
  const custom = () => kit.stack.cluster.kubeConfig.makeApiClient(CustomObjectsApi);
  const ready = (status: 'True' | 'False') => ({ conditions: [{ type: 'Ready', status, ...(status === 'False' ? { reason: 'RevisionFailed', message: 'Revision "x" failed' } : {}) }] });

  async function doctor(...args: string[]): Promise<{ code: number; checks: CheckResult[] }> {
    let out = '';
    const code = await runCli(['doctor', '-o', 'json', ...args], { stdout: { write: (s: string) => (out += s) }, stderr: { write: () => undefined }, env: env() });
    return { code, checks: (JSON.parse(out) as { checks: CheckResult[] }).checks };
  }
  const failures = (checks: CheckResult[]) => checks.filter((c) => c.result === 'fail').map((c) => `${c.check} ${c.target}`);

  it('in the local mode, says the Knative and node-agent checks do not apply', async () => {
    const r = await doctor();
    expect(r.code).toBe(0);
    expect(r.checks.find((c) => c.check === 'knative')).toMatchObject({ result: 'warn', detail: expect.stringContaining('local mode') });
    expect(r.checks.some((c) => c.check === 'broker' || c.check === 'node-agent')).toBe(false);
  });

  it("in the local mode with its env (.state/run/env), each node-agent process reaches its kubelet's HTTPS port and may checkpoint", async () => {
    let out = '';
    await runCli(['doctor', '-o', 'json'], { stdout: { write: (s: string) => (out += s) }, stderr: { write: () => undefined }, env: kit.stack.env });
    const checks = (JSON.parse(out) as { checks: CheckResult[] }).checks;
    expect(checks.filter((c) => c.check === 'node-agent-kubelet').map((c) => [c.target, c.result, c.detail])).toEqual(
      NODES.map((n) => [n, 'pass', `node-agent → kubelet on ${n}: reachable, authorized for nodes/checkpoint`]),
    );
    expect(checks.find((c) => c.check === 'nodes-proxy')).toMatchObject({ result: 'pass', detail: 'no kcr ServiceAccount may use nodes/proxy' });
  });

  beforeAll(async () => {
    const { cluster } = kit.stack;
    cluster.seed(
      ...['knative-serving', 'knative-eventing'].map((name) => ({
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name, labels: { 'app.kubernetes.io/name': name, 'app.kubernetes.io/version': '1.16.0' } },
      })),
      { apiVersion: 'eventing.knative.dev/v1', kind: 'Broker', metadata: { name: 'kcr', namespace: KCR }, spec: {}, status: ready('True') },
      ...Object.keys(FUNCTIONS).map((name) => ({ apiVersion: 'serving.knative.dev/v1', kind: 'Service', metadata: { name, namespace: KCR }, spec: {}, status: ready('True') })),
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'kcr-registry', namespace: KCR },
        type: 'kubernetes.io/dockerconfigjson',
        data: { '.dockerconfigjson': Buffer.from('{"auths":{}}').toString('base64') },
      },
    );
    // The DaemonSet's pods, one per node (the simulator has no DaemonSet controller).
    for (const node of NODES) {
      await kit.core.createNamespacedPod({
        namespace: KCR,
        body: {
          metadata: { name: `kcr-node-agent-${node}`, labels: { 'app.kubernetes.io/part-of': 'kcr', 'app.kubernetes.io/component': 'node-agent' } },
          spec: { nodeName: node, containers: [{ name: 'node-agent', image: 'ghcr.io/kcr/kcr:1' }] },
        },
      });
    }
    await kit.until('node-agent pods ready', async () => {
      const pods = (await kit.core.listNamespacedPod({ namespace: KCR })).items;
      return pods.filter((p) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).length === NODES.length;
    });
  });

  it('passes on a healthy installation, exit 0, with every check in the table', async () => {
    // From here on the cluster stands for an installation: kcr-config without the local mode's mark.
    const cm = await kit.core.readNamespacedConfigMap({ namespace: KCR, name: 'kcr-config' });
    const { 'local-mode': _local, ...data } = cm.data ?? {};
    await kit.core.replaceNamespacedConfigMap({ namespace: KCR, name: 'kcr-config', body: { ...cm, data } });
    const r = await doctor();
    expect(failures(r.checks)).toEqual([]);
    expect(r.code).toBe(0);
    const names = new Set(r.checks.map((c) => c.check));
    for (const n of ['knative-serving', 'knative-eventing', 'kubernetes', 'checkpoint-api', 'node-runtime', 'broker', 'service', 'node-agent', 's3', 'registry']) expect(names).toContain(n);
    expect(r.checks.filter((c) => c.check === 'checkpoint-api').map((c) => c.target)).toEqual(NODES);
    let text = '';
    expect(await runCli(['doctor'], { stdout: { write: (s: string) => (text += s) }, stderr: { write: () => undefined }, env: env() })).toBe(0);
    expect(text.split('\n')[0]).toMatch(/^CHECK\s+TARGET\s+RESULT\s+DETAIL\s+FIX$/);
  });

  it('the ContainerCheckpoint gate off on one node', async () => {
    kit.stack.cluster.setCheckpointFeatureGate('node-b', false);
    try {
      const r = await doctor();
      expect(r.code).toBe(1);
      expect(failures(r.checks)).toEqual(['checkpoint-api node-b']);
      expect(r.checks.find((c) => c.result === 'fail')?.fix).toContain('ContainerCheckpoint: true');
    } finally {
      kit.stack.cluster.setCheckpointFeatureGate('node-b', true);
    }
  });

  it("the API server's kubelet client without nodes/checkpoint", async () => {
    kit.stack.cluster.setApiServerKubeletCheckpointPermission(false, 'node-a');
    try {
      const r = await doctor();
      expect(failures(r.checks)).toEqual(['checkpoint-api node-a']);
      expect(r.checks.find((c) => c.result === 'fail')?.fix).toMatch(/^kubectl apply -f manifests\/options\/apiserver-proxy\/kubelet-checkpoint-rbac.yaml /);
    } finally {
      kit.stack.cluster.setApiServerKubeletCheckpointPermission(true);
    }
  });

  it('the user without nodes/proxy', async () => {
    const undo = kit.stack.cluster.denyPermission({ verb: 'create', resource: 'nodes/proxy' });
    try {
      const r = await doctor();
      expect(failures(r.checks)).toEqual(['checkpoint-api node-a', 'checkpoint-api node-b']);
      expect(r.checks.find((c) => c.result === 'fail')?.fix).toContain('nodes/proxy');
    } finally {
      undo();
    }
  });

  it('a node whose runtime cannot restore (containerd 2.4)', async () => {
    const node = await kit.core.readNode({ name: 'node-b' });
    const before = node.status!.nodeInfo!.containerRuntimeVersion;
    await kit.core.replaceNodeStatus({ name: 'node-b', body: { ...node, status: { ...node.status, nodeInfo: { ...node.status!.nodeInfo!, containerRuntimeVersion: 'containerd://2.4.0' } } } });
    try {
      const r = await doctor();
      expect(failures(r.checks)).toEqual(['node-runtime node-b']);
      expect(r.checks.find((c) => c.result === 'fail')?.detail).toContain('containerd://2.4.0');
    } finally {
      const now = await kit.core.readNode({ name: 'node-b' });
      await kit.core.replaceNodeStatus({ name: 'node-b', body: { ...now, status: { ...now.status, nodeInfo: { ...now.status!.nodeInfo!, containerRuntimeVersion: before } } } });
    }
  });

  it('Knative Eventing older than 1.15', async () => {
    const ns = await kit.core.readNamespace({ name: 'knative-eventing' });
    await kit.core.replaceNamespace({ name: 'knative-eventing', body: { ...ns, metadata: { ...ns.metadata, labels: { ...ns.metadata?.labels, 'app.kubernetes.io/version': '1.14.3' } } } });
    const r = await doctor();
    expect(failures(r.checks)).toEqual(['knative-eventing knative-eventing']);
    const now = await kit.core.readNamespace({ name: 'knative-eventing' });
    await kit.core.replaceNamespace({ name: 'knative-eventing', body: { ...now, metadata: { ...now.metadata, labels: { ...now.metadata?.labels, 'app.kubernetes.io/version': '1.16.0' } } } });
  });

  it('the Broker not ready, then a Knative Service missing', async () => {
    const broker = (await custom().getNamespacedCustomObject({ group: 'eventing.knative.dev', version: 'v1', namespace: KCR, plural: 'brokers', name: 'kcr' })) as Record<string, unknown>;
    await custom().replaceNamespacedCustomObjectStatus({ group: 'eventing.knative.dev', version: 'v1', namespace: KCR, plural: 'brokers', name: 'kcr', body: { ...broker, status: ready('False') } });
    let r = await doctor();
    expect(failures(r.checks)).toEqual([`broker ${KCR}/kcr`]);
    const now = (await custom().getNamespacedCustomObject({ group: 'eventing.knative.dev', version: 'v1', namespace: KCR, plural: 'brokers', name: 'kcr' })) as Record<string, unknown>;
    await custom().replaceNamespacedCustomObjectStatus({ group: 'eventing.knative.dev', version: 'v1', namespace: KCR, plural: 'brokers', name: 'kcr', body: { ...now, status: ready('True') } });

    const svc = await custom().getNamespacedCustomObject({ group: 'serving.knative.dev', version: 'v1', namespace: KCR, plural: 'services', name: 'restore-pod' });
    await custom().deleteNamespacedCustomObject({ group: 'serving.knative.dev', version: 'v1', namespace: KCR, plural: 'services', name: 'restore-pod' });
    r = await doctor();
    expect(failures(r.checks)).toEqual([`service ${KCR}/restore-pod`]);
    kit.stack.cluster.seed({ ...(svc as { metadata: { name: string } }), apiVersion: 'serving.knative.dev/v1', kind: 'Service', metadata: { name: 'restore-pod', namespace: KCR } } as never);
  });

  it('no node-agent on a node', async () => {
    await kit.core.deleteNamespacedPod({ namespace: KCR, name: 'kcr-node-agent-node-b', gracePeriodSeconds: 0 });
    await kit.until('the agent pod gone', async () => !(await kit.core.listNamespacedPod({ namespace: KCR })).items.some((p) => p.metadata?.name === 'kcr-node-agent-node-b'));
    const r = await doctor();
    expect(failures(r.checks)).toEqual(['node-agent node-b']);
    await kit.core.createNamespacedPod({
      namespace: KCR,
      body: {
        metadata: { name: 'kcr-node-agent-node-b', labels: { 'app.kubernetes.io/part-of': 'kcr', 'app.kubernetes.io/component': 'node-agent' } },
        spec: { nodeName: 'node-b', containers: [{ name: 'node-agent', image: 'ghcr.io/kcr/kcr:1' }] },
      },
    });
  });

  it('S3 credentials refused', async () => {
    const r = await doctor('--s3-access-key', 'NOTAKEYTHES3KNOWS000', '--s3-secret-key', 'wrong-secret');
    expect(failures(r.checks).filter((f) => !f.startsWith('node-agent'))).toEqual([expect.stringMatching(/^s3 /)]);
  });

  it('the registry unreachable, and its pull secret missing', async () => {
    const cm = await kit.core.readNamespacedConfigMap({ namespace: KCR, name: 'kcr-config' });
    await kit.core.replaceNamespacedConfigMap({ namespace: KCR, name: 'kcr-config', body: { ...cm, data: { ...cm.data, 'registry-url': 'http://127.0.0.1:1' } } });
    await kit.core.deleteNamespacedSecret({ namespace: KCR, name: 'kcr-registry' });
    const r = await doctor();
    expect(failures(r.checks).filter((f) => !f.startsWith('node-agent'))).toEqual(['registry http://127.0.0.1:1', `pull-secret ${KCR}/kcr-registry`]);
  });
});

describe('doctor decisions', () => {
  it('reads the Kubernetes version', () => {
    expect(versionCheck('v1.31.0').result).toBe('pass');
    expect(versionCheck('v1.29.4')).toMatchObject({ result: 'fail', fix: 'upgrade to Kubernetes ≥ 1.30' });
    expect(versionCheck('v2.0.0').result).toBe('pass');
  });

  it('reads the Knative versions from their namespaces', () => {
    expect(knativeVersionCheck('knative-eventing', '1.16.2').result).toBe('pass');
    expect(knativeVersionCheck('knative-eventing', 'v1.14.0')).toMatchObject({ result: 'fail', fix: 'upgrade knative-eventing to ≥ 1.15' });
    expect(knativeVersionCheck('knative-serving', undefined).result).toBe('warn');
  });

  it('tells the probe answers apart', () => {
    expect(probeCheck('n', 404, '404 page not found\n').detail).toContain('feature gate is off');
    expect(probeCheck('n', 404, 'pod does not exist').result).toBe('pass');
    expect(probeCheck('n', 401, 'Unauthorized').fix).toContain('credentials');
    expect(probeCheck('n', 500, 'boom').result).toBe('fail');
  });
});
