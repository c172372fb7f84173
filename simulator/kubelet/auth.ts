// How a kubelet authenticates and authorizes a request to its own HTTPS port
// (--authentication-token-webhook, --authorization-mode=Webhook), after kubernetes
// pkg/kubelet/server/auth.go and server.go's InstallAuthFilter:
// - the bearer token is checked with a TokenReview; no token or an invalid one → 401 "Unauthorized";
// - the verb comes from the HTTP method (POST create, GET get, PUT update, PATCH patch,
//   DELETE delete, anything else ""), the resource is always `nodes`, the name the node's;
// - the path picks the subresource(s): /stats stats, /metrics metrics, /logs log,
//   /checkpoint checkpoint, anything else proxy; with KubeletFineGrainedAuthz (on by
//   default since 1.33) /pods and /runningpods also try pods, /healthz healthz,
//   /configz configz, /statusz statusz before proxy;
// - each attribute set is a SubjectAccessReview, the first allowed one admits the request,
//   none → 403 "Forbidden (user=<name>, verb=<verb>, resource=nodes, subresource(s)=[<subresources>])";
// - answers are cached as the kubelet's defaults say: authentication 2 min,
//   authorization 5 min when allowed and 30 s when denied.

import type { UserInfo } from '../server/rbac.js';

export interface KubeletAttributes {
  verb: string;
  subresources: string[];
}

/** auth.go's isSubpath: the path itself or anything below it. */
function isSubpath(subpath: string, path: string): boolean {
  const p = path.replace(/\/$/, '');
  return subpath === p || (subpath.startsWith(p) && subpath[p.length] === '/');
}

const VERBS: Record<string, string> = { POST: 'create', GET: 'get', PUT: 'update', PATCH: 'patch', DELETE: 'delete' };

/** GetRequestAttributes of auth.go: the verb and the subresources to try, in order. */
export function kubeletRequestAttributes(method: string, path: string, fineGrained = true): KubeletAttributes {
  const verb = VERBS[method.toUpperCase()] ?? '';
  const subresources: string[] = [];
  if (fineGrained) {
    if (isSubpath(path, '/pods')) subresources.push('pods');
    else if (isSubpath(path, '/healthz')) subresources.push('healthz');
    else if (isSubpath(path, '/configz')) subresources.push('configz');
    else if (isSubpath(path, '/statusz')) subresources.push('statusz');
    else if (isSubpath(path, '/runningpods/')) subresources.push('pods');
  }
  if (isSubpath(path, '/stats/')) subresources.push('stats');
  else if (isSubpath(path, '/metrics')) subresources.push('metrics');
  else if (isSubpath(path, '/logs/')) subresources.push('log');
  else if (isSubpath(path, '/checkpoint')) subresources.push('checkpoint');
  else subresources.push('proxy');
  return { verb, subresources };
}

export function forbiddenMessage(user: string, attrs: KubeletAttributes): string {
  return `Forbidden (user=${user}, verb=${attrs.verb}, resource=nodes, subresource(s)=[${attrs.subresources.join(' ')}])`;
}

/** The webhook calls a kubelet makes to the API server. */
export interface KubeletAuthBackend {
  /** TokenReview: the user, or undefined when the token is not valid. */
  review(token: string): Promise<UserInfo | undefined>;
  /** SubjectAccessReview of one nodes/<subresource> attribute set. */
  allowed(user: UserInfo, verb: string, node: string, subresource: string): Promise<boolean>;
}

export interface AuthTtl {
  authenticationMs: number;
  authorizedMs: number;
  unauthorizedMs: number;
}

/** The kubelet's defaults (KubeletConfiguration authentication.webhook.cacheTTL, authorization.webhook.cacheAuthorizedTTL / cacheUnauthorizedTTL). */
export const KUBELET_AUTH_TTL: AuthTtl = { authenticationMs: 120_000, authorizedMs: 300_000, unauthorizedMs: 30_000 };

export type AuthOutcome = { ok: true; user: UserInfo } | { ok: false; status: 401 | 403; message: string };

/** Authenticates and authorizes kubelet requests through a backend, caching its answers. */
export class KubeletAuthenticator {
  private readonly tokens = new Map<string, { user: UserInfo | undefined; expires: number }>();
  private readonly decisions = new Map<string, { allowed: boolean; expires: number }>();

  constructor(
    private readonly node: string,
    private readonly backend: KubeletAuthBackend,
    private readonly ttl: AuthTtl = KUBELET_AUTH_TTL,
    private readonly now: () => number = Date.now,
  ) {}

  async check(authorization: string | undefined, method: string, path: string): Promise<AuthOutcome> {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    if (!m) return { ok: false, status: 401, message: 'Unauthorized' };
    const user = await this.authenticate(m[1]!);
    if (!user) return { ok: false, status: 401, message: 'Unauthorized' };
    const attrs = kubeletRequestAttributes(method, path);
    for (const sub of attrs.subresources) if (await this.authorize(user, attrs.verb, sub)) return { ok: true, user };
    return { ok: false, status: 403, message: forbiddenMessage(user.username, attrs) };
  }

  private async authenticate(token: string): Promise<UserInfo | undefined> {
    const hit = this.tokens.get(token);
    if (hit && hit.expires > this.now()) return hit.user;
    const user = await this.backend.review(token);
    // The webhook token authenticator caches failures too (the same cacheTTL).
    this.tokens.set(token, { user, expires: this.now() + this.ttl.authenticationMs });
    return user;
  }

  private async authorize(user: UserInfo, verb: string, subresource: string): Promise<boolean> {
    const key = JSON.stringify([user.username, user.uid ?? '', [...user.groups].sort(), verb, subresource]);
    const hit = this.decisions.get(key);
    if (hit && hit.expires > this.now()) return hit.allowed;
    const allowed = await this.backend.allowed(user, verb, this.node, subresource);
    this.decisions.set(key, { allowed, expires: this.now() + (allowed ? this.ttl.authorizedMs : this.ttl.unauthorizedMs) });
    return allowed;
  }
}
