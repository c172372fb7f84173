// The API server's side of the simulated kubelets: what it asks a node for (the
// nodes/proxy calls, container logs). cluster/kubelets.ts implements it over kubelet.ts.

import type { KubeObject } from '../types.js';

export interface ProxyRequest {
  method: string;
  /** Path after `/proxy`, always starting with `/`. */
  path: string;
  query: URLSearchParams;
  body: Buffer;
}

export interface ProxyResponse {
  status: number;
  contentType: string;
  body: string | Buffer;
}

/** What the API server needs from the simulated kubelets. */
export interface NodeBackend {
  proxy(node: string, req: ProxyRequest): Promise<ProxyResponse>;
  /** Log lines of a container; throws ApiError (e.g. 400 when the container is waiting). */
  logs(pod: KubeObject, container: string | undefined, opts: { previous: boolean }): string[];
  followLogs(pod: KubeObject, container: string | undefined, onLine: (line: string) => void): () => void;
}
