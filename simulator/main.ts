// Standalone simulated cluster with a sample workload: `npx tsx simulator/main.ts`, then
// `kubectl --kubeconfig <printed path> get pods,deployments`. Stops on SIGINT/SIGTERM.

import { startSimulatedCluster } from './index.js';

const cluster = await startSimulatedCluster({ stateDir: process.env.KCR_SIM_STATE_DIR || undefined, kubelet: { tickMs: 1000 } });

cluster.seed(
  {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: 'counter',
      namespace: 'default',
      labels: { app: 'counter' },
      annotations: { 'kcr.io/checkpoint-restore-schedule': '*/10 * * * * *' },
    },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: 'counter' } },
      template: { metadata: { labels: { app: 'counter' } }, spec: { containers: [{ name: 'counter', image: 'quay.io/kcr/counter:1' }] } },
    },
  },
  {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name: 'web', namespace: 'default', labels: { app: 'web' } },
    spec: {
      replicas: 1,
      serviceName: 'web',
      selector: { matchLabels: { app: 'web' } },
      template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'web', image: 'quay.io/kcr/counter:1' }] } },
    },
  },
);

console.log(`simulated cluster API server: ${cluster.httpsUrl} (plain http: ${cluster.url})`);
console.log(`kubeconfig: ${cluster.kubeconfigPath}`);
console.log(`try: kubectl --kubeconfig ${cluster.kubeconfigPath} get pods,deployments`);

let stopping = false;
const shutdown = (signal: string): void => {
  if (stopping) return;
  stopping = true;
  console.log(`${signal}: stopping the simulated cluster`);
  cluster.stop().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error('stopping the simulated cluster failed:', err);
      process.exit(1);
    },
  );
};
process.on('SIGINT', () => shutdown('SIGINT'));
process.on('SIGTERM', () => shutdown('SIGTERM'));
// Keep the process alive: the servers' timers are unref'd.
setInterval(() => undefined, 1 << 30);
