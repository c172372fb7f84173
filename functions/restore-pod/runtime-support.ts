// Whether a node's container runtime can restore a container from a checkpoint
// image (through CreateContainer), from what the node reports in
// status.nodeInfo.containerRuntimeVersion (`<runtime>://<version>`). The
// runtimes' config flags are not on the node object, so kcr assumes them set
// where a version has them, and refuses only versions that cannot restore at
// all: a patch there would leave the container failing to start.
// Facts: ../shared/design/ARCHITECTURE.md ("Restore") and containerd's release
// notes (restore added in 2.1.0, off by default from 2.2.7 and 2.3.4, removed in 2.4.0).

export interface RuntimeSupport {
  restores: boolean;
  why: string;
}

type Version = [major: number, minor: number, patch: number];

export function runtimeSupport(containerRuntimeVersion: string): RuntimeSupport {
  const reported = containerRuntimeVersion.trim();
  if (!reported) return { restores: true, why: 'the node reports no container runtime: not checked' };
  const [runtime = '', raw = ''] = reported.split('://', 2);
  const version = parseVersion(raw);
  switch (runtime) {
    case 'cri-o':
      // Every CRI-O release a kubelet ≥ 1.30 runs with (their minors go together) restores once enabled.
      return {
        restores: true,
        why: `${reported} restores checkpoint images when enabled: [crio.checkpoint_restore] container_level_enabled = "checkpoint_restore" (releases with that table default to "checkpoint_only"), enable_criu_support = true before them; kcr assumes it is set`,
      };
    case 'containerd':
      return version ? containerd(reported, version) : { restores: true, why: `${reported}: version not understood, not checked` };
    case 'docker':
      return { restores: false, why: `${reported} (cri-dockerd) cannot restore checkpoints: Docker Engine has no checkpoint restore through the CRI` };
    default:
      return { restores: true, why: `${reported}: runtime not known to kcr, not checked` };
  }
}

function containerd(reported: string, v: Version): RuntimeSupport {
  if (compare(v, [2, 1, 0]) < 0) {
    return { restores: false, why: `${reported} cannot restore checkpoints: restore through CreateContainer arrived in containerd 2.1.0` };
  }
  if (compare(v, [2, 4, 0]) >= 0) {
    return {
      restores: false,
      why: `${reported} cannot restore checkpoints: containerd 2.4 removed restore through CreateContainer; pod-level restore (KEP-5823) is the announced replacement, alpha in Kubernetes 1.38 at the earliest`,
    };
  }
  const [, minor, patch] = v;
  if ((minor === 2 && patch >= 7) || (minor === 3 && patch >= 4)) {
    return { restores: true, why: `${reported} restores checkpoint images only with enable_experimental_restore_via_create = true; kcr assumes it is set` };
  }
  return { restores: true, why: `${reported} restores checkpoint images by default` };
}

/** `2.1.4`, `v1.7.22`, `2.4.0-rc.1`, `1.7.23-k3s2`: the numbers before any suffix. */
function parseVersion(raw: string): Version | undefined {
  const m = /^v?(\d+)\.(\d+)(?:\.(\d+))?/.exec(raw);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : undefined;
}

function compare(a: Version, b: Version): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
}
