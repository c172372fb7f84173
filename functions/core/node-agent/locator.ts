// Where the node-agent of a node is: a URL from KCR_NODE_AGENT_URLS, the Ready
// DaemonSet pod on that node found through the API (KCR_NODE_AGENT_SELECTOR), or a
// URL template. store-artifact streams archives from it; request-checkpoint asks it
// for checkpoints (KCR_CHECKPOINT_VIA=node-agent).
import type { V1Pod } from '@kubernetes/client-node';
import { isServing } from '../kubernetes/pods.js';
import { readEnv } from '../runtime/config.js';
import { ConfigError, TransientError, errorMessage } from '../runtime/errors.js';

/** The node-agent of a node cannot be looked up, and retrying will not change that (RBAC, a bad selector). */
export class NodeAgentLookupError extends Error {
  override readonly name = 'NodeAgentLookupError';
}

/** Maps a node name to its agent's base URL. */
export type NodeAgentLocator = (node: string) => Promise<string>;

/** Finds the agent of a node through the API; undefined when no agent pod there serves. */
export type NodeAgentDiscovery = (node: string) => Promise<string | undefined>;

/**
 * Nodes named in `urls` use that URL (the simulated cluster, local mode, or a
 * hand-made map); the others are looked up with `discover` when it is given,
 * else `template` with `{node}` replaced by the node name.
 */
export function nodeAgentLocator({ template, urls = {}, discover }: { template?: string; urls?: Record<string, string>; discover?: NodeAgentDiscovery }): NodeAgentLocator {
  if (template !== undefined && !template.includes('{node}')) throw new ConfigError(`node-agent URL template ${JSON.stringify(template)} has no {node} placeholder`);
  for (const [node, url] of Object.entries(urls)) {
    if (!URL.canParse(url)) throw new ConfigError(`node-agent URL for node ${node} is not a URL: ${JSON.stringify(url)}`);
  }
  return async (node) => {
    let url = urls[node];
    if (url === undefined && discover) {
      url = await discover(node);
      // The DaemonSet's pod may be starting or rolling: worth a retry.
      if (url === undefined) throw new TransientError(`no Ready node-agent pod on node ${node}`);
    }
    url ??= template?.replaceAll('{node}', node);
    if (!url) throw new ConfigError(`no node-agent URL for node ${node}: it is not in KCR_NODE_AGENT_URLS, and neither KCR_NODE_AGENT_SELECTOR nor KCR_NODE_AGENT_URL_TEMPLATE is set`);
    return url.replace(/\/+$/, '');
  };
}

/** What discovery needs of the Kubernetes API. */
export interface PodLister {
  listPods(namespace: string, labelSelector?: string, fieldSelector?: string): Promise<V1Pod[]>;
}

/**
 * Discovery of the DaemonSet's pods: the serving pod matching `selector` on the
 * node, called on its pod IP. Needs neither node names that resolve nor a hostPort.
 */
export function nodeAgentPods(kube: PodLister, { namespace, selector, port }: { namespace: string; selector: string; port: number }): NodeAgentDiscovery {
  return async (node) => {
    let pods: V1Pod[];
    try {
      pods = await kube.listPods(namespace, selector, `spec.nodeName=${node}`);
    } catch (err) {
      if (err instanceof TransientError) throw err;
      throw new NodeAgentLookupError(`cannot list the node-agent pods (${selector}) in ${namespace}: ${errorMessage(err)}; the caller's ServiceAccount needs list on pods there`, { cause: err });
    }
    const ip = pods.find((p) => p.spec?.nodeName === node && isServing(p))?.status?.podIP;
    if (!ip) return undefined;
    return `http://${ip.includes(':') ? `[${ip}]` : ip}:${port}`;
  };
}

/** The locator KCR_NODE_AGENT_* describe; `pods` is the API that KCR_NODE_AGENT_SELECTOR discovery lists agent pods with. */
export function nodeAgentLocatorFromEnv(env: NodeJS.ProcessEnv = process.env, pods?: PodLister): NodeAgentLocator {
  const c = readEnv(['KCR_NODE_AGENT_URL_TEMPLATE', 'KCR_NODE_AGENT_URLS', 'KCR_NODE_AGENT_SELECTOR', 'KCR_NODE_AGENT_NAMESPACE', 'KCR_NODE_AGENT_PORT'], env);
  if (c.KCR_NODE_AGENT_SELECTOR && !pods) throw new ConfigError('KCR_NODE_AGENT_SELECTOR is set, but no Kubernetes API was given to discover node-agent pods with');
  let urls: Record<string, string> = {};
  if (c.KCR_NODE_AGENT_URLS) {
    try {
      urls = JSON.parse(c.KCR_NODE_AGENT_URLS) as Record<string, string>;
    } catch (err) {
      throw new ConfigError(`invalid configuration: KCR_NODE_AGENT_URLS is not a JSON object of node → URL: ${errorMessage(err)}`);
    }
    if (typeof urls !== 'object' || urls === null || Array.isArray(urls) || Object.values(urls).some((u) => typeof u !== 'string')) {
      throw new ConfigError('invalid configuration: KCR_NODE_AGENT_URLS must be a JSON object of node name → URL string');
    }
  }
  const discover = c.KCR_NODE_AGENT_SELECTOR && pods ? nodeAgentPods(pods, { namespace: c.KCR_NODE_AGENT_NAMESPACE, selector: c.KCR_NODE_AGENT_SELECTOR, port: c.KCR_NODE_AGENT_PORT }) : undefined;
  return nodeAgentLocator({ template: c.KCR_NODE_AGENT_URL_TEMPLATE, urls, ...(discover ? { discover } : {}) });
}
