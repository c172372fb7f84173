// How request-checkpoint reaches a node's kubelet checkpoint API (KCR_CHECKPOINT_VIA):
// - node-agent (default): POST /checkpoint/... to the node-agent of the pod's node, which
//   calls its own kubelet directly with a ServiceAccount holding only nodes/checkpoint
//   create; request-checkpoint itself needs no node permission at all.
// - apiserver-proxy: POST /api/v1/nodes/{node}/proxy/checkpoint/... with request-checkpoint's
//   own ServiceAccount, which then needs nodes/proxy create: that reaches every kubelet
//   endpoint (/run, /exec, /attach) on every node. Only for networks that block pod → node:10250.
import { request } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { CheckpointOutcome } from '../core/kubernetes/kubernetes.js';
import type { NodeAgentLocator } from '../core/node-agent/locator.js';
import { RefusedError, TransientError, errorMessage } from '../core/runtime/errors.js';
import { requestFailure, timeoutError } from '../core/runtime/transient.js';

export type CheckpointVia = 'node-agent' | 'apiserver-proxy';

/**
 * A kubelet checkpoint call: every answer of the kubelet is returned (its
 * status and text, for kubelet-outcome.ts); no whole answer (the checkpoint
 * may or may not have been taken) throws TransientError; a refusal by the route
 * itself (the node-agent's own 4xx) throws RefusedError.
 */
export interface KubeletRoute {
  readonly via: CheckpointVia;
  checkpoint(node: string, namespace: string, pod: string, container: string, timeoutSeconds: number): Promise<CheckpointOutcome>;
}

export function apiServerProxyRoute(kube: { checkpoint: KubeletRoute['checkpoint'] }): KubeletRoute {
  return { via: 'apiserver-proxy', checkpoint: (...args) => kube.checkpoint(...args) };
}

/** What the node-agent answers: the kubelet's JSON on 200, else `error` (with `kubeletStatus` when the kubelet said it). */
function parseAgentBody(text: string): { error?: string; kubeletStatus?: number; items?: unknown } {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null ? (v as { error?: string; kubeletStatus?: number; items?: unknown }) : {};
  } catch {
    return {};
  }
}

export function nodeAgentRoute(options: { locate: NodeAgentLocator; token: () => string; marginMs?: number }): KubeletRoute {
  return {
    via: 'node-agent',
    async checkpoint(node, namespace, pod, container, timeoutSeconds) {
      const base = await options.locate(node);
      const url = new URL(`${base}/checkpoint/${[namespace, pod, container].map(encodeURIComponent).join('/')}?timeout=${timeoutSeconds}`);
      const what = `checkpoint ${namespace}/${pod}/${container} through the node-agent of node ${node}`;
      // The agent waits for the kubelet up to timeout + its own 10 s margin; this waits a little longer.
      const timeoutMs = timeoutSeconds * 1000 + (options.marginMs ?? 15_000);
      const send = url.protocol === 'https:' ? httpsRequest : request;
      const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = send(url, { method: 'POST', timeout: timeoutMs, headers: { authorization: `Bearer ${options.token()}`, accept: 'application/json', 'content-length': 0 } }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', (err) => reject(requestFailure(`${what}: the answer broke off`, err)));
        });
        req.on('timeout', () => req.destroy(timeoutError(`no answer within ${timeoutMs} ms`)));
        req.on('error', (err) => reject(requestFailure(what, err)));
        req.end();
      }).catch((err: unknown) => {
        // Whatever broke the call, its outcome is unknown: worth a retry, never a permanent failure.
        throw err instanceof TransientError ? err : new TransientError(errorMessage(err), { cause: err });
      });
      const body = parseAgentBody(text);
      if (status === 200) {
        const item = Array.isArray(body.items) ? body.items[0] : undefined;
        if (typeof item !== 'string') throw new RefusedError(`${what}: the kubelet answered 200 without an archive path: ${text.slice(0, 200)}`, 200);
        return { ok: true, archivePath: item };
      }
      if (typeof body.kubeletStatus === 'number') return { ok: false, status: body.kubeletStatus, body: body.error ?? '' };
      const reason = body.error ?? text.slice(0, 200);
      if (status === 502 || status === 503 || status === 504) throw new TransientError(`${what}: the node-agent answered ${status}: ${reason}`);
      if (status === 401) throw new RefusedError(`${what}: the node-agent refused request-checkpoint's token (HTTP 401: ${reason}); both must use the kcr-node-agent-token Secret`, status);
      throw new RefusedError(`${what}: the node-agent answered ${status}: ${reason}`, status);
    },
  };
}
