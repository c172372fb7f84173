// The node-agents' own identity in the local mode, as the DaemonSet gets it in a
// cluster: the ServiceAccount, ClusterRole and binding of manifests/node-agent.yaml
// applied to the simulated cluster, and a projected ServiceAccount token per node
// that the simulated kubelet would mount: requested with TokenRequest (600 s, as
// the DaemonSet's volume asks), written to a file, and renewed at 80 % of its
// life as the kubelet renews projected tokens.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, RbacAuthorizationV1Api, type KubeConfig, type V1ClusterRole, type V1ClusterRoleBinding, type V1ServiceAccount } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { errorMessage } from '../functions/core/runtime/errors.js';

const NODE_AGENT_YAML = fileURLToPath(new URL('../manifests/node-agent.yaml', import.meta.url));
export const NODE_AGENT_SERVICE_ACCOUNT = { namespace: 'kcr-system', name: 'node-agent' };
/** The DaemonSet's projected token: expirationSeconds 600. */
const TOKEN_SECONDS = 600;

/** Creates the node-agent's ServiceAccount and RBAC exactly as manifests/node-agent.yaml declares them. */
export async function applyNodeAgentIdentity(kubeConfig: KubeConfig): Promise<void> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const rbac = kubeConfig.makeApiClient(RbacAuthorizationV1Api);
  const docs = parseAllDocuments(readFileSync(NODE_AGENT_YAML, 'utf8')).map((d) => d.toJS() as { kind?: string; metadata?: { namespace?: string } });
  for (const doc of docs) {
    if (doc.kind === 'ServiceAccount') await core.createNamespacedServiceAccount({ namespace: doc.metadata?.namespace ?? NODE_AGENT_SERVICE_ACCOUNT.namespace, body: doc as V1ServiceAccount });
    else if (doc.kind === 'ClusterRole') await rbac.createClusterRole({ body: doc as V1ClusterRole });
    else if (doc.kind === 'ClusterRoleBinding') await rbac.createClusterRoleBinding({ body: doc as V1ClusterRoleBinding });
  }
}

export interface ProjectedToken {
  stop(): void;
}

/** Writes a fresh node-agent token to `file` now, and again before each one expires; `onError` hears failed renewals. */
export async function projectNodeAgentToken(kubeConfig: KubeConfig, file: string, onError: (message: string) => void): Promise<ProjectedToken> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const write = async () => {
    const tr = await core.createNamespacedServiceAccountToken({ ...NODE_AGENT_SERVICE_ACCOUNT, body: { spec: { expirationSeconds: TOKEN_SECONDS, audiences: [] } } });
    const token = tr.status?.token;
    if (!token) throw new Error(`TokenRequest for ${NODE_AGENT_SERVICE_ACCOUNT.namespace}/${NODE_AGENT_SERVICE_ACCOUNT.name} answered no token`);
    // Atomically, as the kubelet swaps a projected volume's files: a reader never sees half a token.
    writeFileSync(`${file}.tmp`, token, { mode: 0o600 });
    renameSync(`${file}.tmp`, file);
  };
  await write();
  const timer = setInterval(() => {
    write().catch((err: unknown) => onError(`renewing the node-agent token ${file}: ${errorMessage(err)}`));
  }, TOKEN_SECONDS * 800);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
