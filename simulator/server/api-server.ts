// The simulated API server's HTTP face: listening on http and https, and the
// pipeline every request goes through — path routing (request-info.ts), authentication
// and authorization (auth.ts, rbac.ts), the review APIs (reviews.ts), health, version and discovery (discovery.ts), call
// counting (call-counts.ts), failure injection (faults.ts), then the REST verbs (rest.ts).

import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { ApiError, badRequest, unauthorized } from '../errors.js';
import type { ObjectApi } from '../api.js';
import { authenticate, authorize, type DenyRule } from './auth.js';
import type { Identities } from './identities.js';
import { CallCounter } from './call-counts.js';
import type { Serving } from './context.js';
import { discovery, openapi, versionInfo, type ServerVersion } from './discovery.js';
import { injectFailure, type FailureRule } from './faults.js';
import type { NodeBackend } from './node-backend.js';
import { requestInfo } from './request-info.js';
import { errMessage, readBody, sendJson, sendStatus } from './responses.js';
import { dispatch } from './rest.js';
import { rbacObjects, serveReview } from './reviews.js';

export type { DenyRule } from './auth.js';
export type { ConnectionDrop } from './faults.js';
export type { NodeBackend, ProxyRequest, ProxyResponse } from './node-backend.js';

interface ApiServerOptions {
  identities: Identities;
  bookmarkIntervalMs: number;
  version: ServerVersion;
}

export class ApiServer {
  private servers: http.Server[] = [];
  private readonly sockets = new Set<import('node:net').Socket>();
  readonly denyRules: DenyRule[] = [];
  readonly failures: FailureRule[] = [];
  private readonly calls = new CallCounter();
  private readonly serving: Serving;
  url = '';
  httpsUrl = '';

  constructor(
    private readonly api: ObjectApi,
    nodes: NodeBackend,
    private readonly opts: ApiServerOptions,
  ) {
    this.serving = { api, nodes, identities: opts.identities, closers: new Set(), bookmarkIntervalMs: opts.bookmarkIntervalMs };
  }

  /** Listens on plain http and on https (same handler) on loopback; returns the http URL. */
  async listen(tls: { cert: Buffer; key: Buffer }): Promise<string> {
    const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      this.handle(req, res).catch((err: unknown) => {
        const e = err instanceof ApiError ? err : new ApiError(500, 'InternalError', `Internal error occurred: ${errMessage(err)}`);
        if (!(err instanceof ApiError)) console.error('simulator: unhandled error serving', req.method, req.url, err);
        if (!res.headersSent) sendStatus(res, e.toStatus());
        else res.end();
      });
    };
    const plain = http.createServer(handler);
    const secure = https.createServer({ cert: tls.cert, key: tls.key }, handler);
    for (const srv of [plain, secure]) {
      // kube-apiserver keeps idle connections 90 s (k8s.io/apiserver/pkg/server/secure_serving.go:
      // IdleTimeout 90 * time.Second); Node's default of 5 s closed sockets the clients' keep-alive
      // agents were reusing that moment, an ECONNRESET the real server would not cause.
      srv.keepAliveTimeout = 90_000;
      srv.on('connection', (s) => {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
      });
      srv.on('secureConnection', (s) => {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
      });
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(0, '127.0.0.1', () => resolve());
      });
      this.servers.push(srv);
    }
    this.url = `http://127.0.0.1:${(plain.address() as AddressInfo).port}`;
    this.httpsUrl = `https://127.0.0.1:${(secure.address() as AddressInfo).port}`;
    return this.url;
  }

  async close(): Promise<void> {
    const closers = this.serving.closers;
    for (const c of [...closers]) c();
    closers.clear();
    const servers = this.servers;
    this.servers = [];
    for (const sock of this.sockets) sock.destroy();
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }

  // ---------- counting (call-counts.ts) ----------

  apiCalls(): { total: number; byKey: Record<string, number> } {
    return this.calls.apiCalls();
  }

  /** Count for `verb` on `resource` (`pods`, `nodes/proxy`, `deployments`, or group-qualified `deployments.apps`). */
  callCount(verb: string, resource: string): number {
    return this.calls.callCount(verb, resource);
  }

  resetCalls(): void {
    this.calls.reset();
  }

  // ---------- request handling ----------

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const rawUrl = req.url ?? '/';
    const qIndex = rawUrl.indexOf('?');
    const rawPath = qIndex < 0 ? rawUrl : rawUrl.slice(0, qIndex);
    const query = new URLSearchParams(qIndex < 0 ? '' : rawUrl.slice(qIndex + 1));
    // Like Go's net/http (URL.Path), the real API server routes on the percent-decoded path:
    // `%2F` in a node-proxy path becomes `/` before go-restful splits it (kubernetes#14193).
    let path: string;
    try {
      path = decodeURIComponent(rawPath);
    } catch {
      throw badRequest(`invalid URL escape in path ${rawPath}`);
    }
    const method = (req.method ?? 'GET').toUpperCase();

    // Non-resource paths (health, version, discovery, openapi) are open to every
    // authenticated user, as the default system:discovery and system:public-info-viewer bindings make them.
    const user = authenticate(this.opts.identities, req);
    if (!user) {
      this.calls.total++;
      this.calls.bump('unauthenticated', path);
      throw unauthorized();
    }

    if (path === '/healthz' || path === '/livez' || path === '/readyz') {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('ok');
      return;
    }
    if (path === '/version' || path === '/version/') {
      sendJson(res, 200, versionInfo(this.opts.version));
      return;
    }
    const doc = discovery(this.api.registry, this.url, path);
    if (doc) {
      sendJson(res, 200, doc);
      return;
    }
    if (path.startsWith('/openapi/')) {
      const doc = openapi(this.api.registry, this.opts.version.gitVersion, path);
      if (!doc) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
      sendJson(res, 200, doc);
      return;
    }

    const info = requestInfo(method, path, query);
    if (!info) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
    const t = this.api.registry.find(info.group, info.version, info.resource);
    if (!t) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
    if (info.subresource && !t.subresources.includes(info.subresource)) {
      throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
    }

    this.calls.total++;
    const qualified = t.group ? `${t.plural}.${t.group}` : t.plural;
    this.calls.bump(info.verb, info.subresource ? `${qualified}/${info.subresource}` : qualified);

    authorize(this.denyRules, () => rbacObjects(this.serving), user, info, t);
    if (injectFailure(this.failures, info, path, req, res)) return;

    const body = method === 'GET' || method === 'DELETE' || method === 'HEAD' ? await readBody(req, true) : await readBody(req, false);
    if (serveReview(this.serving, res, t, info, body)) return;
    await dispatch(this.serving, req, res, t, info, query, body);
  }
}
