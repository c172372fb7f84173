// How the S3 adapter classifies an S3 server's failures: every 5xx and 429 is
// transient (the function answers 503 and the broker retries), whatever its
// error code or lack of one; an access error is not.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { S3ObjectStore } from '../../functions/core/storage/s3.js';
import { TransientError } from '../../functions/core/runtime/errors.js';

const errorXml = (code: string, message: string) =>
  `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><Resource>/kcr/x</Resource><RequestId>1</RequestId></Error>`;

/** An S3 endpoint that answers every request with one status and body. */
async function failingS3(status: number, body: string): Promise<{ server: Server; store: S3ObjectStore }> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(status, body ? { 'content-type': 'application/xml' } : {}).end(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, store: new S3ObjectStore({ endpoint: `http://127.0.0.1:${port}`, accessKey: 'test-access', secretKey: 'test-secret', bucket: 'kcr' }) };
}

/** The four operations the functions use, each settled. */
function operations(store: S3ObjectStore): Record<string, Promise<unknown>> {
  return {
    getJson: store.getJson('checkpoints/x/manifest.json'),
    putJson: store.putJson('events/x.json', { id: 'x' }),
    list: (async () => {
      for await (const info of store.list('events/')) void info;
    })(),
    upload: store.upload('checkpoints/x/archive.tar', Readable.from([Buffer.from('archive bytes')])),
  };
}

async function failures(store: S3ObjectStore): Promise<Record<string, unknown>> {
  const ops = operations(store);
  const settled = await Promise.allSettled(Object.values(ops));
  return Object.fromEntries(
    Object.keys(ops).map((name, i) => {
      const result = settled[i]!;
      return [name, result.status === 'rejected' ? result.reason : 'resolved'];
    }),
  );
}

describe('S3 errors', () => {
  let server: Server | undefined;
  beforeAll(() => {
    // minio retries a 5xx once and announces it on console.warn.
    vi.spyOn(console, 'warn').mockImplementation(() => {});
  });
  afterAll(() => {
    vi.restoreAllMocks();
  });
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
    server = undefined;
  });

  it.each([
    [500, 'no body', ''],
    [502, 'no body', ''],
    [503, 'no body', ''],
    [504, 'no body', ''],
    [429, 'no body', ''],
    [500, 'an unknown S3 error code', errorXml('XAcmeBackendDown', 'backend down')],
    [502, 'an unknown S3 error code', errorXml('XAcmeGatewayError', 'bad gateway')],
    [503, 'S3 error code SlowDown', errorXml('SlowDown', 'Please reduce your request rate.')],
  ])('HTTP %i with %s is a TransientError for getJson, putJson, list and upload', async (status, _what, body) => {
    const s3 = await failingS3(status, body);
    server = s3.server;
    const errors = await failures(s3.store);
    for (const [op, err] of Object.entries(errors)) {
      expect(err, op).toBeInstanceOf(TransientError);
      expect((err as Error).message, op).toMatch(new RegExp(`http://127\\.0\\.0\\.1:\\d+/kcr/.* failed: .*${status}`));
    }
  });

  it('HTTP 403 AccessDenied stays a plain error naming the code', async () => {
    const s3 = await failingS3(403, errorXml('AccessDenied', 'Access Denied.'));
    server = s3.server;
    const errors = await failures(s3.store);
    for (const [op, err] of Object.entries(errors)) {
      expect(err, op).toBeInstanceOf(Error);
      expect(err, op).not.toBeInstanceOf(TransientError);
      expect((err as Error).message, op).toMatch(/AccessDenied/);
    }
  });
});
