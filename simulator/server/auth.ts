// Who is calling and what they may do: bearer-token authentication (identities.ts:
// the static tokens and the issued ServiceAccount tokens), RBAC (rbac.ts) for
// everyone outside system:masters, and injected denials (DenyRule) on top, each
// answered with 403 Forbidden in the API server's wording.

import type http from 'node:http';
import { ApiError } from '../errors.js';
import type { ResourceType } from '../resources.js';
import type { Identities } from './identities.js';
import { rbacDecide, type RbacObjects, type UserInfo } from './rbac.js';
import type { RequestInfo } from './request-info.js';

export interface DenyRule {
  verb: string;
  /** `pods`, `nodes/proxy`, ... (`*` matches any). */
  resource: string;
  group?: string;
  namespace?: string;
  user?: string;
}

/** The user of the request's bearer token, or undefined when it has none or an invalid one. */
export function authenticate(identities: Identities, req: http.IncomingMessage): UserInfo | undefined {
  const h = req.headers.authorization;
  if (!h) return undefined;
  const m = /^Bearer\s+(.+)$/i.exec(h);
  if (!m) return undefined;
  const r = identities.authenticate(m[1]!.trim());
  return 'user' in r ? r.user : undefined;
}

/** Throws 403 Forbidden when RBAC does not allow the request or a deny rule matches it. */
export function authorize(denyRules: readonly DenyRule[], rbac: () => RbacObjects, user: UserInfo, info: RequestInfo, t: ResourceType): void {
  const res = info.subresource ? `${info.resource}/${info.subresource}` : info.resource;
  const denied = denyRules.some(
    (r) =>
      (r.user === undefined || r.user === user.username) &&
      (r.verb === '*' || r.verb === info.verb) &&
      (r.resource === '*' || r.resource === res) &&
      (r.group === undefined || r.group === t.group) &&
      (r.namespace === undefined || r.namespace === info.namespace),
  );
  const allowed =
    !denied &&
    rbacDecide(rbac(), {
      user,
      verb: info.verb,
      resource: {
        group: t.group,
        resource: info.resource,
        ...(info.subresource ? { subresource: info.subresource } : {}),
        ...(t.namespaced && info.namespace ? { namespace: info.namespace } : {}),
        ...(info.name ? { name: info.name } : {}),
      },
    }).allowed;
  if (allowed) return;
  const subject = info.name ? `${info.resource} "${info.name}"` : info.resource;
  const scope = t.namespaced && info.namespace ? `in the namespace "${info.namespace}"` : 'at the cluster scope';
  const message = `${subject} is forbidden: User "${user.username}" cannot ${info.verb} resource "${res}" in API group "${t.group}" ${scope}`;
  const details: Record<string, string> = { kind: info.resource };
  if (info.name) details.name = info.name;
  if (t.group) details.group = t.group;
  throw new ApiError(403, 'Forbidden', message, details);
}
