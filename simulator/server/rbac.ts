// The simulated RBAC authorizer: decides a request's attributes from the Roles,
// ClusterRoles and their bindings in the store, as kube-apiserver's RBAC authorizer
// does (plugin/pkg/auth/authorizer/rbac/rbac.go, rbac/v1 helpers ResourceMatches /
// NonResourceURLMatches): subjects by User, Group or ServiceAccount, rules by verb,
// API group, resource (`*`, `res/sub`, `*/sub`), resourceNames and nonResourceURLs
// (`*` and a trailing `*` prefix). Members of system:masters are allowed everything,
// as the API server's superuser authorizer allows them.

import { isRecord, type KubeObject } from '../types.js';

export interface UserInfo {
  username: string;
  uid?: string;
  groups: string[];
}

/** authorizer.Attributes: a resource request or a non-resource one (`path`). */
export interface AccessAttributes {
  user: UserInfo;
  verb: string;
  /** Resource requests. */
  resource?: { group: string; resource: string; subresource?: string; namespace?: string; name?: string };
  /** Non-resource requests (/healthz, /version, ...). */
  path?: string;
}

export interface RbacObjects {
  clusterRoles: readonly KubeObject[];
  clusterRoleBindings: readonly KubeObject[];
  roles: readonly KubeObject[];
  roleBindings: readonly KubeObject[];
}

export interface Decision {
  allowed: boolean;
  reason: string;
}

interface Rule {
  verbs: string[];
  apiGroups: string[];
  resources: string[];
  resourceNames: string[];
  nonResourceURLs: string[];
}

const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : []);

function rulesOf(role: KubeObject | undefined): Rule[] {
  const rules = role?.rules;
  if (!Array.isArray(rules)) return [];
  return rules.filter(isRecord).map((r) => ({
    verbs: strings(r.verbs),
    apiGroups: strings(r.apiGroups),
    resources: strings(r.resources),
    resourceNames: strings(r.resourceNames),
    nonResourceURLs: strings(r.nonResourceURLs),
  }));
}

function subjectMatches(subject: unknown, user: UserInfo, bindingNamespace: string | undefined): boolean {
  if (!isRecord(subject)) return false;
  const name = subject.name;
  switch (subject.kind) {
    case 'User':
      return name === user.username;
    case 'Group':
      return typeof name === 'string' && user.groups.includes(name);
    case 'ServiceAccount': {
      // A RoleBinding's ServiceAccount subject without a namespace means the binding's own.
      const ns = typeof subject.namespace === 'string' && subject.namespace ? subject.namespace : bindingNamespace;
      return user.username === `system:serviceaccount:${ns}:${String(name)}`;
    }
    default:
      return false;
  }
}

function ruleAllows(rule: Rule, a: AccessAttributes): boolean {
  if (!rule.verbs.includes('*') && !rule.verbs.includes(a.verb)) return false;
  if (a.resource) {
    const r = a.resource;
    if (!rule.apiGroups.includes('*') && !rule.apiGroups.includes(r.group)) return false;
    const combined = r.subresource ? `${r.resource}/${r.subresource}` : r.resource;
    const resourceOk = rule.resources.some((rr) => rr === '*' || rr === combined || (r.subresource !== undefined && rr === `*/${r.subresource}`));
    if (!resourceOk) return false;
    return rule.resourceNames.length === 0 || (r.name !== undefined && rule.resourceNames.includes(r.name));
  }
  const path = a.path ?? '';
  return rule.nonResourceURLs.some((u) => u === '*' || u === path || (u.endsWith('*') && path.startsWith(u.slice(0, -1))));
}

function subjectLabel(user: UserInfo): string {
  const sa = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(user.username);
  return sa ? `ServiceAccount "${sa[2]}/${sa[1]}"` : `User "${user.username}"`;
}

/** Whether the RBAC objects allow the attributes, with the reason the real authorizer gives. */
export function rbacDecide(objects: RbacObjects, a: AccessAttributes): Decision {
  if (a.user.groups.includes('system:masters')) return { allowed: true, reason: '' };
  const clusterRole = (name: unknown) => objects.clusterRoles.find((r) => r.metadata.name === name);
  const role = (ns: string | undefined, name: unknown) => objects.roles.find((r) => r.metadata.namespace === ns && r.metadata.name === name);

  for (const b of objects.clusterRoleBindings) {
    const ref = isRecord(b.roleRef) ? b.roleRef : {};
    if (ref.kind !== 'ClusterRole') continue;
    if (!(Array.isArray(b.subjects) && b.subjects.some((s) => subjectMatches(s, a.user, undefined)))) continue;
    if (rulesOf(clusterRole(ref.name)).some((r) => ruleAllows(r, a))) {
      return { allowed: true, reason: `RBAC: allowed by ClusterRoleBinding "${b.metadata.name}" of ClusterRole "${String(ref.name)}" to ${subjectLabel(a.user)}` };
    }
  }
  const ns = a.resource?.namespace;
  if (ns) {
    for (const b of objects.roleBindings) {
      if (b.metadata.namespace !== ns) continue;
      if (!(Array.isArray(b.subjects) && b.subjects.some((s) => subjectMatches(s, a.user, ns)))) continue;
      const ref = isRecord(b.roleRef) ? b.roleRef : {};
      const target = ref.kind === 'ClusterRole' ? clusterRole(ref.name) : ref.kind === 'Role' ? role(ns, ref.name) : undefined;
      if (rulesOf(target).some((r) => ruleAllows(r, a))) {
        return { allowed: true, reason: `RBAC: allowed by RoleBinding "${b.metadata.name}/${ns}" of ${String(ref.kind)} "${String(ref.name)}" to ${subjectLabel(a.user)}` };
      }
    }
  }
  return { allowed: false, reason: '' };
}
