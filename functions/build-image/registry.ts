// A client of the OCI distribution API over fetch: blob existence checks,
// streamed uploads, cross-repository mounts, manifests; Basic and Bearer auth
// as the registry's WWW-Authenticate challenge asks. Bodies stream: an archive
// of gigabytes passes through without being buffered.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { pipeline, Readable, Transform } from 'node:stream';
import { pipeline as pipelineAsync } from 'node:stream/promises';
import { TransientError } from '../core/runtime/errors.js';
import { requestFailure, timeoutError } from '../core/runtime/transient.js';
import { MediaTypes } from './checkpoint-image.js';
import { BlobMismatchError, type BlobRef, type ImageDigests, type ImageTarget, type StoredManifest } from './image-target.js';

export interface RegistryCredentials {
  username: string;
  password: string;
}

export interface RegistryClientOptions {
  /** Base URL with scheme, e.g. `http://127.0.0.1:5000` (see registryLocation). */
  baseUrl: string;
  credentials?: RegistryCredentials;
  /** Timeout of each request that does not stream a blob. */
  timeoutMs?: number;
  userAgent?: string;
  fetch?: typeof fetch;
}

/** A 4xx the registry answered, with its error JSON quoted; permanent. */
export class RegistryError extends Error {
  override readonly name: string = 'RegistryError';
  constructor(
    message: string,
    readonly status: number,
    readonly codes: readonly string[] = [],
  ) {
    super(message);
  }
}

/** 401/403 after authenticating (or credentials the registry/token server refused); permanent. */
export class RegistryAuthError extends RegistryError {
  override readonly name = 'RegistryAuthError';
}

const MANIFEST_ACCEPT = [MediaTypes.index, MediaTypes.manifest, 'application/vnd.docker.distribution.manifest.list.v2+json', 'application/vnd.docker.distribution.manifest.v2+json'].join(', ');
const DEFAULT_TOKEN_TTL_S = 60;
const TOKEN_EARLY_REFRESH_MS = 10_000;

type Challenge = { scheme: 'basic' } | { scheme: 'bearer'; realm: string; service?: string };

interface SendOptions {
  scopes: readonly string[];
  headers?: Record<string, string>;
  /** A replayable body, or a stream (sent once: auth must be settled before). */
  body?: Buffer | Readable;
  /** Absolute URL (an upload location) instead of a path under /v2/. */
  url?: string;
  /** For error messages: what this request does. */
  what: string;
}

export class RegistryClient implements ImageTarget {
  readonly kind = 'registry' as const;
  readonly host: string;
  private readonly baseUrl: URL;
  private readonly fetchFn: typeof fetch;
  private readonly timeoutMs: number;
  private challenge: Challenge | undefined;
  private readonly tokens = new Map<string, { token: string; expiresAt: number }>();

  constructor(private readonly options: RegistryClientOptions) {
    this.baseUrl = new URL(options.baseUrl);
    this.host = this.baseUrl.host;
    this.fetchFn = options.fetch ?? fetch;
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  async hasBlob(repo: string, digest: string): Promise<boolean> {
    const res = await this.send('HEAD', `${repo}/blobs/${digest}`, { scopes: [pushScope(repo)], what: `HEAD blob ${digest} in ${repo}` });
    return this.existence(res, `HEAD blob ${digest} in ${repo}`);
  }

  async mountBlob(repo: string, digest: string, from: string): Promise<boolean> {
    if (from === repo) return false;
    const what = `mount ${digest} from ${from} into ${repo}`;
    const query = new URLSearchParams({ mount: digest, from });
    const res = await this.send('POST', `${repo}/blobs/uploads/?${query}`, { scopes: [pushScope(repo), pullScope(from)], what });
    if (res.status === 201) {
      await drain(res);
      return true;
    }
    if (res.status === 202) {
      // Not mountable (absent there, or not readable for us): the registry opened an upload instead.
      await drain(res);
      await this.cancelUpload(this.location(res, what), repo);
      return false;
    }
    throw await this.failure(res, what);
  }

  async uploadBlob(repo: string, body: Readable, expected?: BlobRef): Promise<BlobRef> {
    const startWhat = `start blob upload in ${repo}`;
    const started = await this.send('POST', `${repo}/blobs/uploads/`, { scopes: [pushScope(repo)], what: startWhat });
    if (started.status !== 202) throw await this.failure(started, startWhat);
    await drain(started);
    const location = this.location(started, startWhat);
    try {
      return expected ? await this.putMonolithic(repo, location, body, expected) : await this.patchThenCommit(repo, location, body);
    } catch (err) {
      body.destroy();
      await this.cancelUpload(location, repo);
      throw err;
    }
  }

  async putManifest(repo: string, reference: string, mediaType: string, bytes: Buffer): Promise<void> {
    const what = `PUT manifest ${repo}:${reference}`;
    const res = await this.send('PUT', `${repo}/manifests/${reference}`, {
      scopes: [pushScope(repo)],
      headers: { 'content-type': mediaType },
      body: bytes,
      what,
    });
    if (res.status !== 201) throw await this.failure(res, what);
    await drain(res);
  }

  async hasManifest(repo: string, digest: string): Promise<boolean> {
    const what = `HEAD manifest ${repo}@${digest}`;
    const res = await this.send('HEAD', `${repo}/manifests/${digest}`, { scopes: [pushScope(repo)], headers: { accept: MANIFEST_ACCEPT }, what });
    return this.existence(res, what);
  }

  async getManifest(repo: string, reference: string): Promise<StoredManifest | undefined> {
    const what = `GET manifest ${repo}:${reference}`;
    const res = await this.send('GET', `${repo}/manifests/${reference}`, { scopes: [pullScope(repo)], headers: { accept: MANIFEST_ACCEPT }, what });
    if (res.status === 404) {
      await drain(res);
      return undefined;
    }
    if (res.status !== 200) throw await this.failure(res, what);
    const bytes = Buffer.from(
      await res.arrayBuffer().catch((err: unknown) => {
        throw requestFailure(`${what}: the answer broke off`, err);
      }),
    );
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    const mediaType = (res.headers.get('content-type') ?? '').split(';')[0]?.trim() || 'application/octet-stream';
    return { mediaType, digest, bytes };
  }

  async removeImage(repo: string, image: ImageDigests): Promise<void> {
    // The index first: once it is gone, nothing names the image, whatever happens next.
    await this.deleteManifest(repo, image.indexDigest);
    await this.deleteManifest(repo, image.manifestDigest);
  }

  /** Deletes a manifest by digest (the registry must allow deletes); false when it was not there. */
  async deleteManifest(repo: string, digest: string): Promise<boolean> {
    const what = `DELETE manifest ${repo}@${digest}`;
    return this.existence(await this.send('DELETE', `${repo}/manifests/${digest}`, { scopes: [deleteScope(repo)], what }), what);
  }

  /** Streams a blob whose digest is known: one PUT, and the registry verifies the digest. */
  private async putMonolithic(repo: string, location: URL, body: Readable, expected: BlobRef): Promise<BlobRef> {
    const what = `upload blob ${expected.digest} (${expected.size} bytes) to ${repo}`;
    const url = withQuery(location, { digest: expected.digest });
    const res = await this.send('PUT', '', { url: url.href, scopes: [pushScope(repo)], headers: { 'content-type': 'application/octet-stream' }, body, what });
    if (res.status !== 201) throw await this.failure(res, what, true);
    await drain(res);
    return { digest: expected.digest, size: expected.size };
  }

  /** Streams a blob whose digest is computed on the way (gzip): PATCH the bytes, then PUT the digest. */
  private async patchThenCommit(repo: string, location: URL, body: Readable): Promise<BlobRef> {
    const hash = createHash('sha256');
    let size = 0;
    // pipeline() hands the body's errors to the meter, which the request is reading.
    const meter = pipeline(
      body,
      new Transform({
        transform(chunk: Buffer, _enc, done) {
          hash.update(chunk);
          size += chunk.length;
          done(null, chunk);
        },
      }),
      () => undefined,
    );
    const patchWhat = `stream blob to ${repo}`;
    const patched = await this.send('PATCH', '', { url: location.href, scopes: [pushScope(repo)], headers: { 'content-type': 'application/octet-stream' }, body: meter, what: patchWhat });
    if (patched.status !== 202) throw await this.failure(patched, patchWhat);
    await drain(patched);
    const digest = `sha256:${hash.digest('hex')}`;
    const commitWhat = `commit blob ${digest} (${size} bytes) in ${repo}`;
    const committed = await this.send('PUT', '', {
      url: withQuery(this.location(patched, patchWhat), { digest }).href,
      scopes: [pushScope(repo)],
      body: Buffer.alloc(0),
      what: commitWhat,
    });
    if (committed.status !== 201) throw await this.failure(committed, commitWhat, true);
    await drain(committed);
    return { digest, size };
  }

  private async cancelUpload(location: URL, repo: string): Promise<void> {
    try {
      const res = await this.send('DELETE', '', { url: location.href, scopes: [pushScope(repo)], what: `cancel upload in ${repo}` });
      await drain(res);
    } catch {
      // Best effort: the registry expires abandoned uploads on its own.
    }
  }

  /** 200 (or 202, a DELETE accepted): it was there; 404: it was not; anything else throws. */
  private async existence(res: Response, what: string): Promise<boolean> {
    if (res.status === 200 || res.status === 202) {
      await drain(res);
      return true;
    }
    if (res.status === 404) {
      await drain(res);
      return false;
    }
    throw await this.failure(res, what);
  }

  /**
   * Sends one request with the credentials the registry asked for. A 401 to a
   * replayable request is answered once (challenge → credentials or token →
   * retry); a streamed body is never replayed, so its 401 means a token expired
   * mid-upload, which a retry of the whole push fixes (transient).
   */
  private async send(method: string, path: string, opts: SendOptions): Promise<Response> {
    const url = opts.url ?? new URL(`/v2/${path}`, this.baseUrl).href;
    const streamed = opts.body !== undefined && !Buffer.isBuffer(opts.body);
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = { ...opts.headers };
      if (this.options.userAgent) headers['user-agent'] = this.options.userAgent;
      const auth = await this.authorization(opts.scopes, opts.what);
      if (auth) headers.authorization = auth;
      const res = await this.fetchOnce(method, url, headers, opts, streamed);
      if (res.status !== 401) return res;
      const header = res.headers.get('www-authenticate');
      await drain(res);
      if (streamed) throw new TransientError(`${opts.what}: registry ${this.host} answered 401 mid-upload (token expired?)`);
      const challenge = header ? parseChallenge(header) : undefined;
      if (attempt > 0 || !challenge) {
        throw new RegistryAuthError(`${opts.what}: registry ${this.host} refused the ${this.describeAuth()}: 401${header ? ` (${header})` : ''}`, 401);
      }
      this.challenge = challenge;
      this.tokens.delete(scopeKey(opts.scopes));
    }
  }

  private async fetchOnce(method: string, url: string, headers: Record<string, string>, opts: SendOptions, streamed: boolean): Promise<Response> {
    // fetch never settles for a stream that failed before it started reading it.
    const body = streamed ? (opts.body as Readable) : undefined;
    if (body?.destroyed) throw body.errored ?? new Error(`${opts.what}: the blob stream was closed before the upload started`);
    try {
      // A streamed blob may take minutes: no deadline, and node:http, because
      // Node 20's fetch reads a request body stream without backpressure (it
      // buffered a whole 512 MiB upload in memory when tried).
      if (body) return await streamRequest(method, url, headers, body, this.timeoutMs);
      return await this.fetchFn(url, {
        method,
        headers,
        redirect: 'follow',
        ...(opts.body !== undefined ? { body: opts.body as Buffer } : {}),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      // A body that failed on its own (its source, or a digest check upstream) is not the registry's fault.
      const bodyError = body?.errored;
      if (bodyError) throw bodyError;
      throw requestFailure(`${opts.what}: registry ${this.host} unreachable`, err);
    }
  }

  private async authorization(scopes: readonly string[], what: string): Promise<string | undefined> {
    const challenge = this.challenge;
    if (!challenge) return undefined;
    const creds = this.options.credentials;
    if (challenge.scheme === 'basic') {
      if (!creds) throw new RegistryAuthError(`${what}: registry ${this.host} asks for Basic credentials and none are configured`, 401);
      return `Basic ${basic(creds)}`;
    }
    const key = scopeKey(scopes);
    const cached = this.tokens.get(key);
    if (cached && cached.expiresAt > Date.now()) return `Bearer ${cached.token}`;
    const token = await this.fetchToken(challenge, scopes, what);
    this.tokens.set(key, token);
    return `Bearer ${token.token}`;
  }

  private async fetchToken(challenge: { realm: string; service?: string }, scopes: readonly string[], what: string): Promise<{ token: string; expiresAt: number }> {
    const url = new URL(challenge.realm);
    if (challenge.service) url.searchParams.set('service', challenge.service);
    for (const scope of scopes) url.searchParams.append('scope', scope);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.options.credentials) headers.authorization = `Basic ${basic(this.options.credentials)}`;
    const tokenWhat = `${what}: token from ${url.origin}${url.pathname}`;
    let res: Response;
    try {
      res = await this.fetchFn(url, { headers, signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (err) {
      throw requestFailure(`${tokenWhat}: unreachable`, err);
    }
    const text = await res.text().catch((err: unknown) => {
      throw requestFailure(`${tokenWhat}: the answer broke off`, err);
    });
    if (res.status === 401 || res.status === 403) throw new RegistryAuthError(`${tokenWhat}: refused the ${this.describeAuth()}: ${res.status} ${text.slice(0, 300)}`, res.status);
    if (res.status === 429 || res.status >= 500) throw new TransientError(`${tokenWhat}: ${res.status} ${text.slice(0, 300)}`);
    if (res.status !== 200) throw new RegistryError(`${tokenWhat}: ${res.status} ${text.slice(0, 300)}`, res.status);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new RegistryError(`${tokenWhat}: answer is not JSON: ${text.slice(0, 200)}`, res.status);
    }
    const record = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
    const token = typeof record.token === 'string' ? record.token : typeof record.access_token === 'string' ? record.access_token : undefined;
    if (!token) throw new RegistryError(`${tokenWhat}: answer carries no token`, res.status);
    const ttlS = typeof record.expires_in === 'number' && record.expires_in > 0 ? record.expires_in : DEFAULT_TOKEN_TTL_S;
    return { token, expiresAt: Date.now() + Math.max(ttlS * 1000 - TOKEN_EARLY_REFRESH_MS, 1000) };
  }

  private async failure(res: Response, what: string, blobUpload = false): Promise<Error> {
    const text = await res.text().catch(() => '');
    const codes = errorCodes(text);
    const detail = `${res.status}${text ? ` ${text.trim().slice(0, 500)}` : ''}`;
    if (res.status === 429 || res.status >= 500) return new TransientError(`${what}: registry ${this.host} answered ${detail}`);
    if (res.status === 401 || res.status === 403) return new RegistryAuthError(`${what}: registry ${this.host} refused the ${this.describeAuth()}: ${detail}`, res.status, codes);
    if (blobUpload && (codes.includes('DIGEST_INVALID') || codes.includes('SIZE_INVALID'))) return new BlobMismatchError(`${what}: registry ${this.host} answered ${detail}`);
    return new RegistryError(`${what}: registry ${this.host} answered ${detail}`, res.status, codes);
  }

  private location(res: Response, what: string): URL {
    const value = res.headers.get('location');
    if (!value) throw new RegistryError(`${what}: registry ${this.host} answered ${res.status} without a Location header`, res.status);
    return new URL(value, this.baseUrl);
  }

  private describeAuth(): string {
    if (!this.challenge) return 'anonymous request';
    const who = this.options.credentials ? `credentials of ${JSON.stringify(this.options.credentials.username)}` : 'anonymous request';
    return `${who} (${this.challenge.scheme})`;
  }
}

/**
 * Where a registry setting points: `host[:port]` or a URL. Without a scheme,
 * loopback hosts and `insecure` registries are spoken to over plain HTTP.
 */
export function registryLocation(value: string, insecure: boolean): { baseUrl: string; host: string } {
  const explicit = /^https?:\/\//i.test(value);
  const url = new URL(explicit ? value : `${insecure || isLoopbackHost(value) ? 'http' : 'https'}://${value}`);
  if (url.pathname !== '/' && url.pathname !== '') throw new Error(`registry ${JSON.stringify(value)} must be host[:port] or a URL without a path`);
  if (explicit && url.protocol === 'http:' && !insecure && !isLoopbackHost(url.host)) {
    throw new Error(`registry ${JSON.stringify(value)} is plain HTTP on a non-loopback host; set KCR_REGISTRY_INSECURE=true to allow it`);
  }
  return { baseUrl: url.origin, host: url.host };
}

function isLoopbackHost(hostPort: string): boolean {
  const host = hostPort
    .replace(/:\d+$/, '')
    .replace(/^\[|\]$/g, '')
    .toLowerCase();
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** Credentials for `host` from a docker config.json (`auths`, as in a kubernetes.io/dockerconfigjson Secret). */
export function credentialsFromDockerConfig(config: unknown, host: string): RegistryCredentials | undefined {
  if (typeof config !== 'object' || config === null) return undefined;
  const auths = (config as Record<string, unknown>).auths;
  if (typeof auths !== 'object' || auths === null) return undefined;
  for (const [key, entry] of Object.entries(auths as Record<string, unknown>)) {
    if (normalizeAuthKey(key) !== host.toLowerCase() || typeof entry !== 'object' || entry === null) continue;
    const e = entry as Record<string, unknown>;
    if (typeof e.username === 'string' && typeof e.password === 'string') return { username: e.username, password: e.password };
    if (typeof e.auth === 'string') {
      const decoded = Buffer.from(e.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon > 0) return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
    }
  }
  return undefined;
}

/** Credentials from a user/password pair, else from a docker config.json file. */
export async function loadRegistryCredentials(opts: { host: string; username?: string; password?: string; dockerConfigPath?: string }): Promise<RegistryCredentials | undefined> {
  if (opts.username) return { username: opts.username, password: opts.password ?? '' };
  if (!opts.dockerConfigPath) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(opts.dockerConfigPath, 'utf8'));
  } catch (err) {
    throw new Error(`cannot read registry credentials from ${opts.dockerConfigPath}`, { cause: err });
  }
  return credentialsFromDockerConfig(parsed, opts.host);
}

/** Parses `Basic realm="…"` or `Bearer realm="…",service="…",scope="…"`; undefined for other schemes. */
export function parseChallenge(header: string): Challenge | undefined {
  const m = /^\s*(\w+)\s*(.*)$/.exec(header);
  if (!m) return undefined;
  const scheme = (m[1] as string).toLowerCase();
  const params: Record<string, string> = {};
  for (const p of (m[2] as string).matchAll(/(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g)) {
    params[(p[1] as string).toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : (p[3] ?? '');
  }
  if (scheme === 'basic') return { scheme: 'basic' };
  if (scheme === 'bearer' && params.realm) return { scheme: 'bearer', realm: params.realm, ...(params.service ? { service: params.service } : {}) };
  return undefined;
}

function normalizeAuthKey(key: string): string {
  return key
    .replace(/^[a-z]+:\/\//i, '')
    .replace(/\/.*$/, '')
    .toLowerCase();
}

function pushScope(repo: string): string {
  return `repository:${repo}:pull,push`;
}

function pullScope(repo: string): string {
  return `repository:${repo}:pull`;
}

function deleteScope(repo: string): string {
  return `repository:${repo}:delete`;
}

function scopeKey(scopes: readonly string[]): string {
  return [...scopes].sort().join(' ');
}

function basic(creds: RegistryCredentials): string {
  return Buffer.from(`${creds.username}:${creds.password}`).toString('base64');
}

function withQuery(url: URL, params: Record<string, string>): URL {
  const out = new URL(url.href);
  for (const [k, v] of Object.entries(params)) out.searchParams.set(k, v);
  return out;
}

function errorCodes(text: string): string[] {
  try {
    const parsed: unknown = JSON.parse(text);
    const errors = typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>).errors : undefined;
    if (!Array.isArray(errors)) return [];
    return errors.flatMap((e: unknown) => (typeof e === 'object' && e !== null && typeof (e as Record<string, unknown>).code === 'string' ? [(e as Record<string, string>).code as string] : []));
  } catch {
    return [];
  }
}

/** Sends `body` with backpressure (chunked) and answers with a fetch Response; fails when the socket idles for `idleMs`. */
function streamRequest(method: string, url: string, headers: Record<string, string>, body: Readable, idleMs: number): Promise<Response> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(target, { method, headers }, (res) => {
      const out = new Headers();
      for (const [name, value] of Object.entries(res.headers)) {
        for (const v of Array.isArray(value) ? value : value === undefined ? [] : [value]) out.append(name, v);
      }
      const status = res.statusCode ?? 0;
      const empty = status === 204 || status === 304;
      if (empty) res.resume();
      resolve(new Response(empty ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>), { status, headers: out }));
    });
    req.setTimeout(idleMs, () => req.destroy(timeoutError(`no progress for ${idleMs} ms`)));
    req.once('error', reject);
    pipelineAsync(body, req).catch(reject);
  });
}

async function drain(res: Response): Promise<void> {
  if (res.body) await res.body.cancel().catch(() => undefined);
}
