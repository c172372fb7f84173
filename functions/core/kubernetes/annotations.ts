// The annotations a user sets on a workload (or pod template) to opt in.
export const ANNOTATIONS = {
  schedule: 'kcr.io/checkpoint-restore-schedule',
  containers: 'kcr.io/checkpoint-containers',
  timezone: 'kcr.io/checkpoint-timezone',
  /** On the pod template: restore this pod's containers even without a schedule on the owner. */
  restore: 'kcr.io/restore',
  /** On a restored pod: `kcr.io/restored-from-<container>: <checkpoint id>`. */
  restoredFromPrefix: 'kcr.io/restored-from-',
} as const;

export const LABELS = {
  managedBy: 'app.kubernetes.io/managed-by',
  workloadKind: 'kcr.io/workload-kind',
  workloadName: 'kcr.io/workload-name',
} as const;

export const MANAGED_BY = 'kcr';

/** Parses `kcr.io/checkpoint-containers`: a comma list of container names; undefined when unset. */
export function parseContainerList(value: string | undefined): string[] | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  return [
    ...new Set(
      value
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    ),
  ];
}

type Meta = { annotations?: Record<string, string> } | undefined;

/**
 * Whether a workload or pod opted in, as the API has it: a checkpoint schedule
 * on it, or `kcr.io/restore: "true"` on it or on its pod template.
 */
export function isOptedIn(metadata: Meta, template?: Meta): boolean {
  return metadata?.annotations?.[ANNOTATIONS.schedule] !== undefined || metadata?.annotations?.[ANNOTATIONS.restore] === 'true' || template?.annotations?.[ANNOTATIONS.restore] === 'true';
}
