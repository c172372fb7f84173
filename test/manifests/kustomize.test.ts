// `kubectl kustomize manifests/` renders the whole install, and what it renders
// hangs together: every reference resolves, every env var is one kcr reads.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ENV } from '../../functions/core/runtime/config.js';
import { optionalBinary } from '../support/binaries.js';
import { FUNCTIONS, loadRepoDocs, named, ofKind, parseDocs, REPO, validateDoc, type KubeDoc, type LoadedDoc } from './support.js';

const kubectl = optionalBinary('kubectl', 'kubectl');

// build-image's registry settings: not in the ENV catalog yet (the function's
// author names them); remove from here once functions/core/runtime/config.ts has them.
interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string }; configMapKeyRef?: { name: string; key: string } };
}
interface Container {
  name: string;
  env?: EnvVar[];
  volumeMounts?: { name: string }[];
}
interface PodSpec {
  serviceAccountName?: string;
  containers: Container[];
  volumes?: { name: string; secret?: { secretName: string }; configMap?: { name: string } }[];
}
interface Ref {
  apiVersion?: string;
  kind: string;
  name: string;
  namespace?: string;
}

const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding']);

function podSpecOf(doc: KubeDoc): PodSpec {
  return (doc.spec as { template: { spec: PodSpec } }).template.spec;
}

describe.skipIf(!kubectl)('kubectl kustomize manifests/', () => {
  let rendered: LoadedDoc[];
  let objects: KubeDoc[];

  beforeAll(() => {
    const text = execFileSync(kubectl as string, ['kustomize', join(REPO, 'manifests')], { encoding: 'utf8' });
    rendered = parseDocs(text, 'kubectl kustomize manifests/');
    objects = rendered.map((d) => d.doc);
  });

  const has = (apiVersion: string, kind: string, name: string) => named(rendered, apiVersion, kind, name);

  it('renders every function Service, both ApiServerSources, the Broker, the Triggers and the NetworkPolicies', () => {
    for (const f of FUNCTIONS) {
      has('serving.knative.dev/v1', 'Service', f);
      has('eventing.knative.dev/v1', 'Trigger', f);
    }
    has('sources.knative.dev/v1', 'ApiServerSource', 'kcr-workloads');
    has('sources.knative.dev/v1', 'ApiServerSource', 'kcr-pods');
    has('eventing.knative.dev/v1', 'Broker', 'kcr');
    has('sources.knative.dev/v1', 'SinkBinding', 'kcr-functions');
    has('sources.knative.dev/v1', 'PingSource', 'kcr-resync');
    has('apps/v1', 'DaemonSet', 'node-agent');
    has('apps/v1', 'StatefulSet', 'minio');
    for (const np of ['kcr-default-deny-ingress', 'kcr-functions', 'kcr-node-agent', 'kcr-minio']) has('networking.k8s.io/v1', 'NetworkPolicy', np);
    expect(has('v1', 'Secret', 'kcr-registry').type).toBe('kubernetes.io/dockerconfigjson');
  });

  it('includes every document of eventing/, sources/ and manifests/', () => {
    const key = (d: KubeDoc) => `${d.apiVersion} ${d.kind} ${d.metadata.name}`;
    const renderedKeys = new Set(objects.map(key));
    expect(
      loadRepoDocs()
        .map((d) => key(d.doc))
        .filter((k) => !renderedKeys.has(k)),
    ).toEqual([]);
  });

  it('renders only schema-valid objects', () => {
    for (const d of rendered) expect(() => validateDoc(d)).not.toThrow();
  });

  it('puts every namespaced object in kcr-system', () => {
    const misplaced = objects.filter((o) => !CLUSTER_SCOPED.has(o.kind) && o.metadata.namespace !== 'kcr-system');
    expect(misplaced.map((o) => `${o.kind} ${o.metadata.name}`)).toEqual([]);
  });

  it('resolves every Secret, ConfigMap key and ServiceAccount a pod uses', () => {
    const workloads = [...ofKind(rendered, 'serving.knative.dev/v1', 'Service'), ...ofKind(rendered, 'apps/v1', 'DaemonSet'), ...ofKind(rendered, 'apps/v1', 'StatefulSet')];
    expect(workloads.length).toBeGreaterThan(FUNCTIONS.length);
    const keysOf = (kind: 'Secret' | 'ConfigMap', name: string): string[] => Object.keys((has('v1', kind, name) as { data?: object }).data ?? {});
    for (const w of workloads) {
      const spec = podSpecOf(w);
      if (spec.serviceAccountName) has('v1', 'ServiceAccount', spec.serviceAccountName);
      for (const v of spec.volumes ?? []) {
        if (v.secret) has('v1', 'Secret', v.secret.secretName);
        if (v.configMap) has('v1', 'ConfigMap', v.configMap.name);
      }
      const claims = ((w.spec as { volumeClaimTemplates?: { metadata: { name: string } }[] }).volumeClaimTemplates ?? []).map((t) => t.metadata.name);
      const volumeNames = [...(spec.volumes ?? []).map((v) => v.name), ...claims];
      for (const c of spec.containers) {
        for (const m of c.volumeMounts ?? []) expect(volumeNames, `${w.metadata.name}/${c.name}`).toContain(m.name);
        for (const e of c.env ?? []) {
          const s = e.valueFrom?.secretKeyRef;
          if (s) expect(keysOf('Secret', s.name), `${w.metadata.name} ${e.name}`).toContain(s.key);
          const cm = e.valueFrom?.configMapKeyRef;
          if (cm) expect(keysOf('ConfigMap', cm.name), `${w.metadata.name} ${e.name}`).toContain(cm.key);
        }
      }
    }
  });

  it('points every subscriber, sink and dead-letter sink at a rendered object', () => {
    const refs: Ref[] = [];
    for (const t of ofKind(rendered, 'eventing.knative.dev/v1', 'Trigger')) {
      const spec = t.spec as { subscriber: { ref: Ref }; delivery?: { deadLetterSink?: { ref: Ref } } };
      refs.push(spec.subscriber.ref);
      if (spec.delivery?.deadLetterSink) refs.push(spec.delivery.deadLetterSink.ref);
    }
    refs.push((has('eventing.knative.dev/v1', 'Broker', 'kcr').spec as { delivery: { deadLetterSink: { ref: Ref } } }).delivery.deadLetterSink.ref);
    for (const kind of ['ApiServerSource', 'PingSource', 'SinkBinding']) {
      for (const s of ofKind(rendered, 'sources.knative.dev/v1', kind)) refs.push((s.spec as { sink: { ref: Ref } }).sink.ref);
    }
    for (const r of refs) {
      const target = objects.find((o) => o.apiVersion === r.apiVersion && o.kind === r.kind && o.metadata.name === r.name && o.metadata.namespace === (r.namespace ?? 'kcr-system'));
      expect(target, `${r.kind} ${r.name}`).toBeDefined();
    }
  });

  it('binds K_SINK into every function Service, and nowhere by hand', () => {
    const binding = has('sources.knative.dev/v1', 'SinkBinding', 'kcr-functions');
    const selector = (binding.spec as { subject: { kind: string; selector: { matchLabels: Record<string, string> } } }).subject;
    expect(selector.kind).toBe('Service');
    for (const f of FUNCTIONS) {
      const svc = has('serving.knative.dev/v1', 'Service', f);
      expect(svc.metadata.labels, f).toMatchObject(selector.selector.matchLabels);
      expect(
        podSpecOf(svc)
          .containers.flatMap((c) => c.env ?? [])
          .map((e) => e.name),
        f,
      ).not.toContain('K_SINK');
    }
    expect(has('v1', 'Namespace', 'kcr-system').metadata.labels?.['bindings.knative.dev/include']).toBe('true');
  });

  it('sets only environment variables kcr reads (functions/core/runtime/config.ts ENV), or Node itself', () => {
    // NODE_OPTIONS sizes V8's young generation for the streaming functions.
    const readByNode = new Set(['NODE_OPTIONS']);
    const unknown: string[] = [];
    for (const w of [...ofKind(rendered, 'serving.knative.dev/v1', 'Service'), ...ofKind(rendered, 'apps/v1', 'DaemonSet')]) {
      const env = podSpecOf(w).containers.flatMap((c) => c.env ?? []);
      // Kubernetes expands $(NAME) in another variable's value (KCR_HOST_IP in KCR_KUBELET_URL).
      const expanded = new Set(env.flatMap((e) => [...(e.value ?? '').matchAll(/\$\(([A-Z_][A-Z0-9_]*)\)/g)].map((m) => m[1])));
      for (const e of env) {
        if (!Object.hasOwn(ENV, e.name) && !readByNode.has(e.name) && !expanded.has(e.name)) unknown.push(`${w.metadata.name}: ${e.name}`);
      }
    }
    expect(unknown).toEqual([]);
  });

  it('runs each function Service as the function it is named after', () => {
    for (const f of FUNCTIONS) {
      const env = podSpecOf(has('serving.knative.dev/v1', 'Service', f)).containers[0]?.env ?? [];
      expect(env.find((e) => e.name === 'KCR_FUNCTION')?.value, f).toBe(f);
    }
  });
});
