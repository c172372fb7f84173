// A simulated container's logs: the kept lines (current and previous run), followers of
// `kubectl logs -f`, and the API server's pods/log answers (400s for a missing or
// not-yet-started container, or no previous run).

import { badRequest } from '../errors.js';
import { isRecord, type KubeObject } from '../types.js';
import type { NodeRuntime, RuntimeContainer, RuntimePod } from './runtime.js';

const MAX_LOG_LINES = 2000;

/** Appends a line to the container's log (keeping the last MAX_LOG_LINES) and hands it to its followers. */
export function appendLog(rt: NodeRuntime, p: RuntimePod, c: RuntimeContainer, line: string): void {
  c.logs.push(line);
  if (c.logs.length > MAX_LOG_LINES) c.logs.splice(0, c.logs.length - MAX_LOG_LINES);
  for (const f of rt.followers.get(`${p.uid}/${c.name}`) ?? []) f(line);
}

function logContainer(rt: NodeRuntime, pod: KubeObject, container: string | undefined): { p: RuntimePod; c: RuntimeContainer; name: string } {
  const names = (Array.isArray(pod.spec?.containers) ? pod.spec.containers.filter(isRecord) : []).map((x) => String(x.name));
  const podName = pod.metadata.name!;
  let name = container;
  if (!name) {
    if (names.length !== 1) throw badRequest(`a container name must be specified for pod ${podName}, choose one of: [${names.join(' ')}]`);
    name = names[0]!;
  }
  if (!names.includes(name)) throw badRequest(`container ${name} is not valid for pod ${podName}`);
  const p = rt.pods.get(pod.metadata.uid!);
  const c = p?.containers.get(name);
  if (!p || !c || !c.everStarted) {
    const reason = c?.waiting?.reason ?? 'ContainerCreating';
    throw badRequest(`container "${name}" in pod "${podName}" is waiting to start: ${reason}`);
  }
  return { p, c, name };
}

export function readLogs(rt: NodeRuntime, pod: KubeObject, container: string | undefined, previous: boolean): string[] {
  const { c, name } = logContainer(rt, pod, container);
  if (previous) {
    if (!c.lastTerminated) throw badRequest(`previous terminated container "${name}" in pod "${pod.metadata.name}" not found`);
    return [...c.previousLogs];
  }
  return [...c.logs];
}

export function followLogs(rt: NodeRuntime, pod: KubeObject, container: string | undefined, onLine: (line: string) => void): () => void {
  const { p, name } = logContainer(rt, pod, container);
  const key = `${p.uid}/${name}`;
  const set = rt.followers.get(key) ?? new Set();
  set.add(onLine);
  rt.followers.set(key, set);
  return () => set.delete(onLine);
}
