// node-agent: serves the kubelet's checkpoint directory read-only over HTTP so
// that store-artifact (which cannot mount the node's disk) can stream archives,
// and deletes an archive once it is stored. It serves nothing but regular files
// named like kubelet archives, directly in that one directory. For
// request-checkpoint it also asks its own node's kubelet for a checkpoint
// (POST /checkpoint/{namespace}/{pod}/{container}, kubelet-client.ts), with an
// identity that may do that and nothing else. GET /kubelet-check asks the kubelet
// whether that identity may, checkpointing nothing (for `kcr doctor`).
import { createHash, timingSafeEqual } from 'node:crypto';
import { constants as fsc, createReadStream, openSync, closeSync, existsSync, realpathSync, type ReadStream } from 'node:fs';
import { open, lstat, unlink } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { pino, type Logger } from 'pino';
import { KUBELET_ARCHIVE_NAME } from '../functions/core/contract/kubelet-archive.js';
import { errorMessage } from '../functions/core/runtime/errors.js';
import type { KubeletCheckpointer } from './kubelet-client.js';
import { kubeletCheck } from './kubelet-check.js';

const ROUTE_PREFIX = '/checkpoints/';
/** NAME_MAX of Linux file systems: the kubelet cannot have written a longer name. */
const MAX_NAME_BYTES = 255;

interface NodeAgentOptions {
  /** The checkpoint directory (the kubelet's /var/lib/kubelet/checkpoints). */
  dir: string;
  /** The bearer token clients must present; a function is asked on every request, so a rotated Secret file takes effect. */
  token: string | (() => string);
  /** 0 or unset: a random free port. */
  port?: number;
  /** Listen address; the DaemonSet uses 0.0.0.0, tests 127.0.0.1 (the default). */
  host?: string;
  /** Whether DELETE removes archives (ARCHITECTURE: on by default in the DaemonSet). */
  allowDelete: boolean;
  /** Its node's kubelet, for POST /checkpoint; unset: that route answers 501. */
  kubelet?: KubeletCheckpointer;
  logger?: Logger;
}

export interface NodeAgent {
  url: string;
  port: number;
  close(): Promise<void>;
}

type Resolved = { ok: true; name: string } | { ok: false; status: 400 | 404; reason: string };

/**
 * Maps the raw request path to an archive name, refusing anything that is not
 * one plain file name: separators (raw or percent-encoded), dot segments, NULs
 * and names other than the kubelet's.
 */
export function resolveArchiveName(rawPath: string): Resolved {
  if (!rawPath.startsWith(ROUTE_PREFIX)) return { ok: false, status: 404, reason: 'unknown route' };
  const encoded = rawPath.slice(ROUTE_PREFIX.length);
  if (encoded === '' || encoded.includes('/') || encoded.includes('\\')) return { ok: false, status: 400, reason: 'path separator in archive name' };
  let name: string;
  try {
    name = decodeURIComponent(encoded);
  } catch {
    return { ok: false, status: 400, reason: 'malformed percent-encoding' };
  }
  if (name.includes('/') || name.includes('\\') || name.includes('\0')) return { ok: false, status: 400, reason: 'encoded path separator or NUL in archive name' };
  if (name === '.' || name === '..' || name.startsWith('..')) return { ok: false, status: 400, reason: 'dot segment in archive name' };
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) return { ok: false, status: 400, reason: `archive name longer than ${MAX_NAME_BYTES} bytes` };
  if (!KUBELET_ARCHIVE_NAME.test(name)) return { ok: false, status: 404, reason: 'not a kubelet checkpoint archive name' };
  return { ok: true, name };
}

const CHECKPOINT_PREFIX = '/checkpoint/';
const KUBELET_CHECK = '/kubelet-check';
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** The kubelet's own bound on ?timeout= is none; a day keeps a typo from holding a connection for ever. */
const MAX_TIMEOUT_SECONDS = 86_400;

type CheckpointRoute = { ok: true; namespace: string; pod: string; container: string; timeoutSeconds: number } | { ok: false; status: 400 | 404; reason: string };

/**
 * POST /checkpoint/{namespace}/{pod}/{container}?timeout=N: names as Kubernetes
 * allows them (namespace and container DNS-1123 labels, pod a DNS-1123
 * subdomain), so nothing else reaches the kubelet's path; timeout in seconds,
 * default `defaultTimeout`.
 */
export function resolveCheckpointRoute(rawPath: string, query: URLSearchParams, defaultTimeout = 60): CheckpointRoute {
  if (!rawPath.startsWith(CHECKPOINT_PREFIX)) return { ok: false, status: 404, reason: 'unknown route' };
  const parts = rawPath.slice(CHECKPOINT_PREFIX.length).split('/');
  if (parts.length !== 3) return { ok: false, status: 400, reason: 'expected /checkpoint/{namespace}/{pod}/{container}' };
  const [namespace, pod, container] = parts as [string, string, string];
  if (!DNS1123_LABEL.test(namespace) || namespace.length > 63) return { ok: false, status: 400, reason: `invalid namespace ${JSON.stringify(namespace)}: must be a DNS-1123 label` };
  if (!DNS1123_SUBDOMAIN.test(pod) || pod.length > 253) return { ok: false, status: 400, reason: `invalid pod name ${JSON.stringify(pod)}: must be a DNS-1123 subdomain` };
  if (!DNS1123_LABEL.test(container) || container.length > 63) return { ok: false, status: 400, reason: `invalid container name ${JSON.stringify(container)}: must be a DNS-1123 label` };
  const t = query.get('timeout');
  if (t !== null && (!/^\d+$/.test(t) || Number(t) < 1 || Number(t) > MAX_TIMEOUT_SECONDS))
    return { ok: false, status: 400, reason: `invalid timeout ${JSON.stringify(t)}: seconds, 1 to ${MAX_TIMEOUT_SECONDS}` };
  return { ok: true, namespace, pod, container, timeoutSeconds: t === null ? defaultTimeout : Number(t) };
}

/** Compares hashes so neither the content nor the length of the token leaks through timing. */
function tokenMatches(presented: string, expected: string): boolean {
  const a = createHash('sha256').update(presented).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b) && expected.length > 0;
}

/**
 * The answer to a file-system error that the name caused (a file system with a
 * shorter NAME_MAX than 255, a name that is gone), so it is not taken for a
 * failure of the agent (500).
 */
function nameError(err: unknown): { status: 400 | 404; reason: string } | undefined {
  switch ((err as NodeJS.ErrnoException).code) {
    case 'ENOENT':
      return { status: 404, reason: 'no such archive' };
    case 'ELOOP':
      return { status: 404, reason: 'archive is a symlink' };
    case 'ENAMETOOLONG':
      return { status: 400, reason: 'archive name too long for the file system' };
    default:
      return undefined;
  }
}

function sendJson(res: ServerResponse, status: number, body: Record<string, unknown>, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export async function startNodeAgent(options: NodeAgentOptions): Promise<NodeAgent> {
  const log = options.logger ?? pino({ name: 'node-agent' });
  const expectedToken = typeof options.token === 'function' ? options.token : () => options.token as string;
  // The directory is resolved once and held open: files are opened through
  // /proc/self/fd/<dirfd>/<name>, which walks from the directory inode itself
  // (like openat), so swapping a path component for a symlink later changes nothing.
  const realDir = realpathSync(options.dir);
  const dirFd = openSync(realDir, fsc.O_RDONLY | fsc.O_DIRECTORY);
  const viaFd = existsSync(`/proc/self/fd/${dirFd}`);
  const pathOf = (name: string) => (viaFd ? `/proc/self/fd/${dirFd}/${name}` : join(realDir, name));

  const reject = (req: IncomingMessage, res: ServerResponse, status: number, reason: string, extra: Record<string, unknown> = {}) => {
    log.warn({ event: 'request-rejected', method: req.method, path: req.url, remote: req.socket.remoteAddress, status, reason, ...extra }, `rejected ${req.method} ${req.url}: ${reason}`);
    sendJson(res, status, { error: reason });
  };

  const serveArchive = async (req: IncomingMessage, res: ServerResponse, name: string) => {
    let handle;
    try {
      // O_NOFOLLOW: a symlink as the last component fails with ELOOP instead of being followed.
      handle = await open(pathOf(name), fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK);
    } catch (err) {
      const refused = nameError(err);
      if (refused) return reject(req, res, refused.status, refused.reason, { name });
      throw err;
    }
    let stream: ReadStream | undefined;
    try {
      // fstat the descriptor we will read, not the path, so a swap after open cannot fool the check.
      const st = await handle.stat();
      if (!st.isFile()) return reject(req, res, 404, 'not a regular file', { name });
      // A hard link would let anyone with write access to the directory expose any file of the same filesystem.
      if (st.nlink > 1) return reject(req, res, 404, 'archive has other hard links', { name, nlink: st.nlink });
      res.writeHead(200, { 'content-type': 'application/x-tar', 'content-length': st.size, 'last-modified': st.mtime.toUTCString() });
      if (req.method === 'HEAD') return void res.end();
      log.info({ event: 'archive-served', name, size: st.size }, `streaming ${name}`);
      stream = createReadStream('', { fd: handle, highWaterMark: 1 << 20 });
      handle = undefined; // the stream owns and closes it now
      await pipeline(stream, res);
    } finally {
      await handle?.close();
    }
  };

  const deleteArchive = async (req: IncomingMessage, res: ServerResponse, name: string) => {
    if (!options.allowDelete) {
      log.warn({ event: 'delete-disabled', name }, `refused to delete ${name}: deleting is disabled`);
      return sendJson(res, 405, { error: 'deleting archives is disabled on this node-agent (KCR_NODE_AGENT_ALLOW_DELETE=false)' }, { allow: 'GET, HEAD' });
    }
    let st;
    try {
      st = await lstat(pathOf(name));
    } catch (err) {
      const refused = nameError(err);
      if (refused) return reject(req, res, refused.status, refused.reason, { name });
      throw err;
    }
    if (st.isSymbolicLink()) return reject(req, res, 404, 'archive is a symlink', { name });
    if (!st.isFile()) return reject(req, res, 404, 'not a regular file', { name });
    try {
      // unlink never follows the last component, so a swap between lstat and here removes only a link in our directory.
      await unlink(pathOf(name));
    } catch (err) {
      // A concurrent DELETE of the same archive got there first.
      const refused = nameError(err);
      if (refused) return reject(req, res, refused.status, refused.reason, { name });
      throw err;
    }
    log.info({ event: 'archive-deleted', name, size: st.size }, `deleted ${name}`);
    res.writeHead(204).end();
  };

  /** The kubelet's answer as it gave it (its JSON on 200; its error text as `error`, with `kubeletStatus`), or 502/504 when it gave none. */
  const checkpoint = async (req: IncomingMessage, res: ServerResponse, route: Extract<CheckpointRoute, { ok: true }>) => {
    const kubelet = options.kubelet;
    if (!kubelet) return sendJson(res, 501, { error: 'this node-agent takes no checkpoints: KCR_KUBELET_URL is not set' });
    const what = `${route.namespace}/${route.pod}/${route.container}`;
    const started = performance.now();
    let answer;
    try {
      answer = await kubelet.checkpoint(route.namespace, route.pod, route.container, route.timeoutSeconds);
    } catch (err) {
      // The token or CA file is missing: this agent is misconfigured, not the kubelet.
      log.error({ event: 'checkpoint-failed', target: what, err: errorMessage(err) }, `checkpoint of ${what}: ${errorMessage(err)}`);
      return sendJson(res, 500, { error: errorMessage(err) });
    }
    const ms = Math.round(performance.now() - started);
    if (answer.kind !== 'answer') {
      log.warn({ event: 'checkpoint-no-answer', target: what, kind: answer.kind, ms, reason: answer.message }, `checkpoint of ${what}: ${answer.message}`);
      return sendJson(res, answer.kind === 'timeout' ? 504 : 502, { error: answer.message });
    }
    if (answer.status === 200) {
      log.info({ event: 'checkpoint-created', target: what, ms }, `checkpointed ${what}`);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(answer.body) });
      return void res.end(answer.body);
    }
    log.warn({ event: 'checkpoint-refused', target: what, kubeletStatus: answer.status, ms, reason: answer.body.trim() }, `the kubelet answered ${answer.status} for ${what}`);
    sendJson(res, answer.status >= 400 && answer.status < 600 ? answer.status : 502, { error: answer.body.trim(), kubeletStatus: answer.status });
  };

  /** 200 with a KubeletCheck whatever the kubelet said: the check itself worked. */
  const checkKubelet = async (res: ServerResponse) => {
    const kubelet = options.kubelet;
    if (!kubelet) return sendJson(res, 501, { error: 'this node-agent takes no checkpoints: KCR_KUBELET_URL is not set' });
    let answer;
    try {
      answer = await kubelet.probe();
    } catch (err) {
      log.error({ event: 'kubelet-check-failed', err: errorMessage(err) }, `kubelet check: ${errorMessage(err)}`);
      return sendJson(res, 500, { error: errorMessage(err) });
    }
    const result = kubeletCheck(kubelet.url, answer);
    log.info({ event: 'kubelet-check', ...result }, `kubelet check: ${result.access}`);
    sendJson(res, 200, { ...result });
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const rawUrl = req.url ?? '/';
    const rawPath = rawUrl.split('?', 1)[0] as string;
    if (rawPath === '/healthz') return sendJson(res, 200, { status: 'ok' });
    const auth = req.headers.authorization ?? '';
    const presented = auth.startsWith('Bearer ') ? auth.slice('Bearer '.length).trim() : '';
    if (!presented) return reject(req, res, 401, 'missing bearer token');
    if (!tokenMatches(presented, expectedToken())) return reject(req, res, 401, 'wrong bearer token');
    if (rawPath === KUBELET_CHECK) {
      if (req.method !== 'GET') return sendJson(res, 405, { error: `method ${req.method} not allowed` }, { allow: 'GET' });
      return checkKubelet(res);
    }
    if (rawPath.startsWith(CHECKPOINT_PREFIX)) {
      const route = resolveCheckpointRoute(rawPath, new URLSearchParams(rawUrl.slice(rawPath.length + 1)));
      if (!route.ok) return reject(req, res, route.status, route.reason);
      if (req.method !== 'POST') return sendJson(res, 405, { error: `method ${req.method} not allowed` }, { allow: 'POST' });
      return checkpoint(req, res, route);
    }
    const resolved = resolveArchiveName(rawPath);
    if (!resolved.ok) return reject(req, res, resolved.status, resolved.reason);
    if (req.method === 'GET' || req.method === 'HEAD') return serveArchive(req, res, resolved.name);
    if (req.method === 'DELETE') return deleteArchive(req, res, resolved.name);
    sendJson(res, 405, { error: `method ${req.method} not allowed` }, { allow: options.allowDelete ? 'GET, HEAD, DELETE' : 'GET, HEAD' });
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log.error({ event: 'request-failed', method: req.method, path: req.url, err }, `request ${req.method} ${req.url} failed`);
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const urlHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  log.info({ event: 'listening', port, dir: realDir, allowDelete: options.allowDelete }, `node-agent serving ${realDir} on ${host}:${port}`);
  return {
    url: `http://${urlHost}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          closeSync(dirFd);
          resolve();
        });
        server.closeAllConnections();
      }),
  };
}
