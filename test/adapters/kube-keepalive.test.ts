import https from 'node:https';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeConfig } from '@kubernetes/client-node';
import { Kubernetes } from '../../functions/core/kubernetes/kubernetes.js';
import { KeepAliveAgents } from '../../functions/core/kubernetes/keepalive.js';

const TLS_DIR = join(import.meta.dirname, '..', '..', 'simulator', 'tls');
const cert = readFileSync(join(TLS_DIR, 'loopback.crt'));
const key = readFileSync(join(TLS_DIR, 'loopback.key'));

function kubeConfigFor(server: string, token: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server, caData: cert.toString('base64') }],
    users: [{ name: 'u', token }],
    contexts: [{ name: 'ctx', cluster: 'c', user: 'u' }],
    currentContext: 'ctx',
  });
  return kc;
}

describe('API server connections are kept alive', () => {
  let server: https.Server;
  let url = '';
  let tlsConnections = 0;
  const authorizations: string[] = [];

  beforeAll(async () => {
    server = https.createServer({ cert, key }, (req, res) => {
      authorizations.push(req.headers.authorization ?? '');
      req.resume();
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        if (req.method === 'GET') res.end(JSON.stringify({ kind: 'PodList', apiVersion: 'v1', metadata: {}, items: [] }));
        else if (req.url?.includes('/proxy/checkpoint/')) res.end(JSON.stringify({ items: ['/var/lib/kubelet/checkpoints/checkpoint-p_ns-c-2025-01-01T00:00:00Z.tar'] }));
        else res.end(JSON.stringify({ kind: 'Event', apiVersion: 'v1', metadata: { name: 'e', namespace: 'ns' } }));
      });
    });
    server.on('secureConnection', () => tlsConnections++);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('sends generated-client calls and the direct kubelet checkpoint call over one TLS connection, each with the credentials', async () => {
    const kube = new Kubernetes(kubeConfigFor(url, 'sekret'));
    tlsConnections = 0;
    authorizations.length = 0;
    for (let i = 0; i < 3; i++) {
      await kube.listPods('ns', 'app=x');
      await kube.checkpoint('node-a', 'ns', 'p', 'c', 30);
      await kube.createEvent({ metadata: { generateName: 'p.', namespace: 'ns' }, involvedObject: { kind: 'Pod', name: 'p', namespace: 'ns' } });
    }
    expect(authorizations).toEqual(Array(9).fill('Bearer sekret'));
    expect(tlsConnections).toBe(1);
  });

  it('keeps one agent while the TLS material is the same, and takes a new one when it changes', () => {
    const agents = new KeepAliveAgents(kubeConfigFor(url, 't'));
    const first = agents.reuse(new https.Agent({ ca: Buffer.from(cert) }));
    // client-node re-reads the material for every request: equal contents in new buffers.
    expect(agents.reuse(new https.Agent({ ca: Buffer.from(cert) }))).toBe(first);
    expect(first).toBeInstanceOf(https.Agent);
    expect((first as https.Agent).options.keepAlive).toBe(true);
    const rotated = agents.reuse(new https.Agent({ ca: Buffer.from(cert), cert: Buffer.from('other client certificate') }));
    expect(rotated).not.toBe(first);
  });

  it('leaves proxy set-ups to client-node', () => {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: url, proxyUrl: 'http://127.0.0.1:3128' }],
      users: [{ name: 'u' }],
      contexts: [{ name: 'ctx', cluster: 'c', user: 'u' }],
      currentContext: 'ctx',
    });
    const oneUse = new https.Agent();
    expect(new KeepAliveAgents(kc).reuse(oneUse)).toBe(oneUse);
  });
});
