// Keep-alive connections to the API server. client-node 1.x builds a new
// https.Agent for every request (KubeConfig.createAgent, called from
// applySecurityAuthentication and applyToHTTPSOptions; kubernetes-client/javascript#2893),
// so every API call opens a TCP connection and does a full TLS handshake.
// This swaps that one-use agent for one long-lived keep-alive agent with the
// same TLS options; credentials are still applied per request (rotated
// service-account tokens keep working), and changed TLS material gets a new agent.
import https from 'node:https';
import { ServerConfiguration, createConfiguration, type Configuration, type KubeConfig, type RequestContext, type SecurityAuthentication } from '@kubernetes/client-node';

/** The TLS options that decide which connections may be shared. */
const TLS_KEYS = ['ca', 'cert', 'key', 'pfx', 'passphrase', 'rejectUnauthorized', 'servername'] as const;

export class KeepAliveAgents {
  private agent: https.Agent | undefined;

  constructor(private readonly kubeConfig: KubeConfig) {}

  /**
   * The shared keep-alive agent standing in for the one-use agent client-node
   * made; proxy and plain-http agents are returned unchanged.
   */
  reuse<A>(oneUse: A): A | https.Agent {
    if (!(oneUse instanceof https.Agent) || this.kubeConfig.getCurrentCluster()?.proxyUrl) return oneUse;
    if (!this.agent || !sameTls(this.agent.options, oneUse.options)) {
      // Sockets of a replaced agent close when the server ends them; requests in flight finish.
      this.agent = new https.Agent({ ...oneUse.options, keepAlive: true });
    }
    return this.agent;
  }

  /** An API client (CoreV1Api, AppsV1Api, …) whose requests go through the shared agent. */
  makeApiClient<T>(apiClientType: new (config: Configuration) => T): T {
    const cluster = this.kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    const auth: SecurityAuthentication = {
      getName: () => 'kcr-keep-alive',
      applySecurityAuthentication: async (context: RequestContext) => {
        await this.kubeConfig.applySecurityAuthentication(context);
        const agent = this.reuse(context.getAgent());
        if (agent) context.setAgent(agent);
      },
    };
    return new apiClientType(createConfiguration({ baseServer: new ServerConfiguration(cluster.server, {}), authMethods: { default: auth } }));
  }
}

/** Same TLS material: client-node re-reads it for every request, so compare contents. */
function sameTls(a: https.AgentOptions, b: https.AgentOptions): boolean {
  return TLS_KEYS.every((k) => sameValue(a[k], b[k]));
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Buffer.isBuffer(a) && Buffer.isBuffer(b)) return a.equals(b);
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => sameValue(v, b[i]));
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
  }
  return false;
}
