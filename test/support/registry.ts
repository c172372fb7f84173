// A real registry for tests: Debian's docker-registry (distribution 2.8) on
// 127.0.0.1 with a free port and a temp storage dir, optionally behind
// htpasswd basic auth; and a small proxy in front of it that counts requests
// and can demand Bearer tokens from a token endpoint of its own.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { startRegistryServer, type RegistryServer } from '../../local/registry-server.js';

export type TestRegistry = RegistryServer;

export interface RegistryOptions {
  /** htpasswd basic auth with this one user. */
  basicAuth?: { username: string; password: string };
}

export async function startRegistry(binary: string, options: RegistryOptions = {}): Promise<TestRegistry> {
  if (!options.basicAuth) return startRegistryServer({ binary });
  const dir = await mkdtemp(join(tmpdir(), 'kcr-htpasswd-'));
  const htpasswdPath = join(dir, 'htpasswd');
  await writeFile(htpasswdPath, `${options.basicAuth.username}:${bcrypt.hashSync(options.basicAuth.password, 6)}\n`);
  const registry = await startRegistryServer({ binary, htpasswdPath });
  return {
    ...registry,
    async stop() {
      await registry.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface ProxiedRequest {
  method: string;
  path: string;
  status: number;
}

export interface RegistryProxy {
  url: string;
  host: string;
  requests: ProxiedRequest[];
  tokenRequests: { scopes: string[]; user?: string }[];
  /** Requests whose method and path match, e.g. `count('PUT', /\/blobs\/uploads\//)`. */
  count(method: string, path: RegExp): number;
  close(): Promise<void>;
}

export interface ProxyOptions {
  /** Demand Bearer tokens, issued by the proxy's /token to this user (Basic) for the scopes asked. */
  bearer?: { username: string; password: string; service: string };
}

/**
 * Forwards every request to `upstream`, recording it. With `bearer`, answers
 * 401 + `WWW-Authenticate: Bearer realm=…` unless the request carries a token
 * whose scopes cover the repository and action, as a token-auth registry does.
 */
export async function startRegistryProxy(upstream: string, options: ProxyOptions = {}): Promise<RegistryProxy> {
  const target = new URL(upstream);
  const requests: ProxiedRequest[] = [];
  const tokenRequests: RegistryProxy['tokenRequests'] = [];
  const tokens = new Map<string, Set<string>>();
  let self = '';

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', self);
    if (options.bearer && url.pathname === '/token') return issueToken(req, res, url);
    if (options.bearer) {
      const needed = neededScope(req.method ?? 'GET', url.pathname);
      const from = url.searchParams.get('from');
      if (needed && from) needed.push(`${from}:pull`);
      const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      const granted = token ? tokens.get(token) : undefined;
      if (!granted || (needed && !needed.every((s) => granted.has(s)))) {
        requests.push({ method: req.method ?? '', path: url.pathname + url.search, status: 401 });
        req.resume();
        const scope = needed ? `,scope="${scopeString(needed)}"` : '';
        res.writeHead(401, { 'www-authenticate': `Bearer realm="${self}/token",service="${options.bearer.service}"${scope}`, 'content-type': 'application/json' });
        res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
        return;
      }
    }
    const headers = { ...req.headers };
    delete headers.authorization;
    const out = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers }, (upstreamRes) => {
      requests.push({ method: req.method ?? '', path: url.pathname + url.search, status: upstreamRes.statusCode ?? 0 });
      res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
      upstreamRes.pipe(res);
    });
    out.on('error', (err) => {
      res.writeHead(502);
      res.end(String(err));
    });
    req.pipe(out);
  });

  function issueToken(req: IncomingMessage, res: ServerResponse, url: URL): void {
    req.resume();
    const bearer = options.bearer as NonNullable<ProxyOptions['bearer']>;
    const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const [user, password] = basic ? Buffer.from(basic, 'base64').toString('utf8').split(':') : [];
    const scopes = url.searchParams.getAll('scope');
    tokenRequests.push({ scopes, ...(user ? { user } : {}) });
    if (user !== bearer.username || password !== bearer.password || url.searchParams.get('service') !== bearer.service) {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ details: 'bad credentials or service' }));
      return;
    }
    const granted = new Set<string>();
    for (const scope of scopes) {
      const [type, repo, actions] = scope.split(':');
      if (type !== 'repository' || !repo || !actions) continue;
      for (const action of actions.split(',')) granted.add(`${repo}:${action}`);
    }
    const token = randomBytes(16).toString('hex');
    tokens.set(token, granted);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token, expires_in: 300 }));
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  self = `http://127.0.0.1:${port}`;
  return {
    url: self,
    host: `127.0.0.1:${port}`,
    requests,
    tokenRequests,
    count: (method, path) => requests.filter((r) => r.method === method && path.test(r.path)).length,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The `<repo>:<action>` grants a request needs; undefined for /v2/ itself. */
function neededScope(method: string, path: string): string[] | undefined {
  const m = /^\/v2\/(.+?)\/(blobs|manifests)\//.exec(path);
  if (!m) return undefined;
  const repo = m[1] as string;
  if (method === 'DELETE' && m[2] === 'manifests') return [`${repo}:delete`];
  return method === 'GET' || method === 'HEAD' ? [`${repo}:pull`] : [`${repo}:pull`, `${repo}:push`];
}

function scopeString(grants: string[]): string {
  const byRepo = new Map<string, string[]>();
  for (const grant of grants) {
    const [repo = '', action = ''] = grant.split(':');
    byRepo.set(repo, [...(byRepo.get(repo) ?? []), action]);
  }
  return [...byRepo].map(([repo, actions]) => `repository:${repo}:${actions.join(',')}`).join(' ');
}
