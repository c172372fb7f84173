// What the node-agent's GET /kubelet-check answers: whether it reaches its own
// node's kubelet and the kubelet lets its identity create nodes/checkpoint, read
// from the kubelet's answer to KUBELET_PROBE_PATH (kubelet-client.ts). The
// doctor (cli/doctor-kubelet.ts) turns it into a line with the fix.
import type { KubeletAnswer } from './kubelet-client.js';

export type KubeletAccess =
  /** 404 "pod does not exist": the checkpoint handler ran, so the kubelet authorized the call. */
  | 'authorized'
  /** 404 page not found: authorized, but no /checkpoint route (the ContainerCheckpoint gate is off). */
  | 'no-checkpoint-api'
  /** 401: the kubelet did not accept the node-agent's token. */
  | 'unauthenticated'
  /** 403: the token is fine, the identity may not create nodes/checkpoint. */
  | 'forbidden'
  /** No answer: no connection, TLS refused, or none in time. */
  | 'unreachable'
  /** Any other answer (500: the kubelet's TokenReview/SubjectAccessReview webhook failed). */
  | 'error';

export interface KubeletCheck {
  /** The kubelet URL the agent calls (KCR_KUBELET_URL). */
  kubelet: string;
  access: KubeletAccess;
  kubeletStatus?: number;
  /** The kubelet's own words, or why there were none. */
  detail: string;
}

export function kubeletCheck(kubelet: string, answer: KubeletAnswer): KubeletCheck {
  if (answer.kind !== 'answer') return { kubelet, access: 'unreachable', detail: answer.message };
  const detail = answer.body.trim().split('\n')[0]?.slice(0, 300) ?? '';
  const of = (access: KubeletAccess): KubeletCheck => ({ kubelet, access, kubeletStatus: answer.status, detail });
  if (answer.status === 404 && /page not found/.test(answer.body)) return of('no-checkpoint-api');
  if (answer.status === 404) return of('authorized');
  if (answer.status === 401) return of('unauthenticated');
  if (answer.status === 403) return of('forbidden');
  return of('error');
}
