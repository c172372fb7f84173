// Client of the node-agent DaemonSet: streams a kubelet archive off a node and
// asks for its deletion. Failures are classified for the handler: a connection
// error (runtime/transient.ts), 5xx or a body cut short → TransientError (the
// broker retries); 404 → ArchiveGoneError; 400/401/403 → NodeAgentRefusedError
// (retrying the same request cannot help).
import { request, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Transform, type Readable } from 'node:stream';
import { KUBELET_ARCHIVE_NAME } from '../core/contract/kubelet-archive.js';
import { nodeAgentLocatorFromEnv, type NodeAgentLocator, type PodLister } from '../core/node-agent/locator.js';
import { readEnv } from '../core/runtime/config.js';
import { RefusedError, TransientError, errorMessage } from '../core/runtime/errors.js';
import { requestFailure, timeoutError } from '../core/runtime/transient.js';
import { tokenGetter } from '../core/runtime/token.js';

export class ArchiveGoneError extends Error {
  override readonly name = 'ArchiveGoneError';
}

/** 400/401/403 from a node-agent. */
export class NodeAgentRefusedError extends RefusedError {
  override readonly name = 'NodeAgentRefusedError';
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
    const c = readEnv(['KCR_NODE_AGENT_TOKEN', 'KCR_NODE_AGENT_TOKEN_FILE', 'KCR_NODE_AGENT_TIMEOUT_MS'], env);
    return new NodeAgentClient({
      locate: nodeAgentLocatorFromEnv(env, pods),
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
