// Test subscribers for the local broker and sources: loopback HTTP servers that
// record the CloudEvents they receive and answer as scripted.
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { decodeHttp, type WireEvent } from '../../functions/core/runtime/cloudevents-http.js';
import { until } from '../support/wait.js';

export interface Received {
  event: WireEvent;
  path: string;
  headers: IncomingHttpHeaders;
  at: number;
}

export interface Answer {
  status: number;
  headers?: Record<string, string>;
  body?: string;
  /** Never answer: hold the request until the caller gives up (to trip a delivery timeout). */
  hold?: boolean;
}

export interface Subscriber {
  url: string;
  received: Received[];
  /** Resolves when at least n events have arrived (rejects after timeoutMs). */
  waitFor(n: number, timeoutMs?: number): Promise<Received[]>;
  close(): Promise<void>;
}

/** `answer` is called per request with the 0-based request number; default 202. */
export async function startSubscriber(answer: (event: WireEvent, n: number) => Answer = () => ({ status: 202 })): Promise<Subscriber> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500).end(String(err));
    });
  });
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const event = decodeHttp(req.headers, Buffer.concat(chunks));
    const n = received.length;
    received.push({ event, path: req.url ?? '/', headers: req.headers, at: Date.now() });
    const a = answer(event, n);
    if (a.hold) {
      if (!res.destroyed) await once(res, 'close');
      return;
    }
    res.writeHead(a.status, a.headers ?? {}).end(a.body ?? '');
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    received,
    waitFor: (n, timeoutMs = 10_000) => until(`${n} events`, () => received.length >= n && received, { timeout: timeoutMs, interval: 10, context: () => `${received.length} arrived` }),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export function binaryHeaders(attrs: Record<string, string>, contentType = 'application/json'): Record<string, string> {
  const headers: Record<string, string> = { 'content-type': contentType };
  for (const [k, v] of Object.entries(attrs)) headers[`ce-${k}`] = v;
  return headers;
}
