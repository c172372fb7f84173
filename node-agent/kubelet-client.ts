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
  /** POST KUBELET_PROBE_PATH: whether the kubelet lets this identity create nodes/checkpoint, checkpointing nothing. */
  probe(waitMs?: number): Promise<KubeletAnswer>;
}

/**
 * A checkpoint call no kubelet can carry out: Kubernetes names are lower case, so no pod
 * is called "KCR-ACCESS-PROBE". The kubelet authorizes before it routes (the auth filter
 * of pkg/kubelet/server/server.go, InstallAuthFilter, maps /checkpoint to
 * nodes/checkpoint in auth.go), and only then does its checkpoint handler look the pod
 * up and answer 404 "pod does not exist" (server.go, func (s *Server) checkpoint:
 * GetPodByName). So 404 "pod does not exist" means reachable and authorized, 401/403
 * are the kubelet's authentication and authorization, and no container is touched.
 */
export const KUBELET_PROBE_PATH = '/checkpoint/kcr-system/KCR-ACCESS-PROBE/probe?timeout=1';
const PROBE_WAIT_MS = 10_000;

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
  /** POST `path` as the node-agent; `waitMs` bounds the whole answer. */
  const post = (path: string, waitMs: number, what: string): Promise<KubeletAnswer> => {
    const token = readToken(options.tokenFile);
    const ag = agentFor();
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
        done({ kind: 'timeout', message: `the kubelet did not answer within ${waitMs} ms (${what})` });
        req.destroy();
      }, waitMs);
      req.on('error', (err) => {
        // A reset or hang-up may come after the kubelet started the checkpoint: its outcome is unknown.
        const code = (err as NodeJS.ErrnoException).code;
        const unknown = code === 'ECONNRESET' || code === 'EPIPE' || /socket hang up/.test(err.message);
        done(
          unknown ? { kind: 'timeout', message: `the kubelet connection broke: ${errorMessage(err)}` } : { kind: 'unreachable', message: `cannot reach the kubelet at ${base}: ${errorMessage(err)}` },
        );
      });
      req.end();
    });
  };
  return {
    url: base,
    checkpoint(namespace, pod, container, timeoutSeconds) {
      const path = `/checkpoint/${[namespace, pod, container].map(encodeURIComponent).join('/')}?timeout=${timeoutSeconds}`;
      return post(path, timeoutSeconds * 1000 + (options.marginMs ?? 10_000), `checkpoint timeout ${timeoutSeconds} s + margin`);
    },
    probe(waitMs = PROBE_WAIT_MS) {
      return post(KUBELET_PROBE_PATH, waitMs, 'access probe');
    },
  };
}
