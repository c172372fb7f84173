// Workload objects, and a wait for their pods, for tests and benchmarks that run
// against the simulated cluster.
import type { V1Deployment, V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import type { Kubernetes } from '../functions/core/kubernetes/kubernetes.js';

interface WorkloadSpec {
  name: string;
  namespace?: string;
  replicas?: number;
  containers?: string[];
  annotations?: Record<string, string>;
  templateAnnotations?: Record<string, string>;
  image?: string;
}

function template(spec: WorkloadSpec) {
  return {
    metadata: { labels: { app: spec.name }, ...(spec.templateAnnotations ? { annotations: spec.templateAnnotations } : {}) },
    spec: { containers: (spec.containers ?? ['app']).map((c) => ({ name: c, image: spec.image ?? `quay.io/kcr/${c}:1` })) },
  };
}

export function deployment(spec: WorkloadSpec): V1Deployment {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: spec.name, namespace: spec.namespace ?? 'default', ...(spec.annotations ? { annotations: spec.annotations } : {}) },
    spec: { replicas: spec.replicas ?? 1, selector: { matchLabels: { app: spec.name } }, template: template(spec) },
  };
}

export function statefulSet(spec: WorkloadSpec): V1StatefulSet {
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name: spec.name, namespace: spec.namespace ?? 'default', ...(spec.annotations ? { annotations: spec.annotations } : {}) },
    spec: { replicas: spec.replicas ?? 1, serviceName: spec.name, selector: { matchLabels: { app: spec.name } }, template: template(spec) },
  };
}

/** Waits until `count` pods matching the selector run with every container started. */
export async function runningPods(kube: Kubernetes, namespace: string, selector: string, count: number, timeoutMs = 10_000): Promise<V1Pod[]> {
  const deadline = Date.now() + timeoutMs;
  let last: V1Pod[] = [];
  while (Date.now() < deadline) {
    last = (await kube.listPods(namespace, selector)).filter(
      (p) => p.status?.phase === 'Running' && !p.metadata?.deletionTimestamp && (p.status.containerStatuses ?? []).every((c) => c.state?.running),
    );
    if (last.length === count) return last;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`expected ${count} running pods for ${selector} in ${namespace}, have ${last.length}: ${last.map((p) => p.metadata?.name).join(', ')}`);
}

/** A `dev.knative.apiserver.resource.*` event as the ApiServerSource sends it in Resource mode. */
export function apiServerEvent(
  verb: 'add' | 'update' | 'delete',
  object: { apiVersion?: string; kind?: string; metadata?: { name?: string; namespace?: string } },
  id = `${verb}-${Math.random().toString(16).slice(2)}`,
) {
  return {
    headers: { 'content-type': 'application/cloudevents+json' },
    body: JSON.stringify({
      specversion: '1.0',
      id,
      source: 'https://10.96.0.1:443',
      type: `dev.knative.apiserver.resource.${verb}`,
      subject: `/apis/${object.apiVersion}/namespaces/${object.metadata?.namespace}/${(object.kind ?? '').toLowerCase()}s/${object.metadata?.name}`,
      datacontenttype: 'application/json',
      kind: object.kind,
      name: object.metadata?.name,
      namespace: object.metadata?.namespace,
      data: object,
    }),
  };
}
