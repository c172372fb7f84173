// Writes the kubeconfig file clients use to reach the simulated cluster.

import { writeFileSync } from 'node:fs';
import { stringify } from 'yaml';

export function writeKubeconfig(path: string, server: string, caPem: Buffer, user: string, token: string): void {
  const doc = {
    apiVersion: 'v1',
    kind: 'Config',
    'current-context': 'kcr-sim',
    // https: client-go (kubectl) sends the bearer token only to https servers.
    clusters: [{ name: 'kcr-sim', cluster: { server, 'certificate-authority-data': caPem.toString('base64') } }],
    users: [{ name: user, user: { token } }],
    contexts: [{ name: 'kcr-sim', context: { cluster: 'kcr-sim', user, namespace: 'default' } }],
    preferences: {},
  };
  writeFileSync(path, stringify(doc), { mode: 0o600 });
}
