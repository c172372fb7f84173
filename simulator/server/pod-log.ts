// The pods/log subresource: a container's log lines from its node's kubelet,
// with tailLines, previous, and follow (a stream held open until the client leaves).

import type http from 'node:http';
import type { Serving } from './context.js';

export function podLog(ctx: Serving, req: http.IncomingMessage, res: http.ServerResponse, ns: string, name: string, query: URLSearchParams): void {
  const podType = ctx.api.registry.find('', 'v1', 'pods')!;
  const pod = ctx.api.get(podType, ns, name);
  const container = query.get('container') ?? undefined;
  const previous = query.get('previous') === 'true';
  let lines = ctx.nodes.logs(pod, container, { previous });
  const tail = query.get('tailLines');
  if (tail !== null) lines = lines.slice(Math.max(0, lines.length - Number(tail)));
  res.writeHead(200, { 'content-type': 'text/plain', 'transfer-encoding': 'chunked' });
  res.write(lines.map((l) => `${l}\n`).join(''));
  if (query.get('follow') !== 'true') {
    res.end();
    return;
  }
  const stop = ctx.nodes.followLogs(pod, container, (line) => {
    if (!res.writableEnded) res.write(`${line}\n`);
  });
  const close = (): void => {
    stop();
    ctx.closers.delete(close);
    if (!res.writableEnded) res.end();
  };
  ctx.closers.add(close);
  req.on('close', close);
}
