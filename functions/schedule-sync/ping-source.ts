// The PingSource kcr keeps for an annotated workload: its name, its desired
// spec, and whether an existing one already matches.
import { createHash } from 'node:crypto';
import type { PingSource, Workload } from '../core/kubernetes/kubernetes.js';
import { LABELS, MANAGED_BY } from '../core/kubernetes/annotations.js';

/** `kcr-<kind>-<name>`, cut to 63 characters with a hash suffix when longer. */
export function pingSourceName(kind: string, name: string): string {
  const full = `kcr-${kind.toLowerCase()}-${name}`;
  if (full.length <= 63) return full;
  const hash = createHash('sha256').update(full).digest('hex').slice(0, 8);
  return `${full.slice(0, 54).replace(/[-.]+$/, '')}-${hash}`;
}

interface PingSourceInputs {
  schedule: string;
  timezone?: string;
  /** Where the pings go: the broker. */
  sinkUri: string;
}

export function desiredPingSource(workload: Workload, inputs: PingSourceInputs): PingSource {
  const namespace = workload.metadata?.namespace ?? 'default';
  const name = workload.metadata?.name ?? '';
  return {
    apiVersion: 'sources.knative.dev/v1',
    kind: 'PingSource',
    metadata: {
      name: pingSourceName(workload.kind, name),
      namespace,
      labels: { [LABELS.managedBy]: MANAGED_BY, [LABELS.workloadKind]: workload.kind, [LABELS.workloadName]: name },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: workload.kind, name, uid: workload.metadata?.uid ?? '', controller: true, blockOwnerDeletion: false }],
    },
    spec: {
      schedule: inputs.schedule,
      ...(inputs.timezone ? { timezone: inputs.timezone } : {}),
      contentType: 'application/json',
      data: JSON.stringify({ namespace, kind: workload.kind, name }),
      sink: { uri: inputs.sinkUri },
    },
  };
}

/** Whether `current` needs an update to become `desired` (spec, labels, owner). */
export function pingSourceMatches(current: PingSource, desired: PingSource): boolean {
  const owner = (p: PingSource) => (p.metadata.ownerReferences ?? []).map((o) => `${o.kind}/${o.name}/${o.uid}`).join(',');
  const labels = (p: PingSource) => Object.entries(desired.metadata.labels ?? {}).every(([k, v]) => p.metadata.labels?.[k] === v);
  return canonical(current.spec) === canonical(desired.spec) && owner(current) === owner(desired) && labels(current);
}

function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b))) : v));
}
