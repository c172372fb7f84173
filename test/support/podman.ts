// Tests on the real container runtime (podman + runc + CRIU) skip locally when a tool is
// missing or `criu check` fails, with a message; under KCR_REQUIRE_BINARIES=1 they fail.
import { podmanUnavailable } from '../../simulator/podman/engine.js';
import { binariesRequired, optionalBinary } from './binaries.js';

const TOOLS: [string, string][] = [
  ['podman', 'podman'],
  ['runc', 'runc'],
  ['criu', 'criu'],
  ['conmon', 'conmon'],
  ['busybox', 'busybox-static'],
  ['checkpointctl', 'checkpointctl'],
];

/** Whether the real runtime can run here; throws under KCR_REQUIRE_BINARIES=1 when it cannot. */
export async function realRuntimeAvailable(): Promise<boolean> {
  for (const [binary, pkg] of TOOLS) if (!optionalBinary(binary, pkg)) return false;
  const why = await podmanUnavailable();
  if (!why) return true;
  if (binariesRequired) throw new Error(`the podman runtime cannot run here: ${why}; KCR_REQUIRE_BINARIES=1 makes this a failure`);
  console.warn(`skipping: the podman runtime cannot run here: ${why}`);
  return false;
}
