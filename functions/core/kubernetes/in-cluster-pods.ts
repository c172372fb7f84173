// Reading pods from inside the cluster with the pod's ServiceAccount, without
// @kubernetes/client-node: loading client-node costs about 75 MiB of RSS, half
// the memory budget of store-artifact (the checkpointed pod, node-agent pods)
// and build-image (pods that still use a checkpoint image), whose only API
// calls are these; one GET with the mounted token does the same.
// With KUBECONFIG (the local mode, tests, benchmarks) the same reader serves a
// kubeconfig whose user has a bearer token; any other kind of user (client
// certificates, exec plugins) gets the Kubernetes adapter.
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { dirname, join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { V1ObjectMeta, V1Pod } from '@kubernetes/client-node';
import { readEnv } from '../runtime/config.js';
import { ConfigError, TransientError, errorMessage } from '../runtime/errors.js';
import { requestFailure, timeoutError } from '../runtime/transient.js';
import { isTransientStatus, KubeApiError, statusMessage } from './errors.js';

const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

interface InClusterPodsOptions {
  /** `https://host:port` of the API server. */
  server: string;
  /** The API server's CA (PEM). */
  ca: Buffer;
  /** The bearer token, read on every call: projected tokens rotate. */
  token: () => string;
  timeoutMs?: number;
}

/** A workload's metadata and pod template's, as retention reads its annotations. */
export interface WorkloadObject {
  metadata?: V1ObjectMeta;
  spec?: { template?: { metadata?: V1ObjectMeta } };
}

/** What store-artifact and build-image read of the API. */
interface PodsApi {
  getPod(namespace: string, name: string): Promise<V1Pod | undefined>;
  listPods(namespace: string, labelSelector?: string, fieldSelector?: string): Promise<V1Pod[]>;
  getWorkload(namespace: string, kind: 'Deployment' | 'StatefulSet', name: string): Promise<WorkloadObject | undefined>;
}

/**
 * The pod reader of a function process: in a pod, the ServiceAccount's; with
 * KUBECONFIG, this reader when its user has a token, else the Kubernetes
 * adapter (loaded only then: client-node is ~75 MiB of RSS).
 */
export async function podsApiFromEnv(env: NodeJS.ProcessEnv = process.env): Promise<PodsApi> {
  const c = readEnv(['KUBECONFIG'], env);
  if (!c.KUBECONFIG) return InClusterPods.fromEnv(env);
  const light = InClusterPods.fromKubeconfig(c.KUBECONFIG);
  if (light) return light;
  const { Kubernetes } = await import('./kubernetes.js');
  return Kubernetes.fromEnvironment(c.KUBECONFIG);
}

export class InClusterPods {
  private readonly agent: Agent;
  private readonly timeoutMs: number;

  constructor(private readonly options: InClusterPodsOptions) {
    this.agent = new Agent({ keepAlive: true, ca: options.ca });
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  /** From KUBERNETES_SERVICE_HOST/PORT, which Kubernetes sets in every pod, and the mounted ServiceAccount. */
  static fromEnv(env: NodeJS.ProcessEnv = process.env, serviceAccountDir = SERVICE_ACCOUNT_DIR): InClusterPods {
    const c = readEnv(['KUBERNETES_SERVICE_HOST', 'KUBERNETES_SERVICE_PORT'], env);
    if (!c.KUBERNETES_SERVICE_HOST) throw new ConfigError('not in a cluster (KUBERNETES_SERVICE_HOST is unset): set KUBECONFIG');
    const host = c.KUBERNETES_SERVICE_HOST.includes(':') ? `[${c.KUBERNETES_SERVICE_HOST}]` : c.KUBERNETES_SERVICE_HOST;
    const caPath = join(serviceAccountDir, 'ca.crt');
    let ca: Buffer;
    try {
      ca = readFileSync(caPath);
    } catch (err) {
      throw new ConfigError(`cannot read the ServiceAccount's CA ${caPath} (is the token mounted?): ${errorMessage(err)}`);
    }
    const tokenPath = join(serviceAccountDir, 'token');
    return new InClusterPods({ server: `https://${host}:${c.KUBERNETES_SERVICE_PORT}`, ca, token: () => readFileSync(tokenPath, 'utf8').trim() });
  }

  /**
   * From a kubeconfig's current context when its user has a bearer token
   * (`token` or `tokenFile`) and its cluster an https server; undefined for
   * any other kind of user, which the Kubernetes adapter handles.
   */
  static fromKubeconfig(path: string): InClusterPods | undefined {
    let doc: Kubeconfig;
    try {
      doc = parseYaml(readFileSync(path, 'utf8')) as Kubeconfig;
    } catch (err) {
      throw new ConfigError(`cannot read KUBECONFIG ${path}: ${errorMessage(err)}`);
    }
    const context = doc.contexts?.find((c) => c.name === doc['current-context'])?.context;
    const cluster = doc.clusters?.find((c) => c.name === context?.cluster)?.cluster;
    const user = doc.users?.find((u) => u.name === context?.user)?.user;
    if (!cluster?.server?.startsWith('https://') || !user || (!user.token && !user.tokenFile)) return undefined;
    const near = (file: string) => resolve(dirname(path), file);
    const ca = cluster['certificate-authority-data']
      ? Buffer.from(cluster['certificate-authority-data'], 'base64')
      : cluster['certificate-authority']
        ? readFileSync(near(cluster['certificate-authority']))
        : undefined;
    if (!ca) return undefined;
    const { token, tokenFile } = user;
    return new InClusterPods({ server: cluster.server, ca, token: token ? () => token : () => readFileSync(near(tokenFile!), 'utf8').trim() });
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

  /** The Deployment or StatefulSet, or undefined when the API has none of that name. */
  async getWorkload(namespace: string, kind: 'Deployment' | 'StatefulSet', name: string): Promise<WorkloadObject | undefined> {
    const plural = kind === 'Deployment' ? 'deployments' : 'statefulsets';
    const url = new URL(`/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/${plural}/${encodeURIComponent(name)}`, this.options.server);
    return (await this.get(url, `get ${kind} ${namespace}/${name}`, true)) as WorkloadObject | undefined;
  }

  private async get(url: URL, what: string, absentOk = false): Promise<unknown> {
    const token = this.options.token();
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

/** The parts of a kubeconfig this reader uses. */
interface Kubeconfig {
  'current-context'?: string;
  contexts?: { name: string; context?: { cluster?: string; user?: string } }[];
  clusters?: { name: string; cluster?: { server?: string; 'certificate-authority-data'?: string; 'certificate-authority'?: string } }[];
  users?: { name: string; user?: { token?: string; tokenFile?: string } }[];
}
