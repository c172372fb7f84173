// Reading pods from inside the cluster with the pod's ServiceAccount, without
// @kubernetes/client-node: loading client-node costs about 75 MiB of RSS, half
// the memory budget of store-artifact (the checkpointed pod, node-agent pods)
// and build-image (pods that still use a checkpoint image), whose only API
// calls are these; one GET with the mounted token does the same.
// Out of the cluster (KUBECONFIG set: the local mode, tests) the Kubernetes
// adapter serves instead.
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { readEnv } from '../runtime/config.js';
import { ConfigError, TransientError, errorMessage } from '../runtime/errors.js';
import { requestFailure, timeoutError } from '../runtime/transient.js';
import { isTransientStatus, KubeApiError, statusMessage } from './errors.js';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface InClusterPodsOptions {
  /** `https://host:port` of the API server. */
  server: string;
  /** Holds `token` (re-read on every call: projected tokens rotate) and `ca.crt`. */
  serviceAccountDir: string;
  timeoutMs?: number;
}

export class InClusterPods {
  private readonly agent: Agent;
  private readonly timeoutMs: number;

  constructor(private readonly options: InClusterPodsOptions) {
    let ca: Buffer;
    try {
      ca = readFileSync(join(options.serviceAccountDir, 'ca.crt'));
    } catch (err) {
      throw new ConfigError(`cannot read the ServiceAccount's CA ${join(options.serviceAccountDir, 'ca.crt')} (is the token mounted?): ${errorMessage(err)}`);
    }
    this.agent = new Agent({ keepAlive: true, ca });
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  /** From KUBERNETES_SERVICE_HOST/PORT, which Kubernetes sets in every pod. */
  static fromEnv(env: NodeJS.ProcessEnv = process.env, serviceAccountDir = SERVICE_ACCOUNT_DIR): InClusterPods {
    const c = readEnv(['KUBERNETES_SERVICE_HOST', 'KUBERNETES_SERVICE_PORT'], env);
    if (!c.KUBERNETES_SERVICE_HOST) throw new ConfigError('not in a cluster (KUBERNETES_SERVICE_HOST is unset): set KUBECONFIG');
    const host = c.KUBERNETES_SERVICE_HOST.includes(':') ? `[${c.KUBERNETES_SERVICE_HOST}]` : c.KUBERNETES_SERVICE_HOST;
    return new InClusterPods({ server: `https://${host}:${c.KUBERNETES_SERVICE_PORT}`, serviceAccountDir });
  }

  async listPods(namespace: string, labelSelector?: string, fieldSelector?: string): Promise<V1Pod[]> {
    const url = new URL(`/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`, this.options.server);
    if (labelSelector) url.searchParams.set('labelSelector', labelSelector);
    if (fieldSelector) url.searchParams.set('fieldSelector', fieldSelector);
    const what = `list pods in ${namespace}${labelSelector || fieldSelector ? ` (${[labelSelector, fieldSelector].filter(Boolean).join('; ')})` : ''}`;
    return ((await this.get(url, what)) as { items?: V1Pod[] } | undefined)?.items ?? [];
  }

  /** The pod, or undefined when the API has none of that name. */
  async getPod(namespace: string, name: string): Promise<V1Pod | undefined> {
    const url = new URL(`/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}`, this.options.server);
    return (await this.get(url, `get pod ${namespace}/${name}`, true)) as V1Pod | undefined;
  }

  private async get(url: URL, what: string, absentOk = false): Promise<unknown> {
    const token = readFileSync(join(this.options.serviceAccountDir, 'token'), 'utf8').trim();
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(url, { agent: this.agent, headers: { authorization: `Bearer ${token}`, accept: 'application/json' }, timeout: this.timeoutMs }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        res.on('error', (err) => reject(requestFailure(`${what}: the answer broke off`, err)));
      });
      req.on('timeout', () => req.destroy(timeoutError(`no answer within ${this.timeoutMs} ms`)));
      req.on('error', (err) => reject(requestFailure(what, err)));
      req.end();
    });
    if (status === 200) return JSON.parse(body) as unknown;
    if (status === 404 && absentOk) return undefined;
    const message = `${what}: HTTP ${status}: ${statusMessage(body)}`;
    if (isTransientStatus(status)) throw new TransientError(message);
    throw new KubeApiError(message, status);
  }
}
