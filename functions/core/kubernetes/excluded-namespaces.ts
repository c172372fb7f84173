// Namespaces kcr never checkpoints or restores, whatever their annotations say
// (KCR_EXCLUDED_NAMESPACES): the system's own, Knative's and kcr's.

/** Whether `namespace` is excluded: a pattern names it exactly, or ends in `*` and is its prefix. */
export type NamespaceExclusion = (namespace: string) => boolean;

export function namespaceExclusion(patterns: string): NamespaceExclusion {
  const list = patterns
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  const exact = new Set(list.filter((p) => !p.endsWith('*')));
  const prefixes = list.filter((p) => p.endsWith('*')).map((p) => p.slice(0, -1));
  return (namespace) => exact.has(namespace) || prefixes.some((p) => namespace.startsWith(p));
}
