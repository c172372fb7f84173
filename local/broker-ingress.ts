// The local broker's HTTP ingress, as Knative's broker-ingress answers:
// POST /<namespace>/<broker> (or /) with a CloudEvent in binary or structured
// mode gets 202 once the event is handed to `ingest`; /healthz and /readyz
// answer 200; a bad event 400, an oversized body 413, a closing broker 503.
// Also the in-process `publish` path's conversion to a wire event.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CloudEvent } from 'cloudevents';
import { decodeHttp, encodeBinary, fromSdkEvent, type WireEvent } from '../functions/core/runtime/cloudevents-http.js';
import { BadInputError } from '../functions/core/runtime/errors.js';

export interface IngressOptions {
  namespace: string;
  name: string;
  /** Largest accepted request body. */
  maxBodyBytes: number;
  isClosed(): boolean;
  /** Takes an accepted event; the ingress answers 202 once it returns. */
  ingest(event: WireEvent): void;
}

export function createIngressServer(options: IngressOptions): Server {
  const { namespace, name } = options;
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (req.method === 'GET' && (path === '/healthz' || path === '/readyz')) return reply(res, 200, { status: 'ok' });
    if (path !== '/' && path !== `/${namespace}/${name}`) return reply(res, 404, { error: `no broker at ${path} (this is ${namespace}/${name})` });
    if (req.method !== 'POST') return reply(res, 405, { error: `method ${req.method} not allowed: POST a CloudEvent` });
    if (options.isClosed()) return reply(res, 503, { error: 'broker is shutting down' });
    let body: Buffer;
    try {
      body = await readBody(req, options.maxBodyBytes);
    } catch (err) {
      return reply(res, 413, { error: (err as Error).message });
    }
    let event: WireEvent;
    try {
      event = decodeHttp(req.headers, body);
    } catch (err) {
      if (err instanceof BadInputError) return reply(res, 400, { error: err.message });
      throw err;
    }
    options.ingest(event);
    res.writeHead(202).end();
  };
  return createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      console.error(`local broker: ingress failed on ${req.method} ${req.url}: ${(err as Error).stack ?? String(err)}`);
      if (!res.headersSent) reply(res, 500, { error: (err as Error).message });
    });
  });
}

/** Listens on loopback; resolves with the port. */
export async function listenOnLoopback(server: Server, port: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return (server.address() as AddressInfo).port;
}

/** An event given to `publish`, as the wire event the ingress would have decoded; throws BadInputError when invalid. */
export function toWireEvent(event: CloudEvent<unknown> | WireEvent): WireEvent {
  return isWireEvent(event) ? (validateWire(event), event) : fromSdkEvent(event);
}

function isWireEvent(e: CloudEvent<unknown> | WireEvent): e is WireEvent {
  return typeof (e as WireEvent).attributes === 'object' && (e as WireEvent).attributes !== null && !('specversion' in e);
}

function validateWire(e: WireEvent): void {
  decodeHttp(encodeBinary(e).headers, e.data ?? Buffer.alloc(0));
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
}

async function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > max) throw new Error(`request body exceeds ${max} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
