// The HTTP face of the simulated API server: routing of the Kubernetes REST paths,
// bearer-token authentication, RBAC-style denials, call counting, failure injection,
// discovery, watch streams, pod logs/eviction, scale and the node proxy.

import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { ApiError, badRequest, methodNotAllowed, notFound, reasonForCode, unauthorized, type Status } from './errors.js';
import { patchTypeFromContentType, type DeleteOptions, type ObjectApi } from './api.js';
import { apiVersionOf, resourceKey, VERBS, type ResourceType } from './resources.js';
import { matchesFields, matchesLabels, parseFieldSelector, parseLabelSelector } from './selectors.js';
import type { StoreEvent } from './store.js';
import { toTable, wantsTable } from './tables.js';
import { clone, isRecord, type KubeObject } from './types.js';

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

interface RequestInfo {
  verb: string;
  group: string;
  version: string;
  /** Resource plural, e.g. `pods`. */
  resource: string;
  subresource?: string;
  namespace?: string;
  name?: string;
  path: string;
}

export interface DenyRule {
  verb: string;
  /** `pods`, `nodes/proxy`, ... (`*` matches any). */
  resource: string;
  group?: string;
  namespace?: string;
  user?: string;
}

/**
 * Where an injected fault drops the connection: before the request is served
 * (nothing happened), or once it was served, after the answer's headers (the
 * work is done, its answer lost).
 */
export type ConnectionDrop = 'before-answer' | 'mid-answer';

interface FailureMatch {
  verb?: string;
  /** Resource plural, optionally with subresource: `pods`, `nodes/proxy`, `deployments`. */
  resource?: string;
  /** Tested against the request path (without query). */
  path?: RegExp;
  remaining: number;
}

/** An API error with this status, or a dropped connection. */
type FailureRule = FailureMatch & ({ code: number; reason?: string; message?: string; retryAfterSeconds?: number } | { drop: ConnectionDrop });

interface ApiServerOptions {
  tokens: Map<string, string>;
  bookmarkIntervalMs: number;
  version: { major: string; minor: string; gitVersion: string };
}

export class ApiServer {
  private servers: http.Server[] = [];
  private readonly sockets = new Set<import('node:net').Socket>();
  readonly denyRules: DenyRule[] = [];
  readonly failures: FailureRule[] = [];
  private readonly counts = new Map<string, number>();
  private total = 0;
  private closers = new Set<() => void>();
  url = '';
  httpsUrl = '';

  constructor(
    private readonly api: ObjectApi,
    private readonly nodes: NodeBackend,
    private readonly opts: ApiServerOptions,
  ) {}

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
    for (const c of [...this.closers]) c();
    this.closers.clear();
    const servers = this.servers;
    this.servers = [];
    for (const sock of this.sockets) sock.destroy();
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }

  // ---------- counting ----------

  apiCalls(): { total: number; byKey: Record<string, number> } {
    return { total: this.total, byKey: Object.fromEntries(this.counts) };
  }

  /** Count for `verb` on `resource` (`pods`, `nodes/proxy`, `deployments`, or group-qualified `deployments.apps`). */
  callCount(verb: string, resource: string): number {
    let n = 0;
    for (const [k, v] of this.counts) {
      const [kVerb, kRes] = k.split(' ') as [string, string];
      if (kVerb !== verb) continue;
      const [resPart, sub] = kRes.split('/') as [string, string | undefined];
      const plural = resPart.split('.')[0]!;
      const candidates = [kRes, sub ? `${plural}/${sub}` : plural];
      if (candidates.includes(resource)) n += v;
    }
    return n;
  }

  resetCalls(): void {
    this.counts.clear();
    this.total = 0;
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

    const user = this.authenticate(req);
    if (!user) {
      this.total++;
      this.bump('unauthenticated', path);
      throw unauthorized();
    }

    if (path === '/healthz' || path === '/livez' || path === '/readyz') {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('ok');
      return;
    }
    if (path === '/version' || path === '/version/') {
      sendJson(res, 200, {
        ...this.opts.version,
        gitCommit: '0000000000000000000000000000000000000000',
        gitTreeState: 'clean',
        buildDate: '2024-08-13T07:28:49Z',
        goVersion: 'go1.22.5',
        compiler: 'gc',
        platform: 'linux/amd64',
      });
      return;
    }
    const discovery = this.discovery(path);
    if (discovery) {
      sendJson(res, 200, discovery);
      return;
    }
    if (path.startsWith('/openapi/')) {
      const doc = this.openapi(path);
      if (!doc) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
      sendJson(res, 200, doc);
      return;
    }

    const info = this.requestInfo(method, path, query);
    if (!info) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
    const t = this.api.registry.find(info.group, info.version, info.resource);
    if (!t) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
    if (info.subresource && !t.subresources.includes(info.subresource)) {
      throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
    }

    this.total++;
    const qualified = t.group ? `${t.plural}.${t.group}` : t.plural;
    this.bump(info.verb, info.subresource ? `${qualified}/${info.subresource}` : qualified);

    this.authorize(user, info, t);
    if (this.injectFailure(info, path, req, res)) return;

    const body = method === 'GET' || method === 'DELETE' || method === 'HEAD' ? await readBody(req, true) : await readBody(req, false);
    await this.dispatch(req, res, t, info, query, body);
  }

  private bump(verb: string, resource: string): void {
    const k = `${verb} ${resource}`;
    this.counts.set(k, (this.counts.get(k) ?? 0) + 1);
  }

  private authenticate(req: http.IncomingMessage): string | undefined {
    const h = req.headers.authorization;
    if (!h) return undefined;
    const m = /^Bearer\s+(.+)$/i.exec(h);
    if (!m) return undefined;
    return this.opts.tokens.get(m[1]!.trim());
  }

  private authorize(user: string, info: RequestInfo, t: ResourceType): void {
    const res = info.subresource ? `${info.resource}/${info.subresource}` : info.resource;
    const denied = this.denyRules.some(
      (r) =>
        (r.user === undefined || r.user === user) &&
        (r.verb === '*' || r.verb === info.verb) &&
        (r.resource === '*' || r.resource === res) &&
        (r.group === undefined || r.group === t.group) &&
        (r.namespace === undefined || r.namespace === info.namespace),
    );
    if (!denied) return;
    const subject = info.name ? `${info.resource} "${info.name}"` : info.resource;
    const scope = t.namespaced && info.namespace ? `in the namespace "${info.namespace}"` : 'at the cluster scope';
    const message = `${subject} is forbidden: User "${user}" cannot ${info.verb} resource "${res}" in API group "${t.group}" ${scope}`;
    const details: Record<string, string> = { kind: info.resource };
    if (info.name) details.name = info.name;
    if (t.group) details.group = t.group;
    throw new ApiError(403, 'Forbidden', message, details);
  }

  /** Throws the API error of the first matching rule; true when it dropped the connection instead. */
  private injectFailure(info: RequestInfo, path: string, req: http.IncomingMessage, res: http.ServerResponse): boolean {
    const resource = info.subresource ? `${info.resource}/${info.subresource}` : info.resource;
    const rule = this.failures.find(
      (f) =>
        f.remaining > 0 &&
        (f.verb === undefined || f.verb === info.verb) &&
        (f.resource === undefined || f.resource === resource || f.resource === info.resource) &&
        (f.path === undefined || f.path.test(path)),
    );
    if (!rule) return false;
    rule.remaining--;
    if (rule.remaining <= 0) this.failures.splice(this.failures.indexOf(rule), 1);
    if ('drop' in rule) {
      if (rule.drop === 'before-answer') {
        req.socket.destroy();
        return true;
      }
      // Served as usual, but the connection closes once the headers are out.
      res.end = (() => {
        res.flushHeaders();
        res.socket?.end();
        return res;
      }) as typeof res.end;
      return false;
    }
    const reason = rule.reason ?? reasonForCode(rule.code);
    const message = rule.message ?? defaultFailureMessage(rule.code, info);
    const details: Record<string, unknown> = {};
    if (info.name) details.name = info.name;
    details.kind = info.resource;
    if (rule.retryAfterSeconds !== undefined) details.retryAfterSeconds = rule.retryAfterSeconds;
    throw new ApiError(rule.code, reason, message, details);
  }

  private requestInfo(method: string, path: string, query: URLSearchParams): RequestInfo | undefined {
    const segs = path.split('/').filter((s, i) => i > 0 || s !== '');
    if (segs[0] === '') segs.shift();
    let group: string;
    let version: string;
    let rest: string[];
    if (segs[0] === 'api' && segs.length >= 3) {
      group = '';
      version = segs[1]!;
      rest = segs.slice(2);
    } else if (segs[0] === 'apis' && segs.length >= 4) {
      group = segs[1]!;
      version = segs[2]!;
      rest = segs.slice(3);
    } else return undefined;
    let legacyWatch = false;
    if (rest[0] === 'watch') {
      legacyWatch = true;
      rest = rest.slice(1);
    }
    let namespace: string | undefined;
    if (rest[0] === 'namespaces' && rest.length >= 3 && rest[2] !== 'status' && rest[2] !== 'finalize') {
      namespace = rest[1];
      rest = rest.slice(2);
    }
    const resource = rest[0];
    if (!resource) return undefined;
    const name = rest[1];
    const subresource = rest[2];
    if (resource === 'namespaces' && name && !namespace) namespace = name;
    const isWatch = legacyWatch || query.get('watch') === 'true' || query.get('watch') === '1';
    let verb: string;
    switch (method) {
      case 'GET':
      case 'HEAD':
        verb = isWatch ? 'watch' : name ? 'get' : 'list';
        break;
      case 'POST':
        verb = 'create';
        break;
      case 'PUT':
        verb = 'update';
        break;
      case 'PATCH':
        verb = 'patch';
        break;
      case 'DELETE':
        verb = name ? 'delete' : 'deletecollection';
        break;
      default:
        verb = method.toLowerCase();
    }
    const info: RequestInfo = { verb, group, version, resource, path };
    if (namespace !== undefined) info.namespace = namespace;
    if (name !== undefined) info.name = name;
    if (subresource !== undefined) info.subresource = subresource;
    return info;
  }

  // ---------- discovery ----------

  private discovery(path: string): unknown {
    const p = path.replace(/\/+$/, '') || '/';
    const reg = this.api.registry;
    const serverAddress = this.url.replace(/^https?:\/\//, '');
    if (p === '/api') {
      return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }] };
    }
    if (p === '/apis') {
      return {
        kind: 'APIGroupList',
        apiVersion: 'v1',
        groups: reg.groups().map((g) => ({
          name: g.group,
          versions: g.versions.map((v) => ({ groupVersion: `${g.group}/${v}`, version: v })),
          preferredVersion: { groupVersion: `${g.group}/${g.versions[0]}`, version: g.versions[0] },
        })),
      };
    }
    let m = /^\/apis\/([^/]+)$/.exec(p);
    if (m) {
      const g = reg.groups().find((x) => x.group === m![1]);
      if (!g) return undefined;
      return {
        kind: 'APIGroup',
        apiVersion: 'v1',
        name: g.group,
        versions: g.versions.map((v) => ({ groupVersion: `${g.group}/${v}`, version: v })),
        preferredVersion: { groupVersion: `${g.group}/${g.versions[0]}`, version: g.versions[0] },
      };
    }
    let group: string | undefined;
    let version: string | undefined;
    if (p === '/api/v1') {
      group = '';
      version = 'v1';
    } else if ((m = /^\/apis\/([^/]+)\/([^/]+)$/.exec(p))) {
      group = m[1]!;
      version = m[2]!;
    }
    if (group === undefined || version === undefined) return undefined;
    const types = reg.all().filter((t) => t.group === group && t.version === version);
    if (types.length === 0) return undefined;
    const resources: Record<string, unknown>[] = [];
    for (const t of types) {
      const r: Record<string, unknown> = {
        name: t.plural,
        singularName: t.singular,
        namespaced: t.namespaced,
        kind: t.kind,
        verbs: VERBS,
      };
      if (t.shortNames) r.shortNames = t.shortNames;
      if (t.categories) r.categories = t.categories;
      resources.push(r);
      for (const sub of t.subresources) {
        const subKinds: Record<string, { kind: string; verbs: string[]; group?: string; version?: string }> = {
          status: { kind: t.kind, verbs: ['get', 'patch', 'update'] },
          scale: { kind: 'Scale', verbs: ['get', 'patch', 'update'], group: 'autoscaling', version: 'v1' },
          log: { kind: 'Pod', verbs: ['get'] },
          eviction: { kind: 'Eviction', verbs: ['create'], group: 'policy', version: 'v1' },
          binding: { kind: 'Binding', verbs: ['create'] },
          proxy: { kind: 'NodeProxyOptions', verbs: ['create', 'delete', 'get', 'patch', 'update'] },
          finalize: { kind: 'Namespace', verbs: ['update'] },
        };
        const s = subKinds[sub];
        if (!s) continue;
        const sr: Record<string, unknown> = { name: `${t.plural}/${sub}`, singularName: '', namespaced: t.namespaced, kind: s.kind, verbs: s.verbs };
        if (s.group) sr.group = s.group;
        if (s.version) sr.version = s.version;
        resources.push(sr);
      }
    }
    return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: group ? `${group}/${version}` : version, resources };
  }

  /**
   * A skeletal OpenAPI v3: only PATCH operations tagged with their GVK and the
   * `fieldValidation` parameter. kubectl reads it to learn that the server validates fields
   * itself (so it skips client-side schema validation); with no requestBody listed it builds
   * strategic merge patches from its compiled-in types, and merge patches for custom resources.
   * /openapi/v2 stays 404, as kubectl tolerates.
   */
  private openapi(path: string): unknown {
    const p = path.replace(/\/+$/, '');
    const reg = this.api.registry;
    const gvs = new Map<string, ResourceType[]>();
    for (const t of reg.all()) {
      const gv = t.group ? `apis/${t.group}/${t.version}` : `api/${t.version}`;
      gvs.set(gv, [...(gvs.get(gv) ?? []), t]);
    }
    if (p === '/openapi/v3') {
      return { paths: Object.fromEntries([...gvs.keys()].map((gv) => [gv, { serverRelativeURL: `/openapi/v3/${gv}` }])) };
    }
    const m = /^\/openapi\/v3\/(.+)$/.exec(p);
    const types = m ? gvs.get(m[1]!) : undefined;
    if (!m || !types) return undefined;
    const paths: Record<string, unknown> = {};
    for (const t of types) {
      const prefix = t.group ? `/apis/${t.group}/${t.version}` : `/api/${t.version}`;
      const item = t.namespaced ? `${prefix}/namespaces/{namespace}/${t.plural}/{name}` : `${prefix}/${t.plural}/{name}`;
      paths[item] = {
        patch: {
          operationId: `patch${t.kind}`,
          'x-kubernetes-action': 'patch',
          'x-kubernetes-group-version-kind': { group: t.group, version: t.version, kind: t.kind },
          parameters: [
            { name: 'dryRun', in: 'query', schema: { type: 'string', uniqueItems: true } },
            { name: 'fieldManager', in: 'query', schema: { type: 'string', uniqueItems: true } },
            { name: 'fieldValidation', in: 'query', schema: { type: 'string', uniqueItems: true } },
          ],
          responses: { '200': { description: 'OK' } },
        },
      };
    }
    return { openapi: '3.0.0', info: { title: 'Kubernetes', version: this.opts.version.gitVersion }, paths, components: { schemas: {} } };
  }

  // ---------- verbs ----------

  private async dispatch(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    t: ResourceType,
    info: RequestInfo,
    query: URLSearchParams,
    body: Buffer,
  ): Promise<void> {
    const ns = t.namespaced ? info.namespace : undefined;
    if (t.namespaced && !ns && info.name) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
    const dryRun = query.getAll('dryRun').includes('All');
    const accept = req.headers.accept;
    const sub = info.subresource;

    if (sub === 'proxy' && t.kind === 'Node') {
      await this.nodeProxy(res, info, query, body);
      return;
    }
    if (sub === 'log' && t.kind === 'Pod') {
      if (info.verb !== 'get') throw methodNotAllowed();
      this.podLog(req, res, ns!, info.name!, query);
      return;
    }
    if (sub === 'eviction' && t.kind === 'Pod') {
      if (info.verb !== 'create') throw methodNotAllowed();
      const ev = parseJson(body);
      const deleteOptions = isRecord(ev) && isRecord(ev.deleteOptions) ? ev.deleteOptions : {};
      this.api.delete(t, ns, info.name!, deleteOptionsFrom(deleteOptions, new URLSearchParams()));
      sendJson(res, 201, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 });
      return;
    }
    if (sub === 'binding' && t.kind === 'Pod') {
      if (info.verb !== 'create') throw methodNotAllowed();
      const b = parseJson(body);
      const target = isRecord(b) && isRecord(b.target) ? b.target : {};
      const node = typeof target.name === 'string' ? target.name : '';
      this.api.mutate(t, ns, info.name!, (p) => {
        p.spec = { ...(p.spec ?? {}), nodeName: node };
      });
      sendJson(res, 201, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 });
      return;
    }
    if (sub === 'scale') {
      await this.scale(res, t, ns, info, req, body, dryRun);
      return;
    }

    switch (info.verb) {
      case 'get': {
        const o = this.api.get(t, ns, info.name!);
        const view = sub === 'status' || !sub ? o : o;
        if (wantsTable(accept)) sendJson(res, 200, toTable(t, [view], view.metadata.resourceVersion ?? '', query.get('includeObject')));
        else sendJson(res, 200, view);
        return;
      }
      case 'list':
        this.list(res, t, ns, query, accept);
        return;
      case 'watch':
        this.watch(req, res, t, ns, info, query);
        return;
      case 'create': {
        if (info.name && !sub) throw methodNotAllowed();
        const o = this.api.create(t, ns, parseJson(body), { dryRun });
        sendJson(res, 201, o);
        return;
      }
      case 'update': {
        const o = this.api.update(t, ns, info.name!, parseJson(body), { subresource: sub, dryRun });
        sendJson(res, 200, o);
        return;
      }
      case 'patch': {
        const type = patchTypeFromContentType(req.headers['content-type'], t);
        const o = this.api.patch(t, ns, info.name!, type, parseJson(body), { subresource: sub, dryRun });
        sendJson(res, 200, o);
        return;
      }
      case 'delete': {
        const opts = deleteOptionsFrom(body.length ? parseJson(body) : {}, query);
        opts.dryRun = dryRun;
        const { object, removed } = this.api.delete(t, ns, info.name!, opts);
        // Pods, namespaces and custom resources answer with the object; others with a Status.
        if (!removed || t.kind === 'Pod' || t.kind === 'Namespace' || t.custom) sendJson(res, 200, object);
        else {
          sendJson(res, 200, {
            kind: 'Status',
            apiVersion: 'v1',
            metadata: {},
            status: 'Success',
            details: { name: info.name, group: t.group || undefined, kind: t.plural, uid: object.metadata.uid },
          });
        }
        return;
      }
      case 'deletecollection': {
        const opts = deleteOptionsFrom(body.length ? parseJson(body) : {}, query);
        const items = this.api.list(t, ns, {
          labelSelector: parseLabelSelector(query.get('labelSelector')),
          fieldSelector: parseFieldSelector(query.get('fieldSelector')),
        });
        const out: KubeObject[] = [];
        for (const o of items) {
          try {
            out.push(this.api.delete(t, o.metadata.namespace, o.metadata.name!, { ...opts }).object);
          } catch (err) {
            if (!(err instanceof ApiError && err.code === 404)) throw err;
          }
        }
        sendJson(res, 200, { kind: `${t.kind}List`, apiVersion: apiVersionOf(t), metadata: { resourceVersion: String(this.api.store.currentRv()) }, items: out });
        return;
      }
      default:
        throw methodNotAllowed();
    }
  }

  private list(res: http.ServerResponse, t: ResourceType, ns: string | undefined, query: URLSearchParams, accept: string | undefined): void {
    const labelSelector = parseLabelSelector(query.get('labelSelector'));
    const fieldSelector = parseFieldSelector(query.get('fieldSelector'));
    const rv = String(this.api.store.currentRv());
    let items = this.api.list(t, ns, { labelSelector, fieldSelector });
    const limit = Number(query.get('limit') ?? '0');
    const cont = query.get('continue');
    const metadata: Record<string, unknown> = { resourceVersion: rv };
    if (cont) {
      let start: string;
      try {
        const parsed: unknown = JSON.parse(Buffer.from(cont, 'base64url').toString('utf8'));
        if (!isRecord(parsed) || typeof parsed.start !== 'string') throw new Error('bad token');
        start = parsed.start;
      } catch {
        throw badRequest('continue key is not valid: illegal base64 data or malformed token');
      }
      items = items.filter((o) => `${o.metadata.namespace ?? ''}/${o.metadata.name}` > start);
    }
    if (limit > 0 && items.length > limit) {
      const last = items[limit - 1]!;
      metadata.continue = Buffer.from(JSON.stringify({ start: `${last.metadata.namespace ?? ''}/${last.metadata.name}`, rv })).toString('base64url');
      metadata.remainingItemCount = items.length - limit;
      items = items.slice(0, limit);
    }
    if (wantsTable(accept)) {
      sendJson(res, 200, { ...toTable(t, items, rv, query.get('includeObject')), metadata });
      return;
    }
    sendJson(res, 200, { kind: `${t.kind}List`, apiVersion: apiVersionOf(t), metadata, items });
  }

  private watch(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    t: ResourceType,
    ns: string | undefined,
    info: RequestInfo,
    query: URLSearchParams,
  ): void {
    const labelSelector = parseLabelSelector(query.get('labelSelector'));
    const fieldSelector = parseFieldSelector(query.get('fieldSelector'));
    // Watching one object by name (legacy path, or fieldSelector metadata.name).
    if (info.name) fieldSelector.push({ path: 'metadata.name', op: 'eq', value: info.name });
    const matches = (o: KubeObject | undefined): boolean =>
      !!o &&
      (ns === undefined || o.metadata.namespace === ns) &&
      matchesLabels(labelSelector, o.metadata.labels) &&
      matchesFields(fieldSelector, { apiVersion: apiVersionOf(t), kind: t.kind, ...o });
    const key = resourceKey(t);
    const rvParam = query.get('resourceVersion');
    const bookmarks = query.get('allowWatchBookmarks') === 'true';
    const timeoutSeconds = Number(query.get('timeoutSeconds') ?? '0');

    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-cache, private', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    const write = (type: string, object: unknown): void => {
      if (!res.writableEnded) res.write(`${JSON.stringify({ type, object })}\n`);
    };
    const typed = (o: KubeObject): KubeObject => ({ apiVersion: apiVersionOf(t), kind: t.kind, ...o });
    const deliver = (ev: StoreEvent): void => {
      if (ev.resource !== key) return;
      const now = matches(ev.object);
      const before = ev.type === 'MODIFIED' ? matches(ev.oldObject) : ev.type === 'DELETED';
      if (ev.type === 'ADDED' && now) write('ADDED', typed(ev.object));
      else if (ev.type === 'DELETED' && now) write('DELETED', typed(ev.object));
      else if (ev.type === 'MODIFIED') {
        if (now && before) write('MODIFIED', typed(ev.object));
        else if (now && !before) write('ADDED', typed(ev.object));
        else if (!now && before) write('DELETED', typed(ev.object));
      }
    };

    if (!rvParam || rvParam === '0') {
      // No starting point: synthetic ADDED for the current state, as the watch cache does.
      for (const o of this.api.list(t, ns)) if (matches(o)) write('ADDED', o);
    } else {
      const after = Number(rvParam);
      const replay = Number.isFinite(after) ? this.api.store.eventsSince(key, after) : undefined;
      if (!replay) {
        const status: Status = {
          kind: 'Status',
          apiVersion: 'v1',
          metadata: {},
          status: 'Failure',
          message: `too old resource version: ${rvParam} (${this.api.store.oldestResumableRv()})`,
          reason: 'Expired',
          code: 410,
        };
        write('ERROR', status);
        res.end();
        return;
      }
      for (const ev of replay) deliver(ev);
    }

    const unsubscribe = this.api.store.subscribe(deliver);
    let bookmarkTimer: NodeJS.Timeout | undefined;
    if (bookmarks) {
      bookmarkTimer = setInterval(() => {
        write('BOOKMARK', { kind: t.kind, apiVersion: apiVersionOf(t), metadata: { resourceVersion: String(this.api.store.currentRv()) } });
      }, this.opts.bookmarkIntervalMs);
      bookmarkTimer.unref();
    }
    let timeout: NodeJS.Timeout | undefined;
    const close = (): void => {
      unsubscribe();
      if (bookmarkTimer) clearInterval(bookmarkTimer);
      if (timeout) clearTimeout(timeout);
      this.closers.delete(close);
      if (!res.writableEnded) res.end();
    };
    if (timeoutSeconds > 0) {
      timeout = setTimeout(close, timeoutSeconds * 1000);
      timeout.unref();
    }
    this.closers.add(close);
    req.on('close', close);
    res.on('close', close);
  }

  private podLog(req: http.IncomingMessage, res: http.ServerResponse, ns: string, name: string, query: URLSearchParams): void {
    const podType = this.api.registry.find('', 'v1', 'pods')!;
    const pod = this.api.get(podType, ns, name);
    const container = query.get('container') ?? undefined;
    const previous = query.get('previous') === 'true';
    let lines = this.nodes.logs(pod, container, { previous });
    const tail = query.get('tailLines');
    if (tail !== null) lines = lines.slice(Math.max(0, lines.length - Number(tail)));
    res.writeHead(200, { 'content-type': 'text/plain', 'transfer-encoding': 'chunked' });
    res.write(lines.map((l) => `${l}\n`).join(''));
    if (query.get('follow') !== 'true') {
      res.end();
      return;
    }
    const stop = this.nodes.followLogs(pod, container, (line) => {
      if (!res.writableEnded) res.write(`${line}\n`);
    });
    const close = (): void => {
      stop();
      this.closers.delete(close);
      if (!res.writableEnded) res.end();
    };
    this.closers.add(close);
    req.on('close', close);
  }

  private async nodeProxy(res: http.ServerResponse, info: RequestInfo, query: URLSearchParams, body: Buffer): Promise<void> {
    const nodeType = this.api.registry.find('', 'v1', 'nodes')!;
    this.api.get(nodeType, undefined, info.name!);
    const rest = info.path.split('/').slice(6).join('/');
    const out = await this.nodes.proxy(info.name!, { method: info.verb, path: `/${rest}`, query, body });
    res.writeHead(out.status, { 'content-type': out.contentType });
    res.end(out.body);
  }

  private async scale(
    res: http.ServerResponse,
    t: ResourceType,
    ns: string | undefined,
    info: RequestInfo,
    req: http.IncomingMessage,
    body: Buffer,
    dryRun: boolean,
  ): Promise<void> {
    const toScale = (o: KubeObject): Record<string, unknown> => {
      const spec = o.spec ?? {};
      const sel = isRecord(spec.selector) && isRecord(spec.selector.matchLabels) ? spec.selector.matchLabels : {};
      return {
        kind: 'Scale',
        apiVersion: 'autoscaling/v1',
        metadata: { name: o.metadata.name, namespace: o.metadata.namespace, uid: o.metadata.uid, resourceVersion: o.metadata.resourceVersion, creationTimestamp: o.metadata.creationTimestamp },
        spec: { replicas: spec.replicas ?? 0 },
        status: {
          replicas: isRecord(o.status) && typeof o.status.replicas === 'number' ? o.status.replicas : 0,
          selector: Object.entries(sel).map(([k, v]) => `${k}=${String(v)}`).join(','),
        },
      };
    };
    const cur = this.api.get(t, ns, info.name!);
    if (info.verb === 'get') {
      sendJson(res, 200, toScale(cur));
      return;
    }
    let desired: unknown;
    if (info.verb === 'update') desired = parseJson(body);
    else if (info.verb === 'patch') {
      const type = patchTypeFromContentType(req.headers['content-type'], t);
      const { mergePatch, strategicMergePatch, jsonPatch } = await import('./patch.js');
      const base = toScale(cur);
      const p = parseJson(body);
      desired = type === 'json' ? jsonPatch(base, p) : type === 'merge' ? mergePatch(base, p) : strategicMergePatch(base, p);
    } else throw methodNotAllowed();
    const replicas = isRecord(desired) && isRecord(desired.spec) ? desired.spec.replicas : undefined;
    if (typeof replicas !== 'number') throw badRequest('Scale: spec.replicas must be a number');
    const next = clone(cur);
    next.spec = { ...(next.spec ?? {}), replicas };
    const rv = isRecord(desired) && isRecord(desired.metadata) ? desired.metadata.resourceVersion : undefined;
    if (typeof rv === 'string') next.metadata.resourceVersion = rv;
    else delete next.metadata.resourceVersion;
    const stored = this.api.update(t, ns, info.name!, next, { dryRun });
    sendJson(res, 200, toScale(stored));
  }
}

// ---------- helpers ----------

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function defaultFailureMessage(code: number, info: RequestInfo): string {
  const subject = info.name ? `${info.resource} "${info.name}"` : info.resource;
  switch (code) {
    case 429:
      return 'Too many requests, please try again later.';
    case 500:
      return 'Internal error occurred: injected failure';
    case 503:
      return 'the server is currently unable to handle the request';
    case 504:
      return 'the server was unable to return a response in the time allotted, but may still be processing the request';
    case 404:
      return `${subject} not found`;
    case 409:
      return `Operation cannot be fulfilled on ${subject}: the object has been modified; please apply your changes to the latest version and try again`;
    default:
      return `injected failure (${code}) for ${info.verb} ${subject}`;
  }
}

function sendJson(res: http.ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sendStatus(res: http.ServerResponse, status: Status): void {
  const headers: Record<string, string> = {};
  if (status.details?.retryAfterSeconds !== undefined) headers['retry-after'] = String(status.details.retryAfterSeconds);
  const text = JSON.stringify(status);
  res.writeHead(status.code, { ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) });
  res.end(text);
}

async function readBody(req: http.IncomingMessage, optional: boolean): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const b = Buffer.concat(chunks);
  void optional;
  return b;
}

function parseJson(body: Buffer): unknown {
  if (body.length === 0) throw badRequest('the request body is empty');
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch (err) {
    throw badRequest(`the request body is not valid JSON: ${errMessage(err)}`);
  }
}

function deleteOptionsFrom(body: unknown, query: URLSearchParams): DeleteOptions {
  const b = isRecord(body) ? body : {};
  const opts: DeleteOptions = {};
  const pp = query.get('propagationPolicy') ?? (typeof b.propagationPolicy === 'string' ? b.propagationPolicy : undefined);
  if (pp !== undefined && pp !== null) {
    if (pp !== 'Background' && pp !== 'Foreground' && pp !== 'Orphan') {
      throw new ApiError(422, 'Invalid', `DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: "${pp}": supported values: "Foreground", "Background", "Orphan"`);
    }
    opts.propagationPolicy = pp;
  } else if (b.orphanDependents === true || query.get('orphanDependents') === 'true') opts.propagationPolicy = 'Orphan';
  const gp = query.get('gracePeriodSeconds') ?? (typeof b.gracePeriodSeconds === 'number' ? String(b.gracePeriodSeconds) : null);
  if (gp !== null && gp !== '') opts.gracePeriodSeconds = Math.max(0, Number(gp));
  if (isRecord(b.preconditions)) {
    opts.preconditions = {};
    if (typeof b.preconditions.uid === 'string') opts.preconditions.uid = b.preconditions.uid;
    if (typeof b.preconditions.resourceVersion === 'string') opts.preconditions.resourceVersion = b.preconditions.resourceVersion;
  }
  if (Array.isArray(b.dryRun) && b.dryRun.includes('All')) opts.dryRun = true;
  return opts;
}

export { notFound };
