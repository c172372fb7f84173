// Which failures of a request are the connection's rather than the server's:
// it could not be opened, or it broke before the whole answer arrived. The same
// request may work on a new connection, so every adapter (S3, the API server
// and the kubelet behind it, node-agents, the registry, the broker) treats them
// alike: TransientError, 503, and the broker retries.
import { TransientError, errorMessage } from './errors.js';

/**
 * Codes of a connection that failed or broke off. Node gives `socket hang up`
 * and an answer `aborted` mid-body the code ECONNRESET; UND_ERR_* are fetch's
 * (undici); ERR_STREAM_PREMATURE_CLOSE is a body stream that ended early
 * (client-node's node-fetch). ENOTFOUND counts: in a cluster a Service's name
 * resolves only once the Service exists (MinIO starting after its clients).
 */
const CONNECTION_ERROR_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ENETDOWN',
  'EAI_AGAIN',
  'ENOTFOUND',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

/** Wrappers (fetch's `fetch failed`, an AbortError) keep the socket's error as their cause; a few levels reach it. */
const MAX_CAUSE_DEPTH = 4;

/**
 * Whether `err`, or an error it was caused by, is a connection error: one of
 * the codes above, or a deadline that passed before the answer (a
 * `TimeoutError`, as AbortSignal.timeout() raises, or timeoutError()'s).
 */
export function isConnectionError(err: unknown): boolean {
  let e = err;
  for (let depth = 0; depth <= MAX_CAUSE_DEPTH && typeof e === 'object' && e !== null; depth++) {
    const { code, name, cause } = e as { code?: unknown; name?: unknown; cause?: unknown };
    if ((typeof code === 'string' && CONNECTION_ERROR_CODES.has(code)) || name === 'TimeoutError') return true;
    e = cause;
  }
  return false;
}

/** A request's own deadline passing before the answer, coded as the system's ETIMEDOUT so it classifies as one. */
export function timeoutError(message: string): Error {
  return Object.assign(new Error(message), { code: 'ETIMEDOUT' });
}

/** What a request that got no complete answer fails with: a TransientError for a connection error, else an Error; both name `what`. */
export function requestFailure(what: string, err: unknown): Error {
  const message = `${what}: ${errorMessage(err)}`;
  return isConnectionError(err) ? new TransientError(message, { cause: err }) : new Error(message, { cause: err });
}
