// Least privilege: each identity is granted exactly the verbs listed here, no more;
// and no kcr identity holds nodes/proxy unless the documented apiserver-proxy option is chosen.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isMap, isSeq, parseAllDocuments } from 'yaml';
import { optionalBinary } from '../support/binaries.js';
import { FUNCTIONS, loadRepoDocs, named, ofKind, parseDocs, REPO, type KubeDoc } from './support.js';

const docs = loadRepoDocs();
const RBAC = 'rbac.authorization.k8s.io/v1';

interface Rule {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}
interface Subject {
  kind: string;
  name: string;
  namespace?: string;
}
interface Binding extends KubeDoc {
  roleRef: { kind: string; name: string };
  subjects?: Subject[];
}

/**
 * `group/resource: verb` for every permission bound to the subject (core group
 * shown as `core`); a RoleBinding's grants are limited to its namespace, shown
 * as `group/resource in namespace: verb`.
 */
function permissions(subject: Subject): string[] {
  const bindings = [...ofKind(docs, RBAC, 'ClusterRoleBinding'), ...ofKind(docs, RBAC, 'RoleBinding')] as Binding[];
  const out = new Set<string>();
  for (const b of bindings) {
    const bound = (b.subjects ?? []).some((s) => s.kind === subject.kind && s.name === subject.name && (s.namespace ?? 'kcr-system') === (subject.namespace ?? 'kcr-system'));
    if (!bound) continue;
    const scope = b.kind === 'RoleBinding' ? ` in ${b.metadata.namespace ?? 'default'}` : '';
    const role = named(docs, RBAC, b.roleRef.kind, b.roleRef.name);
    for (const rule of (role.rules as Rule[] | undefined) ?? []) {
      for (const group of rule.apiGroups ?? []) {
        for (const resource of rule.resources ?? []) {
          for (const verb of rule.verbs) out.add(`${group || 'core'}/${resource}${scope}: ${verb}`);
        }
      }
    }
  }
  return [...out].sort();
}

/** The comment written just above each rule of a role, by `group/resource`. */
function ruleComments(kind: string, name: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const file of ['manifests/functions', 'manifests', 'manifests/options/apiserver-proxy', 'sources'].flatMap((d) => yamlFilesIn(join(REPO, d)))) {
    for (const d of parseAllDocuments(readFileSync(file, 'utf8'))) {
      if (d.get('kind') !== kind || d.getIn(['metadata', 'name']) !== name) continue;
      const rules = d.get('rules', true);
      if (!isSeq(rules)) continue;
      rules.items.forEach((item, i) => {
        const comment = (isMap(item) ? item.commentBefore : undefined) ?? (i === 0 ? rules.commentBefore : undefined) ?? '';
        const rule = (item as { toJSON(): Rule }).toJSON();
        for (const group of rule.apiGroups ?? []) for (const resource of rule.resources ?? []) out.set(`${group || 'core'}/${resource}`, comment);
      });
    }
  }
  return out;
}

function yamlFilesIn(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .map((f) => join(dir, f));
}

function grants(table: Record<string, string[]>): string[] {
  return Object.entries(table)
    .flatMap(([resource, verbs]) => verbs.map((v) => `${resource}: ${v}`))
    .sort();
}

const sa = (name: string): Subject => ({ kind: 'ServiceAccount', name, namespace: 'kcr-system' });

const EXPECTED: Record<string, { subject: Subject; grants: Record<string, string[]> }> = {
  'schedule-sync': {
    subject: sa('schedule-sync'),
    grants: {
      'apps/deployments': ['get', 'list'],
      'apps/statefulsets': ['get', 'list'],
      'sources.knative.dev/pingsources': ['create', 'update', 'patch', 'delete', 'get', 'list'],
      'core/events': ['create'],
    },
  },
  'request-checkpoint': {
    subject: sa('request-checkpoint'),
    grants: {
      'core/pods': ['get', 'list'],
      'apps/deployments': ['get'],
      'apps/statefulsets': ['get'],
      'apps/replicasets': ['get'],
      'core/events': ['create'],
    },
  },
  'restore-pod': {
    subject: sa('restore-pod'),
    grants: {
      'core/pods': ['get', 'list', 'watch', 'patch'],
      'apps/replicasets': ['get'],
      'apps/deployments': ['get'],
      'apps/statefulsets': ['get'],
      'core/events': ['create'],
      'core/nodes': ['get'],
    },
  },
  // list the node-agent pods of kcr-system; get the checkpointed pod, anywhere, to check its owner.
  'store-artifact': { subject: sa('store-artifact'), grants: { 'core/pods in kcr-system': ['list'], 'core/pods': ['get'] } },
  // list pods, anywhere: retention keeps the checkpoint images pods use.
  'build-image': { subject: sa('build-image'), grants: { 'core/pods': ['list'], 'apps/deployments': ['get'], 'apps/statefulsets': ['get'] } },
  'event-archive': { subject: sa('event-archive'), grants: {} },
  // its own node's kubelet, directly: the checkpoint API and nothing else of the kubelet.
  'node-agent': { subject: sa('node-agent'), grants: { 'core/nodes/checkpoint': ['create'] } },
  'kcr-workloads ApiServerSource': {
    subject: sa('kcr-workloads-source'),
    grants: { 'apps/deployments': ['get', 'list', 'watch'], 'apps/statefulsets': ['get', 'list', 'watch'] },
  },
  'kcr-pods ApiServerSource': { subject: sa('kcr-pods-source'), grants: { 'core/pods': ['get', 'list', 'watch'] } },
};

describe('RBAC', () => {
  it.each(Object.entries(EXPECTED))('%s is granted exactly its verbs', (_who, { subject, grants: table }) => {
    expect(permissions(subject)).toEqual(grants(table));
  });

  it('uses no wildcards, resourceNames or non-resource URLs', () => {
    for (const role of [...ofKind(docs, RBAC, 'ClusterRole'), ...ofKind(docs, RBAC, 'Role')]) {
      for (const rule of (role.rules as Rule[] | undefined) ?? []) {
        expect(JSON.stringify(rule), role.metadata.name).not.toContain('*');
        expect(rule.nonResourceURLs, role.metadata.name).toBeUndefined();
      }
    }
  });

  it('binds every Role to someone in the table', () => {
    const bindings = [...ofKind(docs, RBAC, 'ClusterRoleBinding'), ...ofKind(docs, RBAC, 'RoleBinding')] as Binding[];
    const known = Object.values(EXPECTED).map((e) => `${e.subject.kind}/${e.subject.name}`);
    for (const b of bindings) for (const s of b.subjects ?? []) expect(known, b.metadata.name).toContain(`${s.kind}/${s.name}`);
  });

  it.each([
    ['kcr-restore-pod', 'core/pods', /patch/],
    ['kcr-node-agent', 'core/nodes/checkpoint', /directly.*nodes\/checkpoint.*not \/run, \/exec/s],
    ['kcr-request-checkpoint-proxy', 'core/nodes/proxy', /kubelet checkpoint API/],
    ['kcr-request-checkpoint', 'apps/deployments', /opts? in/],
    ['kcr-store-artifact-pods', 'core/pods', /owner/],
    ['kcr-build-image-pods', 'core/pods', /retention.*image in use/s],
    ['kcr-build-image-pods', 'apps/deployments', /checkpoint-retention/],
  ])('%s: the %s rule says why, in a comment above it', (role, resource, why) => {
    expect(ruleComments('ClusterRole', role).get(resource)).toMatch(why);
  });

  it.each(FUNCTIONS.map((f) => [f]))('%s runs as its own ServiceAccount', (name) => {
    const svc = named(docs, 'serving.knative.dev/v1', 'Service', name);
    expect((svc.spec as { template: { spec: { serviceAccountName?: string } } }).template.spec.serviceAccountName).toBe(name);
    named(docs, 'v1', 'ServiceAccount', name);
  });

  it.each(['event-archive'])('%s gets no API token at all', (name) => {
    expect(named(docs, 'v1', 'ServiceAccount', name).automountServiceAccountToken).toBe(false);
    const svc = named(docs, 'serving.knative.dev/v1', 'Service', name);
    expect((svc.spec as { template: { spec: { automountServiceAccountToken?: boolean } } }).template.spec.automountServiceAccountToken).toBe(false);
  });
});

/** `Kind/name` of every subject bound to a role whose rules reach nodes/proxy, wildcards included (rbac/v1 ResourceMatches). */
function nodesProxyHolders(all: KubeDoc[]): string[] {
  const roles = all.filter((d) => d.apiVersion === RBAC && (d.kind === 'ClusterRole' || d.kind === 'Role'));
  const reaches = (role: KubeDoc | undefined) =>
    ((role?.rules as Rule[] | undefined) ?? []).some(
      (r) => (r.apiGroups ?? []).some((g) => g === '' || g === '*') && (r.resources ?? []).some((res) => res === '*' || res === 'nodes/proxy' || res === '*/proxy'),
    );
  const out = new Set<string>();
  for (const b of all.filter((d) => d.apiVersion === RBAC && (d.kind === 'ClusterRoleBinding' || d.kind === 'RoleBinding')) as Binding[]) {
    const role = roles.find((r) => r.kind === b.roleRef.kind && r.metadata.name === b.roleRef.name && (r.kind === 'ClusterRole' || r.metadata.namespace === b.metadata.namespace));
    if (reaches(role)) for (const s of b.subjects ?? []) out.add(`${s.kind}/${s.name}`);
  }
  return [...out].sort();
}

const kubectl = optionalBinary('kubectl', 'kubectl');

/** `kubectl kustomize` of manifests/, or of an overlay of it with the given components. */
function render(components: string[] = []): KubeDoc[] {
  if (components.length === 0) return parseDocs(execFileSync(kubectl as string, ['kustomize', join(REPO, 'manifests')], { encoding: 'utf8' }), 'manifests').map((d) => d.doc);
  // kustomize takes only relative paths to other kustomizations.
  const overlay = mkdtempSync(join(tmpdir(), 'kcr-overlay-'));
  try {
    const rel = (p: string) => relative(overlay, join(REPO, p));
    writeFileSync(join(overlay, 'kustomization.yaml'), `resources: [${rel('manifests')}]\ncomponents: [${components.map(rel).join(', ')}]\n`);
    return parseDocs(execFileSync(kubectl as string, ['kustomize', overlay], { encoding: 'utf8' }), 'overlay').map((d) => d.doc);
  } finally {
    rmSync(overlay, { recursive: true, force: true });
  }
}

const checkpointVia = (all: KubeDoc[]) =>
  (
    all.find((d) => d.kind === 'Service' && d.apiVersion === 'serving.knative.dev/v1' && d.metadata.name === 'request-checkpoint')?.spec as {
      template: { spec: { containers: { env?: { name: string; value?: string }[] }[] } };
    }
  ).template.spec.containers[0]!.env?.find((e) => e.name === 'KCR_CHECKPOINT_VIA')?.value ?? 'node-agent';

describe.skipIf(!kubectl)('nodes/proxy in the rendered RBAC', () => {
  it('no kcr identity holds nodes/proxy in the default install, which checkpoints through the node-agent', () => {
    const all = render();
    expect(nodesProxyHolders(all)).toEqual([]);
    expect(checkpointVia(all)).toBe('node-agent');
    // The node-agent, which calls the kubelet, holds nodes/checkpoint; nothing else touches nodes.
    expect(all.some((d) => d.kind === 'ClusterRoleBinding' && d.metadata.name === 'kcr-node-agent')).toBe(true);
  });

  it('the documented apiserver-proxy option grants nodes/proxy to request-checkpoint alone, and switches it to that route', () => {
    const all = render(['manifests/options/apiserver-proxy']);
    expect(nodesProxyHolders(all)).toEqual(['ServiceAccount/request-checkpoint']);
    expect(checkpointVia(all)).toBe('apiserver-proxy');
  });
});
