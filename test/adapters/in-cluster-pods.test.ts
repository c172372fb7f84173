// The light pod reader (functions/core/kubernetes/in-cluster-pods.ts) from a
// kubeconfig, against the simulated API server over HTTPS: store-artifact and
// build-image use it instead of client-node wherever a bearer token will do.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppsV1Api } from '@kubernetes/client-node';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulatedCluster, type SimulatedCluster } from '../../simulator/index.js';
import { InClusterPods, podsApiFromEnv } from '../../functions/core/kubernetes/in-cluster-pods.js';
import { Kubernetes } from '../../functions/core/kubernetes/kubernetes.js';
import { deployment, runningPods } from '../../simulator/workloads.js';

describe('InClusterPods from a kubeconfig', () => {
  let cluster: SimulatedCluster;
  let dir: string;
  type Doc = { users: { name: string; user: Record<string, string> }[] };
  const doc = () => parse(readFileSync(cluster.kubeconfigPath, 'utf8')) as Doc;
  const write = (name: string, d: Doc) => {
    const path = join(dir, name);
    writeFileSync(path, stringify(d));
    return path;
  };

  beforeAll(async () => {
    cluster = await startSimulatedCluster({ nodes: ['node-a'], kubelet: { tickMs: 20, dataSize: 1024 } });
    dir = mkdtempSync(join(tmpdir(), 'kcr-kubeconfig-'));
    await cluster.kubeConfig.makeApiClient(AppsV1Api).createNamespacedDeployment({ namespace: 'default', body: deployment({ name: 'web' }) });
    await runningPods(new Kubernetes(cluster.kubeConfig), 'default', 'app=web', 1);
  });
  afterAll(async () => {
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads pods with the token of the current context, and a missing pod as undefined', async () => {
    const pods = InClusterPods.fromKubeconfig(cluster.kubeconfigPath)!;
    expect(pods).toBeInstanceOf(InClusterPods);
    const [pod] = await pods.listPods('default', 'app=web');
    expect(pod?.metadata?.name).toMatch(/^web-/);
    expect((await pods.getPod('default', pod!.metadata!.name!))?.metadata?.uid).toBe(pod!.metadata!.uid);
    expect(await pods.getPod('default', 'ghost')).toBeUndefined();
  });

  it('takes a tokenFile relative to the kubeconfig', async () => {
    const d = doc();
    const user = d.users[0]!.user;
    writeFileSync(join(dir, 'token'), `${user.token}\n`);
    delete user.token;
    user.tokenFile = 'token';
    const pods = InClusterPods.fromKubeconfig(write('with-token-file', d))!;
    expect(await pods.listPods('default', 'app=web')).toHaveLength(1);
  });

  it('leaves any other kind of user to the Kubernetes adapter', async () => {
    const d = doc();
    d.users[0]!.user = { 'client-certificate-data': 'Y2VydA==', 'client-key-data': 'a2V5' };
    const path = write('with-client-cert', d);
    expect(InClusterPods.fromKubeconfig(path)).toBeUndefined();
    expect(await podsApiFromEnv({ KUBECONFIG: path })).toBeInstanceOf(Kubernetes);
    expect(await podsApiFromEnv({ KUBECONFIG: cluster.kubeconfigPath })).toBeInstanceOf(InClusterPods);
  });

  it('a wrong token is refused by the API server, as a clear error', async () => {
    const d = doc();
    d.users[0]!.user.token = 'not-the-token';
    await expect(InClusterPods.fromKubeconfig(write('wrong-token', d))!.listPods('default')).rejects.toThrow(/list pods in default: HTTP 401/);
  });
});
