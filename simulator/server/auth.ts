// Who is calling and what they may do: bearer-token authentication against the
// kubeconfig's tokens, and RBAC-style denials (DenyRule) answered with 403 Forbidden.

import type http from 'node:http';
import { ApiError } from '../errors.js';
import type { ResourceType } from '../resources.js';
import type { RequestInfo } from './request-info.js';

export interface DenyRule {
  verb: string;
  /** `pods`, `nodes/proxy`, ... (`*` matches any). */
  resource: string;
  group?: string;
  namespace?: string;
  user?: string;
}

/** The user name of the request's bearer token, or undefined when it has none or an unknown one. */
export function authenticate(tokens: Map<string, string>, req: http.IncomingMessage): string | undefined {
  const h = req.headers.authorization;
  if (!h) return undefined;
  const m = /^Bearer\s+(.+)$/i.exec(h);
  if (!m) return undefined;
  return tokens.get(m[1]!.trim());
}

/** Throws 403 Forbidden when a deny rule matches the request. */
export function authorize(denyRules: readonly DenyRule[], user: string, info: RequestInfo, t: ResourceType): void {
  const res = info.subresource ? `${info.resource}/${info.subresource}` : info.resource;
  const denied = denyRules.some(
    (r) =>
      (r.user === undefined || r.user === user) &&
      (r.verb === '*' || r.verb === info.verb) &&
      (r.resource === '*' || r.resource === res) &&
      (r.group === undefined || r.group === t.group) &&
      (r.namespace === undefined || r.namespace === info.namespace),
  );
  if (!denied) return;
  const subject = info.name ? `${info.resource} "${info.name}"` : info.resource;
  const scope = t.namespaced && info.namespace ? `in the namespace "${info.namespace}"` : 'at the cluster scope';
  const message = `${subject} is forbidden: User "${user}" cannot ${info.verb} resource "${res}" in API group "${t.group}" ${scope}`;
  const details: Record<string, string> = { kind: info.resource };
  if (info.name) details.name = info.name;
  if (t.group) details.group = t.group;
  throw new ApiError(403, 'Forbidden', message, details);
}
