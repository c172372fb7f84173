// Who a bearer token is: the static tokens of the kubeconfig and the kubelets (as
// --token-auth-file gives them), and the ServiceAccount tokens the API server issues
// through TokenRequest (serviceaccounts/token), each with its expiry and audiences.
// TokenReview and every request's authentication read the same table.

import { randomBytes } from 'node:crypto';
import type { UserInfo } from './rbac.js';

interface IssuedToken {
  user: UserInfo;
  expires: number;
  audiences: string[];
}

/** The API server's own audience: a TokenRequest without audiences gets it. */
export const API_AUDIENCE = 'https://kubernetes.default.svc';

export class Identities {
  private readonly fixed = new Map<string, UserInfo>();
  private readonly issued = new Map<string, IssuedToken>();

  constructor(private readonly now: () => number = Date.now) {}

  /** A token that never expires (the kubeconfig's, a kubelet's). */
  addStatic(token: string, user: UserInfo): void {
    this.fixed.set(token, { ...user, groups: withAuthenticated(user.groups) });
  }

  /** A ServiceAccount token valid for `expirationSeconds`. */
  issue(namespace: string, serviceAccount: string, uid: string, expirationSeconds: number, audiences: string[]): { token: string; expirationTimestamp: string } {
    const token = `kcr-sim-sa.${randomBytes(24).toString('base64url')}`;
    const expires = this.now() + expirationSeconds * 1000;
    this.issued.set(token, {
      user: { username: `system:serviceaccount:${namespace}:${serviceAccount}`, uid, groups: withAuthenticated(['system:serviceaccounts', `system:serviceaccounts:${namespace}`]) },
      expires,
      audiences: audiences.length ? audiences : [API_AUDIENCE],
    });
    return { token, expirationTimestamp: new Date(Math.floor(expires / 1000) * 1000).toISOString().replace('.000Z', 'Z') };
  }

  /**
   * The user of a token, or why it is not one. `audiences` (TokenReview's
   * spec.audiences) must intersect the token's; unset means the API server's.
   */
  authenticate(token: string, audiences?: readonly string[]): { user: UserInfo; audiences: string[] } | { error: string } {
    const fixed = this.fixed.get(token);
    if (fixed) return { user: fixed, audiences: audiences?.length ? [...audiences] : [API_AUDIENCE] };
    const t = this.issued.get(token);
    if (!t) return { error: 'invalid bearer token' };
    if (t.expires <= this.now()) {
      this.issued.delete(token);
      return { error: 'invalid bearer token, service account token has expired' };
    }
    const wanted = audiences?.length ? audiences : [API_AUDIENCE];
    const common = t.audiences.filter((a) => wanted.includes(a));
    if (common.length === 0) return { error: 'invalid bearer token, token audiences ["' + t.audiences.join('","') + '"] is invalid for the target audiences ["' + wanted.join('","') + '"]' };
    return { user: t.user, audiences: common };
  }
}

function withAuthenticated(groups: string[]): string[] {
  return groups.includes('system:authenticated') ? groups : [...groups, 'system:authenticated'];
}
