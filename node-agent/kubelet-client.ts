// The node-agent's client of its own node's kubelet: POST /checkpoint/{ns}/{pod}/{container}
// on the kubelet's HTTPS port, presenting the node-agent's ServiceAccount token. The kubelet
// maps that path to nodes/checkpoint (kubernetes pkg/kubelet/server/auth.go), so the token
// needs nothing else: no nodes/proxy, which would also open /run and /exec. The token is a
// projected one that the kubelet rotates, so it is read from its file on every call; the CA
// is re-read when its file changes.
import { readFileSync, statSync } from 'node:fs';
import https from 'node:https';
import { ConfigError, errorMessage } from '../functions/core/runtime/errors.js';

export type KubeletAnswer =
  /** The kubelet answered (any status). */
  | { kind: 'answer'; status: number; body: string }
  /** No whole answer in time: the checkpoint may or may not have been taken. */
  | { kind: 'timeout'; message: string }
  /** No connection, or it broke: nothing was answered. */
  | { kind: 'unreachable'; message: string };

export interface KubeletCheckpointer {
  readonly url: string;
  checkpoint(namespace: string, pod: string, container: string, timeoutSeconds: number): Promise<KubeletAnswer>;
}

export interface KubeletClientOptions {
  /** The kubelet's base URL, https://<host IP>:10250. */
  url: string;
  caFile: string;
  tokenFile: string;
  /** Beyond the kubelet's own ?timeout=, how long to wait for its answer (default 10 s). */
  marginMs?: number;
  /** Longest answer read; the kubelet's is a short JSON or error text. */
  maxBodyBytes?: number;
}

function readToken(file: string): string {
  let token: string;
  try {
    token = readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new ConfigError(`cannot read the node-agent's ServiceAccount token ${file} (is the projected volume mounted?): ${errorMessage(err)}`);
  }
  if (!token) throw new ConfigError(`the node-agent's ServiceAccount token file ${file} is empty`);
  return token;
}

export function kubeletCheckpointer(options: KubeletClientOptions): KubeletCheckpointer {
  const base = options.url.replace(/\/+$/, '');
  if (!base.startsWith('https://')) throw new ConfigError(`KCR_KUBELET_URL must be https (the kubelet's authenticated port): ${JSON.stringify(options.url)}`);
  const maxBody = options.maxBodyBytes ?? 64 * 1024;
  let agent: { mtimeMs: number; agent: https.Agent } | undefined;
  const agentFor = (): https.Agent => {
    let mtimeMs: number;
    try {
      mtimeMs = statSync(options.caFile).mtimeMs;
    } catch (err) {
      throw new ConfigError(`cannot read the kubelet CA ${options.caFile}: ${errorMessage(err)}`);
    }
    if (agent?.mtimeMs !== mtimeMs) {
      agent?.agent.destroy();
      agent = { mtimeMs, agent: new https.Agent({ keepAlive: true, ca: readFileSync(options.caFile) }) };
    }
    return agent.agent;
  };
  return {
    url: base,
    checkpoint(namespace, pod, container, timeoutSeconds) {
      const path = `/checkpoint/${[namespace, pod, container].map(encodeURIComponent).join('/')}?timeout=${timeoutSeconds}`;
      const token = readToken(options.tokenFile);
      const ag = agentFor();
      const waitMs = timeoutSeconds * 1000 + (options.marginMs ?? 10_000);
      return new Promise<KubeletAnswer>((resolve) => {
        let settled = false;
        const done = (a: KubeletAnswer) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          resolve(a);
        };
        const req = https.request(`${base}${path}`, { method: 'POST', agent: ag, headers: { authorization: `Bearer ${token}`, 'content-length': 0 } }, (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size <= maxBody) chunks.push(c);
          });
          res.on('end', () => done({ kind: 'answer', status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', (err) => done({ kind: 'timeout', message: `the kubelet's answer broke off: ${errorMessage(err)}` }));
        });
        const timer = setTimeout(() => {
          done({ kind: 'timeout', message: `the kubelet did not answer within ${waitMs} ms (checkpoint timeout ${timeoutSeconds} s + margin)` });
          req.destroy();
        }, waitMs);
        req.on('error', (err) => {
          // A reset or hang-up may come after the kubelet started the checkpoint: its outcome is unknown.
          const code = (err as NodeJS.ErrnoException).code;
          const unknown = code === 'ECONNRESET' || code === 'EPIPE' || /socket hang up/.test(err.message);
          done(
            unknown
              ? { kind: 'timeout', message: `the kubelet connection broke: ${errorMessage(err)}` }
              : { kind: 'unreachable', message: `cannot reach the kubelet at ${base}: ${errorMessage(err)}` },
          );
        });
        req.end();
      });
    },
  };
}
