// The simulated kubelet's HTTP API behind the API server's node proxy: /healthz and the
// ContainerCheckpoint endpoint (POST /checkpoint/{namespace}/{pod}/{container}). Its
// answers: 200 with the archive's path (the archive written to the node's checkpoint
// directory, 0600), 400 for a bad ?timeout=, 403 when the API server's kubelet-client
// identity may not create nodes/checkpoint, 404 for an unknown pod or container (or the
// feature gate off), 405 for another verb, 500 for a container not running or an injected
// CRIU failure. (Who may call it is decided before: by the API server for the node proxy,
// and on the kubelet's own port by kubelet/auth.ts, with 401 and 403 of their own.)

import { chmod } from 'node:fs/promises';
import { join } from 'node:path';
import type { ProxyRequest, ProxyResponse } from '../server/node-backend.js';
import { nowRfc3339 } from '../types.js';
import type { CheckpointFailure, NodeRuntime } from './runtime.js';

/** What the cluster's hooks change on a kubelet's checkpoint API (fields of Kubelet). */
export interface CheckpointAccess {
  /** Injected failures; one with a count is removed once used up. */
  checkpointFailures: CheckpointFailure[];
  /** Whether the API server's kubelet client identity may create nodes/checkpoint. */
  apiServerMayCheckpoint: boolean;
}

export async function serveKubeletApi(rt: NodeRuntime, access: CheckpointAccess, req: ProxyRequest): Promise<ProxyResponse> {
  const text = (status: number, body: string): ProxyResponse => ({ status, contentType: 'text/plain; charset=utf-8', body });
  const m = /^\/checkpoint\/([^/]+)\/([^/]+)\/([^/]+)\/?$/.exec(req.path);
  if (m && rt.opts.checkpointFeatureGate) {
    if (req.method !== 'create') return text(405, '405: Method Not Allowed');
    if (!access.apiServerMayCheckpoint) {
      return text(403, 'Forbidden (user=kube-apiserver-kubelet-client, verb=create, resource=nodes, subresource=checkpoint)');
    }
    return checkpoint(rt, access, m[1]!, m[2]!, m[3]!, req.query);
  }
  if (req.path === '/healthz') return text(200, 'ok');
  // Unregistered routes (including /checkpoint with the feature gate off) are plain 404s.
  return text(404, '404 page not found\n');
}

async function checkpoint(rt: NodeRuntime, access: CheckpointAccess, namespace: string, pod: string, container: string, query: URLSearchParams): Promise<ProxyResponse> {
  const text = (status: number, body: string): ProxyResponse => ({ status, contentType: 'text/plain; charset=utf-8', body });
  const timeout = query.get('timeout');
  if (timeout !== null && !/^\d+$/.test(timeout)) return text(400, `cannot parse value of timeout: "${timeout}"`);
  const p = rt.find(namespace, pod);
  if (!p || p.terminating) return text(404, 'pod does not exist');
  const c = p.containers.get(container);
  if (!c) return text(404, `container ${container} does not exist`);
  const failure = access.checkpointFailures.find(
    (f) => (f.namespace === undefined || f.namespace === namespace) && (f.pod === undefined || f.pod === pod) && (f.container === undefined || f.container === container),
  );
  if (failure) {
    if (failure.count !== undefined) {
      failure.count--;
      if (failure.count <= 0) access.checkpointFailures.splice(access.checkpointFailures.indexOf(failure), 1);
    }
    const detail =
      failure.message ?? `rpc error: code = Unknown desc = failed to checkpoint container ${c.id || container}: running "criu" failed: exit status 1: Error (criu/cr-dump.c:2111): Dumping FAILED.`;
    return text(500, `checkpointing of ${namespace}/${pod}/${container} failed (${detail})`);
  }
  if (c.phase !== 'running') {
    return text(500, `checkpointing of ${namespace}/${pod}/${container} failed (rpc error: code = Unknown desc = container ${c.id || container} is not running)`);
  }
  const checkpointedAt = nowRfc3339();
  const fileName = `checkpoint-${pod}_${namespace}-${container}-${checkpointedAt}.tar`;
  const file = join(rt.opts.checkpointDir, fileName);
  try {
    await rt.runtime.checkpoint(p, c, file, checkpointedAt);
  } catch (err) {
    // As CRI-O answers a failed CRIU dump: 500 with the runtime's own message.
    const detail = err instanceof Error ? err.message : String(err);
    return text(500, `checkpointing of ${namespace}/${pod}/${container} failed (rpc error: code = Unknown desc = failed to checkpoint container ${c.id}: ${detail})`);
  }
  await chmod(file, 0o600);
  const body = JSON.stringify({ items: [`/var/lib/kubelet/checkpoints/${fileName}`] });
  return { status: 200, contentType: 'application/json', body };
}
