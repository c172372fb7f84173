// The one classification of connection errors (functions/core/runtime/transient.ts):
// per error code, as the error itself or as the cause of a wrapper, and on the
// errors Node, fetch and AbortSignal really raise.
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { TransientError } from '../../functions/core/runtime/errors.js';
import { isConnectionError, requestFailure, timeoutError } from '../../functions/core/runtime/transient.js';

const coded = (code: string, message = `${code.toLowerCase()} 127.0.0.1:1`) => Object.assign(new Error(message), { code });

describe('isConnectionError, per error code', () => {
  it.each([
    ['ECONNRESET', 'reset by the peer; also Node\'s "socket hang up" and an answer "aborted" mid-body'],
    ['ECONNREFUSED', 'nothing listens'],
    ['ECONNABORTED', 'aborted while connecting'],
    ['EPIPE', 'the peer closed while the request was being written'],
    ['ETIMEDOUT', 'connect or read timeout'],
    ['EHOSTUNREACH', 'no route to the host'],
    ['ENETUNREACH', 'no route to the network'],
    ['EHOSTDOWN', 'the host is down'],
    ['ENETDOWN', 'the network is down'],
    ['EAI_AGAIN', 'DNS server failure'],
    ['ENOTFOUND', 'a Service name that does not resolve yet'],
    ['UND_ERR_SOCKET', 'fetch: the other side closed'],
    ['UND_ERR_CONNECT_TIMEOUT', 'fetch: connect timeout'],
    ['UND_ERR_HEADERS_TIMEOUT', 'fetch: no headers in time'],
    ['UND_ERR_BODY_TIMEOUT', 'fetch: the body stalled'],
    ['ERR_STREAM_PREMATURE_CLOSE', 'a body stream that ended early'],
  ])('%s (%s) is one: itself, as a cause, and as the cause of a cause', (code) => {
    expect(isConnectionError(coded(code))).toBe(true);
    expect(isConnectionError(new TypeError('fetch failed', { cause: coded(code) }))).toBe(true);
    expect(isConnectionError(new Error('wrapped', { cause: new TypeError('terminated', { cause: coded(code) }) }))).toBe(true);
  });

  it.each([
    ['DEPTH_ZERO_SELF_SIGNED_CERT', 'a certificate nobody trusts'],
    ['ERR_TLS_CERT_ALTNAME_INVALID', 'a certificate for another name'],
    ['EPROTO', 'TLS spoken to a plain HTTP port'],
    ['HPE_INVALID_CONSTANT', 'an answer that is not HTTP'],
    ['ERR_INVALID_URL', 'a bad URL'],
    ['EACCES', 'a local permission error'],
  ])('%s (%s) is not: retrying cannot fix it', (code) => {
    expect(isConnectionError(coded(code))).toBe(false);
    expect(isConnectionError(new TypeError('fetch failed', { cause: coded(code) }))).toBe(false);
  });

  it("a deadline before the answer is one: AbortSignal.timeout(), as it is or as an AbortError's cause, and timeoutError()", () => {
    const timeout = new DOMException('The operation was aborted due to timeout', 'TimeoutError');
    expect(isConnectionError(timeout)).toBe(true);
    expect(isConnectionError(Object.assign(new Error('The operation was aborted', { cause: timeout }), { name: 'AbortError', code: 'ABORT_ERR' }))).toBe(true);
    expect(isConnectionError(timeoutError('no answer within 10 ms'))).toBe(true);
  });

  it('plain errors, an abort without a deadline, and non-errors are not', () => {
    expect(isConnectionError(new Error('boom'))).toBe(false);
    expect(isConnectionError(new DOMException('This operation was aborted', 'AbortError'))).toBe(false);
    expect(isConnectionError(new TransientError('S3 answered 503'))).toBe(false);
    expect(isConnectionError('ECONNRESET')).toBe(false);
    expect(isConnectionError(undefined)).toBe(false);
    expect(isConnectionError(null)).toBe(false);
  });

  it('stops at a cycle of causes', () => {
    const a = new Error('a');
    const b = new Error('b', { cause: a });
    Object.assign(a, { cause: b });
    expect(isConnectionError(a)).toBe(false);
  });
});

describe('requestFailure', () => {
  it('makes a connection error a TransientError, anything else a plain Error, both naming the request', () => {
    const transient = requestFailure('list pods in default', coded('ECONNRESET', 'socket hang up'));
    expect(transient).toBeInstanceOf(TransientError);
    expect(transient.message).toBe('list pods in default: socket hang up');
    const permanent = requestFailure('list pods in default', coded('DEPTH_ZERO_SELF_SIGNED_CERT', 'self-signed certificate'));
    expect(permanent).not.toBeInstanceOf(TransientError);
    expect(permanent.message).toBe('list pods in default: self-signed certificate');
    expect(permanent.cause).toBeInstanceOf(Error);
  });
});

describe('the errors Node and fetch raise', () => {
  let server: Server | undefined;
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
    server = undefined;
  });

  /** A server whose every request gets `answer`; its URL. */
  async function serve(answer: Parameters<typeof createServer>[1]): Promise<string> {
    server = createServer(answer);
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  }

  /** The error of a node:http GET (request or response). */
  function httpGet(url: string, options: { signal?: AbortSignal } = {}): Promise<unknown> {
    return new Promise((resolve) => {
      const req = request(url, options, (res) => {
        res.on('error', resolve);
        res.on('end', () => resolve(undefined));
        res.resume();
      });
      req.on('error', resolve);
      req.end();
    });
  }

  /** A port nothing listens on. */
  async function closedPort(): Promise<string> {
    const url = await serve(() => undefined);
    await new Promise((resolve) => server!.close(resolve));
    server = undefined;
    return url;
  }

  it('connection refused, with node:http and with fetch', async () => {
    const url = await closedPort();
    const viaHttp = await httpGet(url);
    expect(viaHttp).toMatchObject({ code: 'ECONNREFUSED' });
    expect(isConnectionError(viaHttp)).toBe(true);
    const viaFetch = await fetch(url).catch((err: unknown) => err);
    expect(isConnectionError(viaFetch)).toBe(true);
  });

  it('"socket hang up": the server closes the connection before answering', async () => {
    const url = await serve((req) => req.socket.destroy());
    const err = await httpGet(url);
    expect(err).toMatchObject({ message: 'socket hang up', code: 'ECONNRESET' });
    expect(isConnectionError(err)).toBe(true);
    expect(isConnectionError(await fetch(url).catch((e: unknown) => e))).toBe(true);
  });

  it('an answer that breaks off after its headers, with node:http and with fetch', async () => {
    const url = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': '1000' });
      // Cut once the headers and the first bytes are on the wire.
      res.write('partial', () => res.socket?.destroy());
    });
    const err = await httpGet(url);
    expect(err).toMatchObject({ message: 'aborted', code: 'ECONNRESET' });
    expect(isConnectionError(err)).toBe(true);
    const res = await fetch(url);
    const bodyError = await res.text().catch((e: unknown) => e);
    expect(bodyError).toBeInstanceOf(Error);
    expect(isConnectionError(bodyError)).toBe(true);
  });

  it('a server that never answers: AbortSignal.timeout with node:http and with fetch', async () => {
    const url = await serve(() => undefined);
    const viaHttp = await httpGet(url, { signal: AbortSignal.timeout(50) });
    expect(viaHttp).toMatchObject({ name: 'AbortError' });
    expect(isConnectionError(viaHttp)).toBe(true);
    const viaFetch = await fetch(url, { signal: AbortSignal.timeout(50) }).catch((e: unknown) => e);
    expect(viaFetch).toMatchObject({ name: 'TimeoutError' });
    expect(isConnectionError(viaFetch)).toBe(true);
  });
});
