// Child processes of the local mode (docker-registry, the node-agents).
import type { ChildProcess } from 'node:child_process';

/** Stops the process and waits for 'close': its output is then fully written. */
export async function stopChild(child: ChildProcess, closed: Promise<void>): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await closed;
    clearTimeout(timer);
  } else {
    await closed;
  }
}
