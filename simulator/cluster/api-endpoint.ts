// Where clients reach the simulated cluster: the API server listening on loopback
// (http, and https with the checked-in loopback certificate from simulator/tls) and the
// kubeconfig pointing kubectl and the client libraries at it with a bearer token.

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KubeConfig } from '@kubernetes/client-node';
import type { ObjectApi } from '../api.js';
import { writeKubeconfig } from '../kubeconfig.js';
import { ApiServer, type NodeBackend } from '../server/api-server.js';
import { Identities } from '../server/identities.js';

/** Starts the API server; `cert` is the certificate a kubeconfig must trust, `identities` its token table. */
export async function listenApiServer(
  api: ObjectApi,
  backend: NodeBackend,
  opts: { user: string; token: string; bookmarkIntervalMs: number },
): Promise<{ server: ApiServer; url: string; cert: Buffer; identities: Identities }> {
  const identities = new Identities();
  // The kubeconfig's user is the cluster admin (system:masters), as kubeadm's admin.conf is.
  identities.addStatic(opts.token, { username: opts.user, groups: ['system:masters'] });
  const server = new ApiServer(api, backend, {
    identities,
    bookmarkIntervalMs: opts.bookmarkIntervalMs,
    version: { major: '1', minor: '31', gitVersion: 'v1.31.0' },
  });
  const tlsDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'tls');
  const cert = readFileSync(join(tlsDir, 'loopback.crt'));
  const key = readFileSync(join(tlsDir, 'loopback.key'));
  const url = await server.listen({ cert, key });
  return { server, url, cert, identities };
}

/** Writes `<stateDir>/kubeconfig` for the server's https URL and loads it. */
export function clusterKubeconfig(stateDir: string, httpsUrl: string, cert: Buffer, user: string, token: string): { kubeconfigPath: string; kubeConfig: KubeConfig } {
  const kubeconfigPath = join(stateDir, 'kubeconfig');
  writeKubeconfig(kubeconfigPath, httpsUrl, cert, user, token);
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(kubeconfigPath);
  return { kubeconfigPath, kubeConfig };
}
