// The resource types the simulated API server knows: built-ins and generic custom resources.

export interface ResourceType {
  group: string;
  version: string;
  kind: string;
  plural: string;
  singular: string;
  namespaced: boolean;
  shortNames?: string[];
  categories?: string[];
  /** Subresources served (e.g. `status`, `scale`, `log`, `eviction`, `proxy`). */
  subresources: string[];
  /** True for the generic custom resources: strategic merge patch is not accepted for them. */
  custom: boolean;
}

export interface CustomResourceDefinitionInput {
  group: string;
  version: string;
  kind: string;
  plural: string;
  namespaced: boolean;
  singular?: string;
  shortNames?: string[];
  categories?: string[];
  /** Defaults to true: the CRD has a status subresource. */
  statusSubresource?: boolean;
}

export const VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

const builtins: ResourceType[] = [
  { group: '', version: 'v1', kind: 'Namespace', plural: 'namespaces', singular: 'namespace', namespaced: false, shortNames: ['ns'], subresources: ['status', 'finalize'], custom: false },
  { group: '', version: 'v1', kind: 'Node', plural: 'nodes', singular: 'node', namespaced: false, shortNames: ['no'], subresources: ['status', 'proxy'], custom: false },
  {
    group: '',
    version: 'v1',
    kind: 'Pod',
    plural: 'pods',
    singular: 'pod',
    namespaced: true,
    shortNames: ['po'],
    categories: ['all'],
    subresources: ['status', 'log', 'eviction', 'binding'],
    custom: false,
  },
  { group: '', version: 'v1', kind: 'Event', plural: 'events', singular: 'event', namespaced: true, shortNames: ['ev'], subresources: [], custom: false },
  { group: '', version: 'v1', kind: 'ConfigMap', plural: 'configmaps', singular: 'configmap', namespaced: true, shortNames: ['cm'], subresources: [], custom: false },
  { group: '', version: 'v1', kind: 'Secret', plural: 'secrets', singular: 'secret', namespaced: true, subresources: [], custom: false },
  { group: '', version: 'v1', kind: 'ServiceAccount', plural: 'serviceaccounts', singular: 'serviceaccount', namespaced: true, shortNames: ['sa'], subresources: ['token'], custom: false },
  { group: '', version: 'v1', kind: 'Service', plural: 'services', singular: 'service', namespaced: true, shortNames: ['svc'], categories: ['all'], subresources: ['status'], custom: false },
  {
    group: 'apps',
    version: 'v1',
    kind: 'Deployment',
    plural: 'deployments',
    singular: 'deployment',
    namespaced: true,
    shortNames: ['deploy'],
    categories: ['all'],
    subresources: ['status', 'scale'],
    custom: false,
  },
  {
    group: 'apps',
    version: 'v1',
    kind: 'ReplicaSet',
    plural: 'replicasets',
    singular: 'replicaset',
    namespaced: true,
    shortNames: ['rs'],
    categories: ['all'],
    subresources: ['status', 'scale'],
    custom: false,
  },
  {
    group: 'apps',
    version: 'v1',
    kind: 'StatefulSet',
    plural: 'statefulsets',
    singular: 'statefulset',
    namespaced: true,
    shortNames: ['sts'],
    categories: ['all'],
    subresources: ['status', 'scale'],
    custom: false,
  },
  { group: 'apps', version: 'v1', kind: 'ControllerRevision', plural: 'controllerrevisions', singular: 'controllerrevision', namespaced: true, subresources: [], custom: false },
  { group: 'rbac.authorization.k8s.io', version: 'v1', kind: 'ClusterRole', plural: 'clusterroles', singular: 'clusterrole', namespaced: false, subresources: [], custom: false },
  { group: 'rbac.authorization.k8s.io', version: 'v1', kind: 'ClusterRoleBinding', plural: 'clusterrolebindings', singular: 'clusterrolebinding', namespaced: false, subresources: [], custom: false },
  { group: 'rbac.authorization.k8s.io', version: 'v1', kind: 'Role', plural: 'roles', singular: 'role', namespaced: true, subresources: [], custom: false },
  { group: 'rbac.authorization.k8s.io', version: 'v1', kind: 'RoleBinding', plural: 'rolebindings', singular: 'rolebinding', namespaced: true, subresources: [], custom: false },
  // Create-only reviews (server/reviews.ts): nothing is stored.
  { group: 'authentication.k8s.io', version: 'v1', kind: 'TokenReview', plural: 'tokenreviews', singular: 'tokenreview', namespaced: false, subresources: [], custom: false },
  { group: 'authorization.k8s.io', version: 'v1', kind: 'SubjectAccessReview', plural: 'subjectaccessreviews', singular: 'subjectaccessreview', namespaced: false, subresources: [], custom: false },
  // policy/v1: what the eviction subresource consults (server/eviction.ts).
  {
    group: 'policy',
    version: 'v1',
    kind: 'PodDisruptionBudget',
    plural: 'poddisruptionbudgets',
    singular: 'poddisruptionbudget',
    namespaced: true,
    shortNames: ['pdb'],
    subresources: ['status'],
    custom: false,
  },
];

/** Knative custom resources registered by default, so the project's manifests can be applied. */
export const DEFAULT_CUSTOM_RESOURCES: CustomResourceDefinitionInput[] = [
  { group: 'sources.knative.dev', version: 'v1', kind: 'PingSource', plural: 'pingsources', namespaced: true, categories: ['all', 'knative', 'sources'] },
  { group: 'sources.knative.dev', version: 'v1', kind: 'ApiServerSource', plural: 'apiserversources', namespaced: true, categories: ['all', 'knative', 'sources'] },
  { group: 'sources.knative.dev', version: 'v1', kind: 'SinkBinding', plural: 'sinkbindings', namespaced: true, categories: ['all', 'knative', 'sources'] },
  { group: 'eventing.knative.dev', version: 'v1', kind: 'Broker', plural: 'brokers', namespaced: true, categories: ['all', 'knative', 'eventing'] },
  { group: 'eventing.knative.dev', version: 'v1', kind: 'Trigger', plural: 'triggers', namespaced: true, categories: ['all', 'knative', 'eventing'] },
  { group: 'serving.knative.dev', version: 'v1', kind: 'Service', plural: 'services', namespaced: true, shortNames: ['kservice', 'ksvc'], categories: ['all', 'knative', 'serving'] },
];

export class ResourceRegistry {
  private readonly types: ResourceType[] = [];

  constructor() {
    for (const t of builtins) this.types.push(t);
  }

  registerCustom(def: CustomResourceDefinitionInput): ResourceType {
    const existing = this.find(def.group, def.version, def.plural);
    if (existing) return existing;
    const t: ResourceType = {
      group: def.group,
      version: def.version,
      kind: def.kind,
      plural: def.plural,
      singular: def.singular ?? def.kind.toLowerCase(),
      namespaced: def.namespaced,
      shortNames: def.shortNames,
      categories: def.categories,
      subresources: def.statusSubresource === false ? [] : ['status'],
      custom: true,
    };
    this.types.push(t);
    return t;
  }

  find(group: string, version: string, plural: string): ResourceType | undefined {
    return this.types.find((t) => t.group === group && t.version === version && t.plural === plural);
  }

  byKind(apiVersion: string, kind: string): ResourceType | undefined {
    const [group, version] = splitApiVersion(apiVersion);
    return this.types.find((t) => t.group === group && t.version === version && t.kind === kind);
  }

  all(): readonly ResourceType[] {
    return this.types;
  }

  groups(): { group: string; versions: string[] }[] {
    const out = new Map<string, Set<string>>();
    for (const t of this.types) {
      if (!t.group) continue;
      const s = out.get(t.group) ?? new Set<string>();
      s.add(t.version);
      out.set(t.group, s);
    }
    return [...out.entries()].map(([group, versions]) => ({ group, versions: [...versions] }));
  }
}

export function splitApiVersion(apiVersion: string): [group: string, version: string] {
  const i = apiVersion.indexOf('/');
  return i < 0 ? ['', apiVersion] : [apiVersion.slice(0, i), apiVersion.slice(i + 1)];
}

export function apiVersionOf(t: Pick<ResourceType, 'group' | 'version'>): string {
  return t.group ? `${t.group}/${t.version}` : t.version;
}

/** Store key for a resource type: group + plural (one stored version per resource). */
export function resourceKey(t: Pick<ResourceType, 'group' | 'plural'>): string {
  return `${t.group}/${t.plural}`;
}
