// Real kubectl against the simulated cluster through its kubeconfig: discovery, get (server-side
// tables), describe, apply (create, then strategic-merge update), logs and delete.

import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppsV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { startSimulatedCluster, type SimulatedCluster } from '../../simulator/index.js';
import { optionalBinary } from '../support/binaries.js';

const run = promisify(execFile);
const kubectlBin = optionalBinary('kubectl');
let cluster: SimulatedCluster;

async function kubectl(...args: string[]): Promise<string> {
  const { stdout } = await run(kubectlBin!, ['--kubeconfig', cluster.kubeconfigPath, ...args], { encoding: 'utf8' });
  return stdout;
}

beforeAll(async () => {
  cluster = await startSimulatedCluster({ kubelet: { tickMs: 20 } });
});

afterAll(async () => {
  await cluster?.stop();
});

const manifest = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: counter
  annotations:
    kcr.io/checkpoint-restore-schedule: "*/10 * * * * *"
spec:
  replicas: 2
  selector:
    matchLabels: {app: counter}
  template:
    metadata:
      labels: {app: counter}
    spec:
      containers:
      - name: counter
        image: quay.io/kcr/counter:1
---
apiVersion: sources.knative.dev/v1
kind: PingSource
metadata:
  name: ping
spec:
  schedule: "*/5 * * * *"
  data: '{"kind":"Deployment"}'
  sink:
    ref: {apiVersion: eventing.knative.dev/v1, kind: Broker, name: default}
`;

describe.skipIf(!kubectlBin)('kubectl', () => {
  it('apply creates and updates, get/describe/logs show the objects, delete removes them', async () => {
    const file = join(cluster.stateDir, 'manifest.yaml');
    writeFileSync(file, manifest);
    const created = await kubectl('apply', '-f', file);
    expect(created).toContain('deployment.apps/counter created');
    expect(created).toContain('pingsource.sources.knative.dev/ping created');

    await cluster.waitFor(async () => (await kubectl('get', 'deployment', 'counter', '-o', 'jsonpath={.status.readyReplicas}')) === '2', { description: 'deployment ready' });
    const table = await kubectl('get', 'pods,deployments');
    expect(table).toMatch(/NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE/);
    expect(table).toMatch(/pod\/counter-[a-z0-9]+-[a-z0-9]{5}\s+1\/1\s+Running\s+0/);
    expect(table).toMatch(/deployment\.apps\/counter\s+2\/2\s+2\s+2/);
    const nodes = await kubectl('get', 'nodes');
    expect(nodes).toMatch(/node-a\s+Ready/);

    const pod = (await kubectl('get', 'pods', '-l', 'app=counter', '-o', 'jsonpath={.items[0].metadata.name}')).trim();
    const describePod = await kubectl('describe', 'pod', pod);
    expect(describePod).toContain('Status:           Running');
    expect(describePod).toContain('Controlled By:  ReplicaSet/counter-');
    expect(describePod).toMatch(/Normal\s+Scheduled\s+.*default-scheduler\s+Successfully assigned default\//);
    const describeDeploy = await kubectl('describe', 'deployment', 'counter');
    expect(describeDeploy).toContain('kcr.io/checkpoint-restore-schedule: */10 * * * * *');
    expect(describeDeploy).toMatch(/NewReplicaSet:\s+counter-[a-z0-9]+ \(2\/2 replicas created\)/);

    await cluster.waitFor(async () => /counter=3/.test(await kubectl('logs', pod)), { description: 'log lines' });

    // Second apply: a strategic merge patch computed by kubectl from its last-applied annotation.
    writeFileSync(file, manifest.replace('replicas: 2', 'replicas: 1').replace('*/5 * * * *', '*/15 * * * *'));
    const configured = await kubectl('apply', '-f', file);
    expect(configured).toContain('deployment.apps/counter configured');
    expect(configured).toContain('pingsource.sources.knative.dev/ping configured');
    const apps = cluster.kubeConfig.makeApiClient(AppsV1Api);
    expect((await apps.readNamespacedDeployment({ namespace: 'default', name: 'counter' })).spec?.replicas).toBe(1);
    const ping = (await cluster.kubeConfig.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({
      group: 'sources.knative.dev',
      version: 'v1',
      namespace: 'default',
      plural: 'pingsources',
      name: 'ping',
    })) as { spec: { schedule: string } };
    expect(ping.spec.schedule).toBe('*/15 * * * *');
    expect(await kubectl('get', 'pingsources')).toMatch(/ping\s+\d+s/);

    const deleted = await kubectl('delete', '-f', file);
    expect(deleted).toContain('deployment.apps "counter" deleted');
    expect(deleted).toContain('pingsource.sources.knative.dev "ping" deleted');
    await cluster.waitFor(async () => (await kubectl('get', 'pods', '-o', 'name')).trim() === '', { description: 'pods collected' });
  });

  it('api-resources lists the built-in and Knative resources', async () => {
    const out = await kubectl('api-resources');
    expect(out).toMatch(/pods\s+po\s+v1\s+true\s+Pod/);
    expect(out).toMatch(/statefulsets\s+sts\s+apps\/v1\s+true\s+StatefulSet/);
    expect(out).toMatch(/pingsources\s+sources\.knative\.dev\/v1\s+true\s+PingSource/);
  });
});
