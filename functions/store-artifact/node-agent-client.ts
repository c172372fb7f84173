// Client of the node-agent DaemonSet: streams a kubelet archive off a node and
// asks for its deletion. Failures are classified for the handler: a connection
// error (runtime/transient.ts), 5xx or a body cut short → TransientError (the
// broker retries); 404 → ArchiveGoneError; 400/401/403 → NodeAgentRefusedError
// (retrying the same request cannot help).
import { request, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Transform, type Readable } from 'node:stream';
import type { V1Pod } from '@kubernetes/client-node';
import { KUBELET_ARCHIVE_NAME } from '../core/contract/kubelet-archive.js';
import { isServing } from '../core/kubernetes/pods.js';
import { readEnv } from '../core/runtime/config.js';
import { ConfigError, RefusedError, TransientError, errorMessage } from '../core/runtime/errors.js';
import { requestFailure, timeoutError } from '../core/runtime/transient.js';
import { tokenGetter } from '../core/runtime/token.js';

export class ArchiveGoneError extends Error {
  override readonly name = 'ArchiveGoneError';
}

/** 400/401/403 from a node-agent. */
export class NodeAgentRefusedError extends RefusedError {
  override readonly name = 'NodeAgentRefusedError';
}

/** The node-agent of a node cannot be looked up, and retrying will not change that (RBAC, a bad selector). */
export class NodeAgentLookupError extends Error {
  override readonly name = 'NodeAgentLookupError';
}

export interface ArchiveDownload {
  /** The archive bytes; errors with TransientError if the transfer breaks or ends short. */
  body: Readable;
  size: number;
  url: string;
}

/** What store-artifact needs of the node-agents (tests may substitute it). */
export interface ArchiveSource {
  open(node: string, archivePath: string): Promise<ArchiveDownload>;
  /** 'deleted', or 'kept' when the agent does not delete (disabled) or the file is already gone. */
  remove(node: string, archivePath: string): Promise<'deleted' | 'kept'>;
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
      throw new NodeAgentLookupError(`cannot list the node-agent pods (${selector}) in ${namespace}: ${errorMessage(err)}; store-artifact's ServiceAccount needs list on pods there`, { cause: err });
    }
    const ip = pods.find((p) => p.spec?.nodeName === node && isServing(p))?.status?.podIP;
    if (!ip) return undefined;
    return `http://${ip.includes(':') ? `[${ip}]` : ip}:${port}`;
  };
}

export interface NodeAgentClientOptions {
  locate: NodeAgentLocator;
  token: () => string;
  /** Longest idle time on a connection (connect, headers, between body chunks); default 30 s. */
  timeoutMs?: number;
}

export class NodeAgentClient implements ArchiveSource {
  private readonly timeoutMs: number;

  constructor(private readonly options: NodeAgentClientOptions) {
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  /** From KCR_NODE_AGENT_*; `pods` is the API that KCR_NODE_AGENT_SELECTOR discovery lists agent pods with. */
  static fromEnv(env: NodeJS.ProcessEnv = process.env, pods?: PodLister): NodeAgentClient {
    const c = readEnv(
      [
        'KCR_NODE_AGENT_URL_TEMPLATE',
        'KCR_NODE_AGENT_URLS',
        'KCR_NODE_AGENT_SELECTOR',
        'KCR_NODE_AGENT_NAMESPACE',
        'KCR_NODE_AGENT_PORT',
        'KCR_NODE_AGENT_TOKEN',
        'KCR_NODE_AGENT_TOKEN_FILE',
        'KCR_NODE_AGENT_TIMEOUT_MS',
      ],
      env,
    );
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
    return new NodeAgentClient({
      locate: nodeAgentLocator({ template: c.KCR_NODE_AGENT_URL_TEMPLATE, urls, ...(discover ? { discover } : {}) }),
      token: tokenGetter({ token: c.KCR_NODE_AGENT_TOKEN, tokenFile: c.KCR_NODE_AGENT_TOKEN_FILE }),
      timeoutMs: c.KCR_NODE_AGENT_TIMEOUT_MS,
    });
  }

  /** The agent URL of an archive; only the file name travels, the agent knows its directory. */
  async archiveUrl(node: string, archivePath: string): Promise<string> {
    const name = archivePath.slice(archivePath.lastIndexOf('/') + 1);
    if (!KUBELET_ARCHIVE_NAME.test(name)) throw new NodeAgentRefusedError(`${JSON.stringify(archivePath)} is not a kubelet checkpoint archive path`, 400);
    return `${await this.options.locate(node)}/checkpoints/${encodeURIComponent(name)}`;
  }

  async open(node: string, archivePath: string): Promise<ArchiveDownload> {
    const url = await this.archiveUrl(node, archivePath);
    const res = await this.send('GET', url);
    if (res.statusCode !== 200) throw await this.failure(res, 'GET', url, node);
    const size = Number(res.headers['content-length']);
    if (!Number.isSafeInteger(size) || size < 0) {
      res.destroy();
      throw new TransientError(`node-agent of ${node} sent ${url} without a valid Content-Length`);
    }
    let received = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        received += chunk.length;
        cb(null, chunk);
      },
      flush(cb) {
        cb(received === size ? null : new TransientError(`node-agent of ${node} ended ${url} after ${received} of ${size} bytes`));
      },
    });
    const broken = (why: string, cause?: unknown) =>
      counter.destroy(new TransientError(`reading ${url} from the node-agent of ${node} failed after ${received} of ${size} bytes: ${why}`, cause ? { cause } : undefined));
    res.on('error', (err) => broken(errorMessage(err), err));
    res.on('close', () => {
      if (!res.complete) broken('connection closed');
    });
    // A consumer that gives up (the upload failed) closes the connection instead of draining a large archive.
    counter.on('close', () => {
      if (!res.complete) res.destroy();
    });
    res.pipe(counter);
    return { body: counter, size, url };
  }

  async remove(node: string, archivePath: string): Promise<'deleted' | 'kept'> {
    const url = await this.archiveUrl(node, archivePath);
    const res = await this.send('DELETE', url);
    res.resume();
    if (res.statusCode === 204 || res.statusCode === 200) return 'deleted';
    if (res.statusCode === 404 || res.statusCode === 405) return 'kept';
    throw await this.failure(res, 'DELETE', url, node);
  }

  private send(method: string, url: string): Promise<IncomingMessage> {
    const target = new URL(url);
    const doRequest = target.protocol === 'https:' ? httpsRequest : request;
    return new Promise((resolve, reject) => {
      let req: ReturnType<typeof request>;
      try {
        req = doRequest(target, { method, headers: { authorization: `Bearer ${this.options.token()}` }, timeout: this.timeoutMs });
      } catch (err) {
        reject(err);
        return;
      }
      req.on('timeout', () => req.destroy(timeoutError(`idle for ${this.timeoutMs} ms`)));
      req.on('error', (err) => reject(requestFailure(`node-agent ${method} ${url} failed`, err)));
      req.on('response', resolve);
      req.end();
    });
  }

  private async failure(res: IncomingMessage, method: string, url: string, node: string): Promise<Error> {
    let detail = '';
    try {
      const chunks: Buffer[] = [];
      for await (const c of res) chunks.push(c as Buffer);
      const text = Buffer.concat(chunks).toString('utf8').slice(0, 500);
      detail = (JSON.parse(text) as { error?: string }).error ?? text;
    } catch {
      // the status says enough
    }
    const status = res.statusCode ?? 0;
    const message = `node-agent of ${node} answered ${method} ${url} with ${status}${detail ? `: ${detail}` : ''}`;
    if (status === 404) return new ArchiveGoneError(message);
    if (status === 400 || status === 401 || status === 403) return new NodeAgentRefusedError(message, status);
    return new TransientError(message);
  }
}
