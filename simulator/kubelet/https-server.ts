// A kubelet's own HTTPS port (10250 on a real node; a free loopback port here):
// every request is authenticated and authorized as auth.ts describes, then served by
// the same kubelet API the API server's node proxy reaches (checkpoint-api.ts).
// While the node is down its connections are dropped, as an unreachable host's are.

import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { ProxyRequest, ProxyResponse } from '../server/node-backend.js';
import type { KubeletAuthenticator } from './auth.js';

export interface KubeletEndpoint {
  /** The node's serving certificate and key. */
  tls: { cert: string; key: string };
  auth: KubeletAuthenticator;
  isDown(): boolean;
  /** A request the kubelet authorized, with who made it. */
  serve(req: ProxyRequest, user: string): Promise<ProxyResponse>;
}

export interface KubeletHttpsServer {
  url: string;
  close(): Promise<void>;
}

/** The API verb of an HTTP method, as the kubelet's handlers see it behind the proxy. */
const VERB_OF: Record<string, string> = { POST: 'create', GET: 'get', HEAD: 'get', PUT: 'update', PATCH: 'patch', DELETE: 'delete' };

const MAX_BODY_BYTES = 1 << 20;

export async function listenKubeletHttps(endpoint: KubeletEndpoint): Promise<KubeletHttpsServer> {
  const sockets = new Set<Socket>();
  const server = https.createServer({ cert: endpoint.tls.cert, key: endpoint.tls.key }, (req, res) => {
    const text = (status: number, body: string) => {
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' });
      res.end(body);
    };
    if (endpoint.isDown()) {
      req.socket.destroy();
      return;
    }
    void (async () => {
      const url = new URL(req.url ?? '/', 'https://kubelet');
      const method = (req.method ?? 'GET').toUpperCase();
      const outcome = await endpoint.auth.check(req.headers.authorization, method, url.pathname);
      if (!outcome.ok) return text(outcome.status, `${outcome.message}\n`);
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const c of req) {
        size += (c as Buffer).length;
        if (size > MAX_BODY_BYTES) return text(413, 'request body too large\n');
        chunks.push(c as Buffer);
      }
      const out = await endpoint.serve({ method: VERB_OF[method] ?? method.toLowerCase(), path: url.pathname, query: url.searchParams, body: Buffer.concat(chunks) }, outcome.user.username);
      if (endpoint.isDown()) {
        req.socket.destroy();
        return;
      }
      res.writeHead(out.status, { 'content-type': out.contentType });
      res.end(out.body);
    })().catch((err: unknown) => {
      // The webhook (TokenReview / SubjectAccessReview) failed: the kubelet answers 500, as on an authorizer error.
      if (!res.headersSent) text(500, `Internal Server Error: ${err instanceof Error ? err.message : String(err)}\n`);
      else res.destroy();
    });
  });
  // The kubelet keeps idle connections 90 s (pkg/kubelet/server/server.go: IdleTimeout 90 * time.Second).
  server.keepAliveTimeout = 90_000;
  server.on('secureConnection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
