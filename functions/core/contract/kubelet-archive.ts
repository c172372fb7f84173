// The kubelet names archives checkpoint-<pod>_<namespace>-<container>-<RFC3339>.tar
// in /var/lib/kubelet/checkpoints. Namespaces and container names may both hold
// '-', so the name is parsed against the known pod, namespace and container.

export const KUBELET_CHECKPOINT_DIR = '/var/lib/kubelet/checkpoints';

const TIMESTAMP = String.raw`\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})`;
/** Any file name the kubelet could have written. */
export const KUBELET_ARCHIVE_NAME = new RegExp(String.raw`^checkpoint-[a-z0-9][a-z0-9.-]*_[a-z0-9][a-z0-9-]*-[a-z0-9][a-z0-9-]*-${TIMESTAMP}\.tar$`);

export interface ArchiveName {
  pod: string;
  namespace: string;
  container: string;
  /** RFC 3339 as the kubelet wrote it. */
  timestamp: string;
}

export function kubeletArchiveName({ pod, namespace, container, timestamp }: ArchiveName): string {
  return `checkpoint-${pod}_${namespace}-${container}-${timestamp}.tar`;
}

/**
 * Parses the base name of a kubelet archive path for the given pod, namespace and
 * container. Throws when the path does not name that container's archive.
 */
export function parseKubeletArchivePath(path: string, expected: Omit<ArchiveName, 'timestamp'>): ArchiveName {
  const base = path.slice(path.lastIndexOf('/') + 1);
  const prefix = `checkpoint-${expected.pod}_${expected.namespace}-${expected.container}-`;
  const stamp = base.startsWith(prefix) && base.endsWith('.tar') ? base.slice(prefix.length, -'.tar'.length) : '';
  if (!new RegExp(`^${TIMESTAMP}$`).test(stamp) || Number.isNaN(Date.parse(stamp))) {
    throw new Error(`kubelet archive ${JSON.stringify(path)} is not a checkpoint of ${expected.namespace}/${expected.pod}/${expected.container}`);
  }
  return { ...expected, timestamp: stamp };
}
