// NetworkPolicies (manifests/network-policies.yaml), evaluated with Kubernetes'
// NetworkPolicy semantics against the pods the manifests create and the pods of
// the Knative data path: who may open a connection to which kcr pod, on which port.
//
// The peers' labels are upstream's, checked in the Knative sources:
//   knative/serving  config/core/deployments/activator.yaml       pods: app=activator (namespace knative-serving)
//   knative/serving  config/core/deployments/autoscaler.yaml      pods: app=autoscaler
//   knative/serving  pkg/networking/constants.go                  queue-proxy: 8012 (HTTP/1), 8013 (h2c), 9090 (autoscaling metrics)
//   knative/serving  pkg/autoscaler/metrics/stats_scraper.go      the autoscaler scrapes http://<pod IP>:9090/metrics
//   knative/eventing config/brokers/mt-channel-broker/deployments/broker-filter.yaml   pods: eventing.knative.dev/brokerRole=filter
//   knative/eventing config/brokers/mt-channel-broker/deployments/broker-ingress.yaml  pods: eventing.knative.dev/brokerRole=ingress
//   knative-extensions/net-kourier: the gateway runs in kourier-system (app=3scale-kourier-gateway)
// Knative Serving labels each revision pod serving.knative.dev/service=<Service name>.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { optionalBinary } from '../support/binaries.js';
import { FUNCTIONS, loadRepoDocs, named, ofKind, parseDocs, REPO, validateDoc, type KubeDoc } from './support.js';

const kubectl = optionalBinary('kubectl', 'kubectl');
const docs = loadRepoDocs();
const NS = 'kcr-system';

interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values?: string[] }[];
}
interface Peer {
  podSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
  ipBlock?: unknown;
}
interface PolicyPort {
  protocol?: string;
  port?: number | string;
  endPort?: number;
}
interface IngressRule {
  from?: Peer[];
  ports?: PolicyPort[];
}
interface PolicySpec {
  podSelector: LabelSelector;
  policyTypes?: string[];
  ingress?: IngressRule[];
  egress?: unknown[];
}
interface Pod {
  what: string;
  namespace: string;
  labels: Record<string, string>;
}

const policies = ofKind(docs, 'networking.k8s.io/v1', 'NetworkPolicy');
const specOf = (p: KubeDoc) => p.spec as PolicySpec;

function selects(selector: LabelSelector, labels: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const value = labels[e.key];
    const ok = e.operator === 'In' ? has && (e.values ?? []).includes(value ?? '') : e.operator === 'NotIn' ? !has || !(e.values ?? []).includes(value ?? '') : e.operator === 'Exists' ? has : !has;
    if (!ok) return false;
  }
  return true;
}

/** Namespaces carry kubernetes.io/metadata.name (Kubernetes ≥ 1.22), and nothing else kcr relies on. */
const namespaceLabels = (ns: string) => ({ 'kubernetes.io/metadata.name': ns });

/** The policies that isolate the pod for ingress. */
function selecting(pod: Pod): KubeDoc[] {
  return policies.filter((p) => {
    const spec = specOf(p);
    const types = spec.policyTypes ?? ['Ingress'];
    return (p.metadata.namespace ?? 'default') === pod.namespace && types.includes('Ingress') && selects(spec.podSelector, pod.labels);
  });
}

function peerMatches(peer: Peer, policyNamespace: string, src: Pod): boolean {
  if (peer.ipBlock) throw new Error('ipBlock peers are not evaluated here');
  if (peer.namespaceSelector) {
    if (!selects(peer.namespaceSelector, namespaceLabels(src.namespace))) return false;
  } else if (src.namespace !== policyNamespace) return false;
  return peer.podSelector ? selects(peer.podSelector, src.labels) : true;
}

function portMatches(ports: PolicyPort[] | undefined, port: number): boolean {
  if (!ports?.length) return true;
  return ports.some((p) => {
    if (typeof p.port === 'string') throw new Error(`named port ${p.port}: use numbers`);
    return (p.protocol ?? 'TCP') === 'TCP' && (p.port === undefined || p.port === port || (p.endPort !== undefined && port >= p.port && port <= p.endPort));
  });
}

/** Whether a TCP connection from src to dst:port is allowed. */
function allowed(src: Pod, dst: Pod, port: number): boolean {
  const isolating = selecting(dst);
  if (!isolating.length) return true;
  return isolating.some((p) =>
    (specOf(p).ingress ?? []).some((rule) => portMatches(rule.ports, port) && (!rule.from?.length || rule.from.some((peer) => peerMatches(peer, p.metadata.namespace ?? 'default', src)))),
  );
}

function templateLabels(doc: KubeDoc): Record<string, string> {
  return (doc.spec as { template: { metadata?: { labels?: Record<string, string> } } }).template.metadata?.labels ?? {};
}

/** A revision pod of a function, labelled as Knative Serving labels it. */
function functionPod(name: string): Pod {
  const svc = named(docs, 'serving.knative.dev/v1', 'Service', name);
  return {
    what: `${name} pod`,
    namespace: svc.metadata.namespace ?? 'default',
    labels: {
      ...templateLabels(svc),
      'serving.knative.dev/service': name,
      'serving.knative.dev/configuration': name,
      'serving.knative.dev/revision': `${name}-00001`,
    },
  };
}

function envNames(doc: KubeDoc): string[] {
  const spec = (doc.spec as { template: { spec: { containers: { env?: { name: string }[] }[] } } }).template.spec;
  return spec.containers.flatMap((c) => c.env ?? []).map((e) => e.name);
}

const fn = Object.fromEntries(FUNCTIONS.map((f) => [f, functionPod(f)])) as Record<(typeof FUNCTIONS)[number], Pod>;
const nodeAgent: Pod = { what: 'node-agent pod', namespace: NS, labels: templateLabels(named(docs, 'apps/v1', 'DaemonSet', 'node-agent')) };
const minio: Pod = { what: 'MinIO pod', namespace: NS, labels: { ...templateLabels(named(docs, 'apps/v1', 'StatefulSet', 'minio')), 'apps.kubernetes.io/pod-index': '0' } };

// The Knative data path.
const activator: Pod = { what: 'activator', namespace: 'knative-serving', labels: { app: 'activator', role: 'activator', 'app.kubernetes.io/name': 'activator' } };
const autoscaler: Pod = { what: 'autoscaler', namespace: 'knative-serving', labels: { app: 'autoscaler' } };
const gateway: Pod = { what: 'Kourier gateway', namespace: 'kourier-system', labels: { app: '3scale-kourier-gateway' } };
const brokerFilter: Pod = { what: 'broker filter', namespace: 'knative-eventing', labels: { 'eventing.knative.dev/brokerRole': 'filter' } };
// Everything else: may not connect anywhere.
const strangers: Pod[] = [
  { what: 'broker ingress (receives events, never calls a function)', namespace: 'knative-eventing', labels: { 'eventing.knative.dev/brokerRole': 'ingress' } },
  { what: 'Knative Serving controller', namespace: 'knative-serving', labels: { app: 'controller' } },
  { what: 'a pod in default', namespace: 'default', labels: { app: 'web' } },
  { what: 'a pod in default claiming to be store-artifact', namespace: 'default', labels: { 'serving.knative.dev/service': 'store-artifact', 'app.kubernetes.io/part-of': 'kcr' } },
  { what: 'a pod in kube-system', namespace: 'kube-system', labels: { 'k8s-app': 'kube-dns' } },
  { what: 'an ApiServerSource adapter in kcr-system', namespace: NS, labels: { 'eventing.knative.dev/source': 'apiserver-source-controller', 'eventing.knative.dev/sourceName': 'kcr-pods' } },
  { what: 'an unlabelled pod in kcr-system', namespace: NS, labels: {} },
];

const FUNCTION_PORTS = [8012, 8013];
const ALL_PORTS = [80, 443, 8012, 8013, 8022, 8080, 9000, 9090, 9091, 10380];

describe('NetworkPolicies', () => {
  it('deny all ingress in kcr-system by default', () => {
    const deny = policies.filter((p) => {
      const spec = specOf(p);
      return p.metadata.namespace === NS && Object.keys(spec.podSelector).length === 0 && spec.policyTypes?.includes('Ingress') && !spec.ingress?.length;
    });
    expect(deny.map((p) => p.metadata.name)).toEqual(['kcr-default-deny-ingress']);
    for (const pod of [...strangers.filter((s) => s.namespace === NS), nodeAgent, minio, fn['event-archive']])
      expect(
        selecting(pod).map((p) => p.metadata.name),
        pod.what,
      ).toContain('kcr-default-deny-ingress');
  });

  it('are all in kcr-system, ingress only, with numeric TCP ports and namespaces selected by kubernetes.io/metadata.name', () => {
    expect(policies.length).toBe(4);
    for (const p of policies) {
      const spec = specOf(p);
      expect(p.metadata.namespace, p.metadata.name).toBe(NS);
      expect(spec.policyTypes, p.metadata.name).toEqual(['Ingress']);
      expect(spec.egress, p.metadata.name).toBeUndefined();
      for (const rule of spec.ingress ?? []) {
        expect(rule.ports?.length, `${p.metadata.name}: every rule names its ports`).toBeGreaterThan(0);
        for (const port of rule.ports ?? []) expect(port, p.metadata.name).toEqual({ protocol: 'TCP', port: expect.any(Number) as number });
        for (const peer of rule.from ?? []) {
          expect(peer.ipBlock, p.metadata.name).toBeUndefined();
          if (peer.namespaceSelector) expect(Object.keys(peer.namespaceSelector), p.metadata.name).toEqual(['matchLabels']);
          if (peer.namespaceSelector) expect(Object.keys(peer.namespaceSelector.matchLabels ?? {}), p.metadata.name).toEqual(['kubernetes.io/metadata.name']);
        }
      }
    }
  });

  it.each(FUNCTIONS.map((f) => [f]))('%s: selected by the default deny and kcr-functions only', (f) => {
    expect(
      selecting(fn[f])
        .map((p) => p.metadata.name)
        .sort(),
    ).toEqual(['kcr-default-deny-ingress', 'kcr-functions']);
  });

  it.each(FUNCTIONS.map((f) => [f]))('%s: takes requests from the activator, the ingress gateway and the broker filter, on queue-proxy ports only', (f) => {
    for (const src of [activator, gateway, brokerFilter]) {
      for (const port of ALL_PORTS) expect(allowed(src, fn[f], port), `${src.what} → ${f}:${port}`).toBe(FUNCTION_PORTS.includes(port));
    }
  });

  it.each(FUNCTIONS.map((f) => [f]))('%s: the autoscaler scrapes queue-proxy metrics (9090) and nothing else', (f) => {
    for (const port of ALL_PORTS) expect(allowed(autoscaler, fn[f], port), `autoscaler → ${f}:${port}`).toBe(port === 9090);
  });

  it.each(FUNCTIONS.map((f) => [f]))('%s: nobody else gets in, other kcr pods included', (f) => {
    const others = [...strangers, nodeAgent, minio, ...FUNCTIONS.filter((g) => g !== f).map((g) => fn[g])];
    for (const src of others) for (const port of ALL_PORTS) expect(allowed(src, fn[f], port), `${src.what} → ${f}:${port}`).toBe(false);
  });

  it('node-agent: only store-artifact and request-checkpoint, only on 10380', () => {
    expect(
      selecting(nodeAgent)
        .map((p) => p.metadata.name)
        .sort(),
    ).toEqual(['kcr-default-deny-ingress', 'kcr-node-agent']);
    const port = Number(envOf(named(docs, 'apps/v1', 'DaemonSet', 'node-agent'), 'KCR_NODE_AGENT_PORT'));
    expect(port).toBe(10380);
    const callers = ['store-artifact', 'request-checkpoint'] as const;
    for (const caller of callers) for (const p of ALL_PORTS) expect(allowed(fn[caller], nodeAgent, p), `${caller} → node-agent:${p}`).toBe(p === port);
    const others = [...strangers, activator, autoscaler, gateway, brokerFilter, minio, ...FUNCTIONS.filter((g) => !(callers as readonly string[]).includes(g)).map((g) => fn[g])];
    for (const src of others) for (const p of ALL_PORTS) expect(allowed(src, nodeAgent, p), `${src.what} → node-agent:${p}`).toBe(false);
  });

  it('node-agent: the policy port is the port the agent listens on and store-artifact calls', () => {
    const listen = envOf(named(docs, 'apps/v1', 'DaemonSet', 'node-agent'), 'KCR_NODE_AGENT_PORT');
    const rule = specOf(named(docs, 'networking.k8s.io/v1', 'NetworkPolicy', 'kcr-node-agent')).ingress?.[0];
    expect(rule?.ports).toEqual([{ protocol: 'TCP', port: Number(listen) }]);
    // store-artifact and request-checkpoint find the agents with this selector: the policy protects exactly those pods.
    for (const caller of ['store-artifact', 'request-checkpoint']) {
      const selector = envOf(named(docs, 'serving.knative.dev/v1', 'Service', caller), 'KCR_NODE_AGENT_SELECTOR') ?? '';
      const labels = Object.fromEntries(selector.split(',').map((kv) => kv.split('=') as [string, string]));
      expect(specOf(named(docs, 'networking.k8s.io/v1', 'NetworkPolicy', 'kcr-node-agent')).podSelector, caller).toEqual({ matchLabels: labels });
    }
  });

  it('MinIO: only the functions that use S3, only on 9000', () => {
    expect(
      selecting(minio)
        .map((p) => p.metadata.name)
        .sort(),
    ).toEqual(['kcr-default-deny-ingress', 'kcr-minio']);
    const usesS3 = FUNCTIONS.filter((f) => envNames(named(docs, 'serving.knative.dev/v1', 'Service', f)).includes('KCR_S3_ENDPOINT'));
    expect(usesS3.sort()).toEqual(['build-image', 'event-archive', 'restore-pod', 'store-artifact']);
    for (const f of FUNCTIONS) {
      for (const p of ALL_PORTS) expect(allowed(fn[f], minio, p), `${f} → minio:${p}`).toBe(usesS3.includes(f) && p === 9000);
    }
    for (const src of [...strangers, activator, autoscaler, gateway, brokerFilter, nodeAgent]) for (const p of ALL_PORTS) expect(allowed(src, minio, p), `${src.what} → minio:${p}`).toBe(false);
  });

  it('MinIO: the policy port is the S3 port the Service and kcr-config point at', () => {
    const svc = named(docs, 'v1', 'Service', 'minio');
    const port = (svc.spec as { ports: { port: number }[] }).ports[0]?.port;
    expect(specOf(named(docs, 'networking.k8s.io/v1', 'NetworkPolicy', 'kcr-minio')).ingress?.[0]?.ports).toEqual([{ protocol: 'TCP', port }]);
    const endpoint = (named(docs, 'v1', 'ConfigMap', 'kcr-config').data as Record<string, string>)['s3-endpoint'] ?? '';
    expect(new URL(endpoint).port).toBe(String(port));
  });

  it('has one knob for the ingress gateway: a whole namespace, kourier-system by default', () => {
    const peers = (specOf(named(docs, 'networking.k8s.io/v1', 'NetworkPolicy', 'kcr-functions')).ingress ?? []).flatMap((r) => r.from ?? []);
    const wholeNamespaces = peers.filter((p) => p.namespaceSelector && !p.podSelector).map((p) => p.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name']);
    expect(wholeNamespaces).toEqual(['kourier-system']);
  });
});

function envOf(doc: KubeDoc, name: string): string | undefined {
  const spec = (doc.spec as { template: { spec: { containers: { env?: { name: string; value?: string }[] }[] } } }).template.spec;
  return spec.containers.flatMap((c) => c.env ?? []).find((e) => e.name === name)?.value;
}

// docs/deploy.md shows the overlay that switches the gateway namespace, and the
// policy to add for a metrics scraper: both must work as shown.
const deployDoc = readFileSync(join(REPO, 'docs', 'deploy.md'), 'utf8');
const yamlBlocks = [...deployDoc.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');

describe('docs/deploy.md, "Network and pod security"', () => {
  it('shows NetworkPolicies that validate against the schema', () => {
    const shown = yamlBlocks.filter((b) => /^kind: NetworkPolicy$/m.test(b)).flatMap((b) => parseDocs(b, 'docs/deploy.md'));
    expect(shown.length).toBeGreaterThan(0);
    for (const d of shown) {
      expect(() => validateDoc(d)).not.toThrow();
      expect(d.doc.metadata.namespace).toBe(NS);
    }
  });

  describe.skipIf(!kubectl)('the gateway overlay', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kcr-overlay-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('renders with kubectl kustomize and moves the gateway peer to istio-system', () => {
      const overlay = yamlBlocks.find((b) => b.includes('kind: NetworkPolicy, name: kcr-functions'));
      expect(overlay, 'an overlay patching kcr-functions').toBeDefined();
      writeFileSync(join(dir, 'kustomization.yaml'), (overlay ?? '').replace('- ../manifests', `- ${relative(dir, join(REPO, 'manifests'))}`));
      const text = execFileSync(kubectl as string, ['kustomize', dir], { encoding: 'utf8' });
      const np = parseDocs(text, 'overlay').find((d) => d.doc.kind === 'NetworkPolicy' && d.doc.metadata.name === 'kcr-functions')?.doc;
      const names = (specOf(np as KubeDoc).ingress ?? []).flatMap((r) => r.from ?? []).map((p) => p.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name']);
      expect(names).toContain('istio-system');
      expect(names).not.toContain('kourier-system');
      expect(names).toEqual(expect.arrayContaining(['knative-serving', 'knative-eventing']));
    });
  });
});
