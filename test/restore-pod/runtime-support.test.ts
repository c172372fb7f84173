// Which containerRuntimeVersion restore-pod restores on (functions/restore-pod/runtime-support.ts):
// the 2026 matrix of ARCHITECTURE.md ("Restore") and containerd's release notes.
import { describe, expect, it } from 'vitest';
import { runtimeSupport } from '../../functions/restore-pod/runtime-support.js';

describe('runtimeSupport', () => {
  it.each([
    // CRI-O restores once enabled; the flag is not on the node object, so it is assumed.
    ['cri-o://1.31.0', true, /container_level_enabled = "checkpoint_restore".*assumes it is set/],
    ['cri-o://1.31.2', true, /enable_criu_support = true/],
    ['cri-o://1.36.6', true, /checkpoint_only/],
    // containerd: restore through CreateContainer from 2.1.0 …
    ['containerd://1.7.22', false, /arrived in containerd 2\.1\.0/],
    ['containerd://1.7.23-k3s2', false, /arrived in containerd 2\.1\.0/],
    ['containerd://2.0.5', false, /arrived in containerd 2\.1\.0/],
    ['containerd://2.1.0', true, /by default/],
    ['containerd://2.1.4', true, /by default/],
    ['containerd://v2.1.4', true, /by default/],
    // … by default until the 2.2.7 and 2.3.4 patch releases, then behind a flag …
    ['containerd://2.2.6', true, /by default/],
    ['containerd://2.2.7', true, /only with enable_experimental_restore_via_create = true; kcr assumes it is set/],
    ['containerd://2.2.9', true, /only with enable_experimental_restore_via_create/],
    ['containerd://2.3.3', true, /by default/],
    ['containerd://2.3.4', true, /only with enable_experimental_restore_via_create/],
    ['containerd://2.3.10', true, /only with enable_experimental_restore_via_create/],
    // … and removed in 2.4.
    ['containerd://2.4.0', false, /containerd 2\.4 removed restore through CreateContainer; pod-level restore \(KEP-5823\).*1\.38 at the earliest/],
    ['containerd://2.4.0-rc.1', false, /removed/],
    ['containerd://2.4.1', false, /removed/],
    ['containerd://2.5.0', false, /removed/],
    ['containerd://3.0.0', false, /removed/],
    ['docker://27.3.1', false, /cri-dockerd/],
    // What kcr cannot tell, it does not refuse.
    ['containerd://main-dev', true, /not understood, not checked/],
    ['frakti://0.3.0', true, /not known to kcr, not checked/],
    ['', true, /reports no container runtime/],
  ])('%s restores: %s', (version, restores, why) => {
    const support = runtimeSupport(version);
    expect(support.restores).toBe(restores);
    expect(support.why).toMatch(why);
    if (version) expect(support.why).toContain(version);
  });
});
