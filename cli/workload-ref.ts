// `kind/name` as kubectl writes it (deployment/web, sts/db, po/x): the kinds
// kcr knows, by the names and short names kubectl accepts for them.
import type { OwnerKind } from '../functions/core/contract/events.js';

export const WORKLOAD_KINDS: Readonly<Record<string, OwnerKind>> = {
  deployment: 'Deployment',
  deployments: 'Deployment',
  deploy: 'Deployment',
  statefulset: 'StatefulSet',
  statefulsets: 'StatefulSet',
  sts: 'StatefulSet',
  pod: 'Pod',
  pods: 'Pod',
  po: 'Pod',
};

/** `kind/name`; undefined without a slash, for an unknown kind or an empty name (each command says why in its own words). */
export function parseKindName(arg: string): { kind: OwnerKind; name: string } | undefined {
  const slash = arg.indexOf('/');
  if (slash < 0) return undefined;
  const kind = WORKLOAD_KINDS[arg.slice(0, slash).toLowerCase()];
  const name = arg.slice(slash + 1);
  return kind && name ? { kind, name } : undefined;
}
