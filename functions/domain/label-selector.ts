// Turns a Kubernetes LabelSelector object into the string form the list API takes.
import type { V1LabelSelector } from '@kubernetes/client-node';

export function labelSelectorString(selector: V1LabelSelector | undefined): string {
  if (!selector) return '';
  const parts = Object.entries(selector.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const e of selector.matchExpressions ?? []) {
    const values = (e.values ?? []).join(',');
    switch (e.operator) {
      case 'In':
        parts.push(`${e.key} in (${values})`);
        break;
      case 'NotIn':
        parts.push(`${e.key} notin (${values})`);
        break;
      case 'Exists':
        parts.push(e.key);
        break;
      case 'DoesNotExist':
        parts.push(`!${e.key}`);
        break;
      default:
        throw new Error(`unsupported label selector operator ${JSON.stringify(e.operator)} on ${e.key}`);
    }
  }
  return parts.join(',');
}
