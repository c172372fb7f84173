// POST pods/{name}/eviction (policy/v1 Eviction), as the API server's eviction
// REST handler does it (kubernetes pkg/registry/core/pod/storage/eviction.go):
// a terminal pod is deleted at once; otherwise the PodDisruptionBudgets of the
// pod's namespace that select it decide — more than one is a 500, none or one
// with a disruption to spare lets the eviction through, one without gives 429
// TooManyRequests (reason DisruptionBudget, "Cannot evict pod as it would
// violate the pod's disruption budget."). An eviction that goes through
// records itself in the budget's status.disruptedPods, adds the
// DisruptionTarget condition (reason EvictionByEvictionAPI, on by default
// since 1.26) to the pod, and deletes it with the Eviction's deleteOptions.
// What upstream reads from status.disruptionsAllowed (kept by the disruption
// controller, which the simulator does not run) is computed here from the
// same inputs: healthy pods (Ready, not terminating) against minAvailable or
// maxUnavailable, integers or percentages of the pods the budget selects.
import { ApiError } from '../errors.js';
import type { ObjectApi, DeleteOptions } from '../api.js';
import type { ResourceType } from '../resources.js';
import { matchesLabelSelectorObject } from '../selectors.js';
import { isRecord, nowRfc3339, type KubeObject } from '../types.js';

function rec(v: unknown): Record<string, unknown> {
  return isRecord(v) ? v : {};
}

function healthy(pod: KubeObject): boolean {
  const status = rec(pod.status);
  if (pod.metadata.deletionTimestamp) return false;
  const conditions = Array.isArray(status.conditions) ? status.conditions.map(rec) : [];
  return status.phase === 'Running' && conditions.some((c) => c.type === 'Ready' && c.status === 'True');
}

/** An IntOrString of a budget against `total`: percentages round up for minAvailable, as upstream's GetScaledValueFromIntOrPercent. */
function scaled(value: unknown, total: number, roundUp: boolean): number {
  if (typeof value === 'number') return value;
  const m = typeof value === 'string' ? /^(\d+)%$/.exec(value) : null;
  if (!m) return Number(value ?? 0);
  const exact = (Number(m[1]) * total) / 100;
  return roundUp ? Math.ceil(exact) : Math.floor(exact);
}

/** How many more pods the budget lets go now. */
export function disruptionsAllowed(pdb: KubeObject, selected: readonly KubeObject[]): { allowed: number; currentHealthy: number; desiredHealthy: number; expectedPods: number } {
  const spec = rec(pdb.spec);
  const expectedPods = selected.filter((p) => rec(p.status).phase !== 'Succeeded' && rec(p.status).phase !== 'Failed').length;
  const currentHealthy = selected.filter(healthy).length;
  const desiredHealthy = spec.minAvailable !== undefined ? scaled(spec.minAvailable, expectedPods, true) : Math.max(0, expectedPods - scaled(spec.maxUnavailable ?? 0, expectedPods, true));
  return { allowed: Math.max(0, currentHealthy - desiredHealthy), currentHealthy, desiredHealthy, expectedPods };
}

export function evictPod(api: ObjectApi, podType: ResourceType, namespace: string, name: string, deleteOptions: DeleteOptions): void {
  const pod = api.get(podType, namespace, name);
  const phase = rec(pod.status).phase;
  if (phase !== 'Succeeded' && phase !== 'Failed') {
    const pdbType = api.registry.find('policy', 'v1', 'poddisruptionbudgets');
    const budgets = pdbType ? api.list(pdbType, namespace).filter((b) => matchesLabelSelectorObject(rec(b.spec).selector, pod.metadata.labels)) : [];
    if (budgets.length > 1) throw new ApiError(500, 'InternalError', 'This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.');
    const budget = budgets[0];
    if (budget && pdbType) {
      const selected = api.list(podType, namespace).filter((p) => matchesLabelSelectorObject(rec(budget.spec).selector, p.metadata.labels));
      const d = disruptionsAllowed(budget, selected);
      // A pod that is not healthy does not count against the budget (upstream: unhealthy pods may always be evicted once the budget is met).
      if (d.allowed <= 0 && healthy(pod)) {
        throw new ApiError(429, 'TooManyRequests', "Cannot evict pod as it would violate the pod's disruption budget.", {
          causes: [{ reason: 'DisruptionBudget', message: `The disruption budget ${budget.metadata.name} needs ${d.desiredHealthy} healthy pods and has ${d.currentHealthy} currently` }],
        } as never);
      }
      api.mutate(
        pdbType,
        namespace,
        budget.metadata.name ?? '',
        (b) => {
          const status = rec(b.status);
          b.status = {
            ...status,
            currentHealthy: d.currentHealthy,
            desiredHealthy: d.desiredHealthy,
            expectedPods: d.expectedPods,
            disruptionsAllowed: Math.max(0, d.allowed - 1),
            disruptedPods: { ...rec(status.disruptedPods), [name]: nowRfc3339() },
          };
        },
        'status',
      );
    }
    api.mutate(
      podType,
      namespace,
      name,
      (p) => {
        const status = rec(p.status);
        const conditions = (Array.isArray(status.conditions) ? status.conditions.map(rec) : []).filter((c) => c.type !== 'DisruptionTarget');
        conditions.push({ type: 'DisruptionTarget', status: 'True', reason: 'EvictionByEvictionAPI', message: 'Eviction API: evicting', lastTransitionTime: nowRfc3339() });
        p.status = { ...status, conditions };
      },
      'status',
    );
  }
  api.delete(podType, namespace, name, deleteOptions);
}
