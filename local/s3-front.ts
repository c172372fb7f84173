// A pass-through HTTP proxy in front of an S3 server on loopback, for what
// the embedded s3rver offers in-process and a server of its own (Swift) does
// not: a hook that sees every request (the local mode's upload progress, the
// tests' request log) and injected failures. Requests go through unchanged,
// Host header included, so their SigV4 signatures stay valid.
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type S3RequestHook = (req: IncomingMessage, res: ServerResponse, url: URL) => void;

export interface S3Front {
  endpoint: string;
  /** Answers the next `count` requests with `status` and an S3 error body. */
  failNext(count: number, status: 500 | 503): void;
  stop(): Promise<void>;
}

export async function startS3Front(target: string, onRequest?: S3RequestHook): Promise<S3Front> {
  const upstream = new URL(target);
  let failures: { count: number; status: 500 | 503 } = { count: 0, status: 503 };
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://s3');
    onRequest?.(req, res, url);
    if (failures.count > 0) {
      failures.count--;
      req.resume();
      res.writeHead(failures.status, { 'content-type': 'application/xml' }).end(s3Error(failures.status === 503 ? 'ServiceUnavailable' : 'InternalError', 'injected failure'));
      return;
    }
    const out = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    out.on('error', (err) => {
      if (res.headersSent) res.destroy(err);
      else res.writeHead(502, { 'content-type': 'application/xml' }).end(s3Error('InternalError', `${target} unreachable: ${err.message}`));
    });
    req.pipe(out);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    failNext(count, status) {
      failures = { count, status };
    },
    stop: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function s3Error(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message></Error>`;
}
