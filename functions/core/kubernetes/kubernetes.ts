// The Kubernetes adapter: every call kcr makes to the API server, over
// @kubernetes/client-node, with errors mapped to kcr's outcomes (404 → absent,
// 429/5xx/a connection error → TransientError, 409 → ConflictError, other 4xx →
// KubeApiError).
import http from 'node:http';
import https from 'node:https';
import {
  ApiException,
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type CoreV1Event,
  type V1Deployment,
  type V1ObjectMeta,
  type V1Pod,
  type V1StatefulSet,
} from '@kubernetes/client-node';
import { TransientError } from '../runtime/errors.js';
import { requestFailure, timeoutError } from '../runtime/transient.js';
import { KeepAliveAgents } from './keepalive.js';
import { ConflictError, isTransientStatus, KubeApiError, statusMessage } from './errors.js';

export { ConflictError, isTransientStatus, KubeApiError, statusMessage };
import type { WorkloadKind } from '../contract/events.js';

export type Workload = (V1Deployment & { kind: 'Deployment' }) | (V1StatefulSet & { kind: 'StatefulSet' });

/** A Knative PingSource (sources.knative.dev/v1) as kcr writes it. */
export interface PingSource {
  apiVersion: 'sources.knative.dev/v1';
  kind: 'PingSource';
  metadata: V1ObjectMeta;
  spec: {
    schedule: string;
    timezone?: string;
    contentType?: string;
    data?: string;
    sink: { uri?: string; ref?: { apiVersion: string; kind: string; name: string; namespace?: string } };
    ceOverrides?: { extensions?: Record<string, string> };
  };
  status?: unknown;
}

const PING = { group: 'sources.knative.dev', version: 'v1', plural: 'pingsources' } as const;

export type CheckpointOutcome = { ok: true; archivePath: string } | { ok: false; status: number; body: string };

interface KubernetesOptions {
  /** HTTP timeout for the kubelet checkpoint call is the kubelet's timeout plus this margin. */
  checkpointMarginMs?: number;
}

export class Kubernetes {
  readonly core: CoreV1Api;
  readonly apps: AppsV1Api;
  readonly custom: CustomObjectsApi;

  private readonly agents: KeepAliveAgents;

  constructor(
    readonly kubeConfig: KubeConfig,
    private readonly options: KubernetesOptions = {},
  ) {
    this.agents = new KeepAliveAgents(kubeConfig);
    this.core = this.agents.makeApiClient(CoreV1Api);
    this.apps = this.agents.makeApiClient(AppsV1Api);
    this.custom = this.agents.makeApiClient(CustomObjectsApi);
  }

  /** In a pod: the service account; elsewhere KUBECONFIG or ~/.kube/config. */
  static fromEnvironment(kubeconfigPath?: string): Kubernetes {
    const kc = new KubeConfig();
    if (kubeconfigPath) kc.loadFromFile(kubeconfigPath);
    else kc.loadFromDefault();
    return new Kubernetes(kc);
  }

  async getWorkload(namespace: string, kind: WorkloadKind, name: string): Promise<Workload | undefined> {
    return orUndefined(`get ${kind} ${namespace}/${name}`, async () => {
      if (kind === 'Deployment') return { ...(await this.apps.readNamespacedDeployment({ namespace, name })), kind };
      return { ...(await this.apps.readNamespacedStatefulSet({ namespace, name })), kind };
    });
  }

  async listWorkloads(kind: WorkloadKind): Promise<Workload[]> {
    return call(`list ${kind}s`, async () => {
      if (kind === 'Deployment') return (await this.apps.listDeploymentForAllNamespaces()).items.map((d) => ({ ...d, kind }));
      return (await this.apps.listStatefulSetForAllNamespaces()).items.map((s) => ({ ...s, kind }));
    });
  }

  async listPods(namespace: string, labelSelector?: string, fieldSelector?: string): Promise<V1Pod[]> {
    const selectors = [labelSelector, fieldSelector].filter(Boolean).join('; ');
    return call(
      `list pods in ${namespace}${selectors ? ` (${selectors})` : ''}`,
      async () => (await this.core.listNamespacedPod({ namespace, ...(labelSelector ? { labelSelector } : {}), ...(fieldSelector ? { fieldSelector } : {}) })).items,
    );
  }

  async getPod(namespace: string, name: string): Promise<V1Pod | undefined> {
    return orUndefined(`get pod ${namespace}/${name}`, () => this.core.readNamespacedPod({ namespace, name }));
  }

  async patchPod(namespace: string, name: string, patch: object, strategy: 'strategic' | 'merge' | 'json' = 'strategic'): Promise<V1Pod> {
    const contentType = strategy === 'strategic' ? PatchStrategy.StrategicMergePatch : strategy === 'merge' ? PatchStrategy.MergePatch : PatchStrategy.JsonPatch;
    return call(`patch pod ${namespace}/${name}`, () => this.core.patchNamespacedPod({ namespace, name, body: patch }, setHeaderOptions('Content-Type', contentType)));
  }

  /** Whether the node's Ready condition is True; false when the node is gone. */
  async nodeReady(name: string): Promise<boolean> {
    const node = await orUndefined(`get node ${name}`, () => this.core.readNode({ name }));
    return node?.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
  }

  async getPingSource(namespace: string, name: string): Promise<PingSource | undefined> {
    return orUndefined(`get pingsource ${namespace}/${name}`, async () => (await this.custom.getNamespacedCustomObject({ ...PING, namespace, name })) as PingSource);
  }

  async listPingSources(labelSelector: string): Promise<PingSource[]> {
    return call('list pingsources', async () => {
      const list = (await this.custom.listCustomObjectForAllNamespaces({ ...PING, labelSelector })) as { items: PingSource[] };
      return list.items;
    });
  }

  async createPingSource(source: PingSource): Promise<PingSource> {
    const namespace = source.metadata.namespace ?? 'default';
    return call(`create pingsource ${namespace}/${source.metadata.name}`, async () => (await this.custom.createNamespacedCustomObject({ ...PING, namespace, body: source })) as PingSource);
  }

  /** Replaces with optimistic concurrency: a stale resourceVersion gives ConflictError. */
  async replacePingSource(source: PingSource): Promise<PingSource> {
    const namespace = source.metadata.namespace ?? 'default';
    const name = source.metadata.name ?? '';
    return call(`update pingsource ${namespace}/${name}`, async () => (await this.custom.replaceNamespacedCustomObject({ ...PING, namespace, name, body: source })) as PingSource);
  }

  /** Deletes; false when it did not exist. */
  async deletePingSource(namespace: string, name: string): Promise<boolean> {
    const done = await orUndefined(`delete pingsource ${namespace}/${name}`, async () => {
      await this.custom.deleteNamespacedCustomObject({ ...PING, namespace, name });
      return true;
    });
    return done ?? false;
  }

  async createEvent(event: CoreV1Event): Promise<void> {
    const namespace = event.metadata.namespace ?? event.involvedObject.namespace ?? 'default';
    await call(`create event in ${namespace}`, () => this.core.createNamespacedEvent({ namespace, body: event }));
  }

  /**
   * POST /api/v1/nodes/{node}/proxy/checkpoint/{ns}/{pod}/{container}?timeout=N.
   * Issued directly with the KubeConfig's credentials: client-node's
   * connectPostNodeProxyWithPath percent-encodes the slashes of the path and
   * has no timeout parameter. A connection that fails, times out or breaks
   * off before the whole answer throws TransientError (whether the kubelet
   * checkpointed is then unknown); every HTTP answer is returned for the
   * caller to classify.
   */
  async checkpoint(node: string, namespace: string, pod: string, container: string, timeoutSeconds: number): Promise<CheckpointOutcome> {
    const cluster = this.kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    const path = `/api/v1/nodes/${encodeURIComponent(node)}/proxy/checkpoint/${[namespace, pod, container].map(encodeURIComponent).join('/')}?timeout=${timeoutSeconds}`;
    const url = new URL(`${cluster.server.replace(/\/+$/, '')}${path}`);
    const opts: https.RequestOptions = { method: 'POST', headers: { Accept: 'application/json' } };
    await this.kubeConfig.applyToHTTPSOptions(opts);
    opts.agent = this.agents.reuse(opts.agent);
    const transport = url.protocol === 'https:' ? https : http;
    const timeoutMs = timeoutSeconds * 1000 + (this.options.checkpointMarginMs ?? 10_000);
    const what = `checkpoint ${namespace}/${pod}/${container} on node ${node}`;
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = transport.request(url, { ...opts, timeout: timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', (err) => reject(requestFailure(`${what}: the answer broke off`, err)));
      });
      req.on('timeout', () => req.destroy(timeoutError(`no answer within ${timeoutMs} ms`)));
      req.on('error', (err) => reject(requestFailure(what, err)));
      req.end();
    });
    if (status === 200) {
      const items = parseItems(body);
      if (!items?.[0]) throw new KubeApiError(`${what}: the kubelet answered 200 without an archive path: ${body.slice(0, 200)}`, 200);
      return { ok: true, archivePath: items[0] };
    }
    return { ok: false, status, body };
  }
}

function parseItems(body: string): string[] | undefined {
  try {
    const parsed = JSON.parse(body) as { items?: unknown };
    return Array.isArray(parsed.items) && parsed.items.every((i) => typeof i === 'string') ? (parsed.items as string[]) : undefined;
  } catch {
    return undefined;
  }
}

/** The `message` of a Kubernetes Status body, or the body itself. */
async function call<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw classify(what, err);
  }
}

async function orUndefined<T>(what: string, fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ApiException && err.code === 404) return undefined;
    throw classify(what, err);
  }
}

function classify(what: string, err: unknown): Error {
  if (err instanceof ApiException) {
    const message = `${what}: HTTP ${err.code}: ${statusMessage(err.body)}`;
    if (isTransientStatus(err.code)) return new TransientError(message, { cause: err });
    if (err.code === 409) return new ConflictError(message, { cause: err });
    return new KubeApiError(message, err.code);
  }
  // No HTTP answer, or none that could be read.
  return requestFailure(what, err);
}
