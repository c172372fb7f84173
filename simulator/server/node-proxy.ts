// The nodes/proxy subresource: forwards a call (e.g. the kubelet checkpoint API)
// to the simulated kubelet of the node, as the real API server proxies to port 10250.

import type http from 'node:http';
import type { Serving } from './context.js';
import type { RequestInfo } from './request-info.js';

export async function nodeProxy(ctx: Serving, res: http.ServerResponse, info: RequestInfo, query: URLSearchParams, body: Buffer): Promise<void> {
  const nodeType = ctx.api.registry.find('', 'v1', 'nodes')!;
  ctx.api.get(nodeType, undefined, info.name!);
  const rest = info.path.split('/').slice(6).join('/');
  const out = await ctx.nodes.proxy(info.name!, { method: info.verb, path: `/${rest}`, query, body });
  res.writeHead(out.status, { 'content-type': out.contentType });
  res.end(out.body);
}
