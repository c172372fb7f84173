// What a kubelet checkpoint answer means for kcr (ARCHITECTURE.md): 200 is a
// checkpoint; 401/403 (whose identity was refused depends on the route), 404
// and 500 are permanent for this tick; 429 and other
// 5xx from the API server are transient, as a call without an answer is (a
// connection error: Kubernetes.checkpoint throws TransientError).
import { statusMessage } from '../core/kubernetes/kubernetes.js';
import type { CheckpointVia } from './kubelet-route.js';

type KubeletFailure = { transient: true; reason: string } | { transient: false; reason: string };

export function classifyKubeletFailure(status: number, body: string, via: CheckpointVia): KubeletFailure {
  const text = statusMessage(body).trim() || '(empty body)';
  if ((status === 401 || status === 403) && via === 'node-agent') {
    // The node-agent called its kubelet directly: the kubelet judged the node-agent's own ServiceAccount.
    return {
      transient: false,
      reason:
        status === 401
          ? `the kubelet did not accept the node-agent's ServiceAccount token (HTTP 401: ${text}); check the DaemonSet's projected token volume and that the kubelet authenticates with webhook (authentication.webhook.enabled)`
          : `the kubelet refused the node-agent (HTTP 403: ${text}); fix: grant ServiceAccount kcr-system/node-agent "create" on "nodes/checkpoint" (ClusterRole kcr-node-agent in manifests/)`,
    };
  }
  if (status === 401 || status === 403) {
    if (/kube-apiserver-kubelet-client|nodes\/checkpoint|subresource(?:\(s\))?=\[?checkpoint/.test(text)) {
      return {
        transient: false,
        reason: `the kubelet refused the API server (HTTP ${status}: ${text}); fix: grant the user kube-apiserver-kubelet-client "create" on "nodes/checkpoint" (ClusterRole kcr-kubelet-checkpoint in manifests/)`,
      };
    }
    return {
      transient: false,
      reason: `the API server refused kcr (HTTP ${status}: ${text}); fix: grant request-checkpoint's ServiceAccount "create" on "nodes/proxy" (ClusterRole rule: apiGroups [""], resources ["nodes/proxy"], verbs ["create"])`,
    };
  }
  if (status === 404) {
    return { transient: false, reason: `the kubelet answered 404: the ContainerCheckpoint feature gate is off on the node, or the container is gone (${text})` };
  }
  if (status === 500) return { transient: false, reason: `the container runtime failed to checkpoint (HTTP 500: ${text})` };
  if (status === 429 || status >= 500) return { transient: true, reason: `the API server answered ${status}: ${text}` };
  return { transient: false, reason: `unexpected answer HTTP ${status}: ${text}` };
}
