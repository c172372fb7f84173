// The API server's authentication and authorization APIs, as a kubelet with
// --authentication-token-webhook / --authorization-mode=Webhook calls them, and the
// TokenRequest a kubelet makes for a projected ServiceAccount token:
//   POST /apis/authentication.k8s.io/v1/tokenreviews         spec.token → status.user
//   POST /apis/authorization.k8s.io/v1/subjectaccessreviews  spec.user/groups + attributes → status.allowed
//   POST /api/v1/namespaces/{ns}/serviceaccounts/{name}/token  spec.expirationSeconds → status.token
// (k8s.io/api authentication/v1 and authorization/v1 types; TokenRequest validation:
// expirationSeconds at least 600, kubernetes pkg/apis/authentication/validation.)

import type http from 'node:http';
import { ApiError, badRequest, methodNotAllowed } from '../errors.js';
import type { ResourceType } from '../resources.js';
import { isRecord, type KubeObject } from '../types.js';
import type { Serving } from './context.js';
import { rbacDecide, type AccessAttributes, type RbacObjects } from './rbac.js';
import type { RequestInfo } from './request-info.js';
import { parseJson, sendJson } from './responses.js';

const MIN_TOKEN_SECONDS = 600;
const DEFAULT_TOKEN_SECONDS = 3600;

/** Every Role, ClusterRole and binding in the store, for one decision. */
export function rbacObjects(ctx: Serving): RbacObjects {
  const reg = ctx.api.registry;
  const list = (plural: string): KubeObject[] => ctx.api.list(reg.find('rbac.authorization.k8s.io', 'v1', plural)!, undefined);
  return { clusterRoles: list('clusterroles'), clusterRoleBindings: list('clusterrolebindings'), roles: list('roles'), roleBindings: list('rolebindings') };
}

/** Serves a review or a TokenRequest; false when the request is none of them. */
export function serveReview(ctx: Serving, res: http.ServerResponse, t: ResourceType, info: RequestInfo, body: Buffer): boolean {
  if (t.plural === 'tokenreviews' && t.group === 'authentication.k8s.io') {
    if (info.verb !== 'create' || info.name) throw methodNotAllowed();
    tokenReview(ctx, res, parseJson(body));
    return true;
  }
  if (t.plural === 'subjectaccessreviews' && t.group === 'authorization.k8s.io') {
    if (info.verb !== 'create' || info.name) throw methodNotAllowed();
    subjectAccessReview(ctx, res, parseJson(body));
    return true;
  }
  if (t.plural === 'serviceaccounts' && info.subresource === 'token') {
    if (info.verb !== 'create') throw methodNotAllowed();
    tokenRequest(ctx, res, t, info, parseJson(body));
    return true;
  }
  return false;
}

function specOf(body: unknown, kind: string): Record<string, unknown> {
  if (!isRecord(body) || !isRecord(body.spec)) throw badRequest(`${kind} has no spec`);
  return body.spec;
}

function tokenReview(ctx: Serving, res: http.ServerResponse, body: unknown): void {
  const spec = specOf(body, 'TokenReview');
  if (typeof spec.token !== 'string' || !spec.token) throw new ApiError(422, 'Invalid', 'TokenReview.authentication.k8s.io "" is invalid: spec.token: Required value');
  const audiences = Array.isArray(spec.audiences) ? spec.audiences.filter((a): a is string => typeof a === 'string') : undefined;
  const r = ctx.identities.authenticate(spec.token, audiences);
  const status = 'error' in r ? { authenticated: false, user: {}, error: r.error } : { authenticated: true, user: r.user, audiences: r.audiences };
  sendJson(res, 201, { kind: 'TokenReview', apiVersion: 'authentication.k8s.io/v1', metadata: { creationTimestamp: null }, spec, status });
}

function subjectAccessReview(ctx: Serving, res: http.ServerResponse, body: unknown): void {
  const spec = specOf(body, 'SubjectAccessReview');
  const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
  const username = str(spec.user);
  const groups = Array.isArray(spec.groups) ? spec.groups.filter((g): g is string => typeof g === 'string') : [];
  if (!username && groups.length === 0)
    throw new ApiError(422, 'Invalid', 'SubjectAccessReview.authorization.k8s.io "" is invalid: spec.user: Invalid value: "": at least one of user or group must be specified');
  const user = { username: username ?? '', groups, ...(str(spec.uid) ? { uid: str(spec.uid)! } : {}) };
  let attrs: AccessAttributes;
  if (isRecord(spec.resourceAttributes)) {
    const ra = spec.resourceAttributes;
    attrs = {
      user,
      verb: str(ra.verb) ?? '',
      resource: {
        group: str(ra.group) ?? '',
        resource: str(ra.resource) ?? '',
        ...(str(ra.subresource) ? { subresource: str(ra.subresource)! } : {}),
        ...(str(ra.namespace) ? { namespace: str(ra.namespace)! } : {}),
        ...(str(ra.name) ? { name: str(ra.name)! } : {}),
      },
    };
  } else if (isRecord(spec.nonResourceAttributes)) {
    attrs = { user, verb: str(spec.nonResourceAttributes.verb) ?? '', path: str(spec.nonResourceAttributes.path) ?? '' };
  } else {
    throw new ApiError(
      422,
      'Invalid',
      'SubjectAccessReview.authorization.k8s.io "" is invalid: spec.resourceAttributes: Invalid value: "null": exactly one of nonResourceAttributes or resourceAttributes must be specified',
    );
  }
  const d = rbacDecide(rbacObjects(ctx), attrs);
  sendJson(res, 201, {
    kind: 'SubjectAccessReview',
    apiVersion: 'authorization.k8s.io/v1',
    metadata: { creationTimestamp: null },
    spec,
    status: d.allowed ? { allowed: true, reason: d.reason } : { allowed: false },
  });
}

function tokenRequest(ctx: Serving, res: http.ServerResponse, t: ResourceType, info: RequestInfo, body: unknown): void {
  const sa = ctx.api.get(t, info.namespace, info.name!);
  const spec = specOf(body, 'TokenRequest');
  const seconds = spec.expirationSeconds === undefined ? DEFAULT_TOKEN_SECONDS : spec.expirationSeconds;
  if (typeof seconds !== 'number' || !Number.isInteger(seconds) || seconds < MIN_TOKEN_SECONDS) {
    throw new ApiError(
      422,
      'Invalid',
      `TokenRequest.authentication.k8s.io "${info.name}" is invalid: spec.expirationSeconds: Invalid value: ${JSON.stringify(seconds)}: may not specify a duration less than 10 minutes`,
    );
  }
  const audiences = Array.isArray(spec.audiences) ? spec.audiences.filter((a): a is string => typeof a === 'string') : [];
  const issued = ctx.identities.issue(info.namespace!, info.name!, String(sa.metadata.uid ?? ''), seconds, audiences);
  sendJson(res, 201, {
    kind: 'TokenRequest',
    apiVersion: 'authentication.k8s.io/v1',
    metadata: { name: info.name, namespace: info.namespace, creationTimestamp: null },
    spec: { ...spec, expirationSeconds: seconds, audiences: audiences.length ? audiences : ['https://kubernetes.default.svc'] },
    status: issued,
  });
}
