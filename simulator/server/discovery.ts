// Discovery: the /version, /api, /apis, /api/v1, /apis/<group>[/<version>] documents
// and the skeletal OpenAPI v3 that kubectl and the client libraries read before calling.

import type { ResourceRegistry, ResourceType } from '../resources.js';
import { VERBS } from '../resources.js';

export interface ServerVersion {
  major: string;
  minor: string;
  gitVersion: string;
}

/** The /version document. */
export function versionInfo(version: ServerVersion): Record<string, unknown> {
  return {
    ...version,
    gitCommit: '0000000000000000000000000000000000000000',
    gitTreeState: 'clean',
    buildDate: '2024-08-13T07:28:49Z',
    goVersion: 'go1.22.5',
    compiler: 'gc',
    platform: 'linux/amd64',
  };
}

/** The discovery document at `path`, or undefined when the path is not a discovery path. */
export function discovery(reg: ResourceRegistry, url: string, path: string): unknown {
  const p = path.replace(/\/+$/, '') || '/';
  const serverAddress = url.replace(/^https?:\/\//, '');
  if (p === '/api') {
    return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }] };
  }
  if (p === '/apis') {
    return {
      kind: 'APIGroupList',
      apiVersion: 'v1',
      groups: reg.groups().map((g) => ({
        name: g.group,
        versions: g.versions.map((v) => ({ groupVersion: `${g.group}/${v}`, version: v })),
        preferredVersion: { groupVersion: `${g.group}/${g.versions[0]}`, version: g.versions[0] },
      })),
    };
  }
  let m = /^\/apis\/([^/]+)$/.exec(p);
  if (m) {
    const g = reg.groups().find((x) => x.group === m![1]);
    if (!g) return undefined;
    return {
      kind: 'APIGroup',
      apiVersion: 'v1',
      name: g.group,
      versions: g.versions.map((v) => ({ groupVersion: `${g.group}/${v}`, version: v })),
      preferredVersion: { groupVersion: `${g.group}/${g.versions[0]}`, version: g.versions[0] },
    };
  }
  let group: string | undefined;
  let version: string | undefined;
  if (p === '/api/v1') {
    group = '';
    version = 'v1';
  } else if ((m = /^\/apis\/([^/]+)\/([^/]+)$/.exec(p))) {
    group = m[1]!;
    version = m[2]!;
  }
  if (group === undefined || version === undefined) return undefined;
  const types = reg.all().filter((t) => t.group === group && t.version === version);
  if (types.length === 0) return undefined;
  const resources: Record<string, unknown>[] = [];
  for (const t of types) {
    const r: Record<string, unknown> = {
      name: t.plural,
      singularName: t.singular,
      namespaced: t.namespaced,
      kind: t.kind,
      verbs: VERBS,
    };
    if (t.shortNames) r.shortNames = t.shortNames;
    if (t.categories) r.categories = t.categories;
    resources.push(r);
    for (const sub of t.subresources) {
      const subKinds: Record<string, { kind: string; verbs: string[]; group?: string; version?: string }> = {
        status: { kind: t.kind, verbs: ['get', 'patch', 'update'] },
        scale: { kind: 'Scale', verbs: ['get', 'patch', 'update'], group: 'autoscaling', version: 'v1' },
        log: { kind: 'Pod', verbs: ['get'] },
        eviction: { kind: 'Eviction', verbs: ['create'], group: 'policy', version: 'v1' },
        binding: { kind: 'Binding', verbs: ['create'] },
        proxy: { kind: 'NodeProxyOptions', verbs: ['create', 'delete', 'get', 'patch', 'update'] },
        finalize: { kind: 'Namespace', verbs: ['update'] },
      };
      const s = subKinds[sub];
      if (!s) continue;
      const sr: Record<string, unknown> = { name: `${t.plural}/${sub}`, singularName: '', namespaced: t.namespaced, kind: s.kind, verbs: s.verbs };
      if (s.group) sr.group = s.group;
      if (s.version) sr.version = s.version;
      resources.push(sr);
    }
  }
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: group ? `${group}/${version}` : version, resources };
}

/**
/**
 * A skeletal OpenAPI v3: only PATCH operations tagged with their GVK and the
 * `fieldValidation` parameter. kubectl reads it to learn that the server validates fields
 * itself (so it skips client-side schema validation); with no requestBody listed it builds
 * strategic merge patches from its compiled-in types, and merge patches for custom resources.
 * /openapi/v2 stays 404, as kubectl tolerates.
 */
export function openapi(reg: ResourceRegistry, gitVersion: string, path: string): unknown {
  const p = path.replace(/\/+$/, '');
  const gvs = new Map<string, ResourceType[]>();
  for (const t of reg.all()) {
    const gv = t.group ? `apis/${t.group}/${t.version}` : `api/${t.version}`;
    gvs.set(gv, [...(gvs.get(gv) ?? []), t]);
  }
  if (p === '/openapi/v3') {
    return { paths: Object.fromEntries([...gvs.keys()].map((gv) => [gv, { serverRelativeURL: `/openapi/v3/${gv}` }])) };
  }
  const m = /^\/openapi\/v3\/(.+)$/.exec(p);
  const types = m ? gvs.get(m[1]!) : undefined;
  if (!m || !types) return undefined;
  const paths: Record<string, unknown> = {};
  for (const t of types) {
    const prefix = t.group ? `/apis/${t.group}/${t.version}` : `/api/${t.version}`;
    const item = t.namespaced ? `${prefix}/namespaces/{namespace}/${t.plural}/{name}` : `${prefix}/${t.plural}/{name}`;
    paths[item] = {
      patch: {
        operationId: `patch${t.kind}`,
        'x-kubernetes-action': 'patch',
        'x-kubernetes-group-version-kind': { group: t.group, version: t.version, kind: t.kind },
        parameters: [
          { name: 'dryRun', in: 'query', schema: { type: 'string', uniqueItems: true } },
          { name: 'fieldManager', in: 'query', schema: { type: 'string', uniqueItems: true } },
          { name: 'fieldValidation', in: 'query', schema: { type: 'string', uniqueItems: true } },
        ],
        responses: { '200': { description: 'OK' } },
      },
    };
  }
  return { openapi: '3.0.0', info: { title: 'Kubernetes', version: gitVersion }, paths, components: { schemas: {} } };
}
