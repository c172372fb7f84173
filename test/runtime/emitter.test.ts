// The emitter against a real HTTP sink: binary mode, one keep-alive
// connection for many events, retries, and a sink that never answers.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { CloudEvent } from 'cloudevents';
import { afterEach, describe, expect, it } from 'vitest';
import { createEmitter } from '../../functions/core/runtime/emitter.js';
import { TransientError } from '../../functions/core/runtime/errors.js';

let server: Server | undefined;

async function sink(answer: (req: IncomingMessage, res: ServerResponse, body: string) => void): Promise<{ url: string; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  server = createServer((req, res) => {
    sockets.add(req.socket);
    let body = '';
    req.setEncoding('utf8').on('data', (c: string) => (body += c));
    req.on('end', () => answer(req, res, body));
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/kcr-system/kcr`, sockets };
}

const event = (id: string) => new CloudEvent({ id, type: 'io.kcr.schedule.synced', source: '/kcr/schedule-sync', subject: 'default/Deployment/counter', data: { action: 'created' } });

afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
  server = undefined;
});

describe('emitter', () => {
  it('sends each event in binary mode, over one keep-alive connection', async () => {
    const seen: { path: string; id: string | undefined; type: string | undefined; body: string }[] = [];
    const s = await sink((req, res, body) => {
      seen.push({ path: req.url ?? '', id: req.headers['ce-id'] as string | undefined, type: req.headers['ce-type'] as string | undefined, body });
      res.writeHead(202).end();
    });
    const emit = createEmitter({ sink: s.url, retries: 0, backoffMs: 1, timeoutMs: 2000 });
    for (const id of ['a', 'b', 'c', 'd', 'e']) await emit(event(id));
    expect(seen.map((e) => e.id)).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(seen[0]).toMatchObject({ path: '/kcr-system/kcr', type: 'io.kcr.schedule.synced' });
    expect(JSON.parse(seen[0]!.body)).toEqual({ action: 'created' });
    expect(s.sockets.size).toBe(1);
  });

  it('retries a failing sink with backoff and succeeds when it recovers', async () => {
    let calls = 0;
    const s = await sink((_req, res) => res.writeHead(++calls < 3 ? 503 : 202).end());
    await createEmitter({ sink: s.url, retries: 3, backoffMs: 1, timeoutMs: 2000 })(event('r'));
    expect(calls).toBe(3);
  });

  it('gives up on a sink that never answers after the timeout of each try, as a transient error', async () => {
    let calls = 0;
    const s = await sink(() => void calls++);
    const started = Date.now();
    const failure = createEmitter({ sink: s.url, retries: 1, backoffMs: 1, timeoutMs: 150 })(event('t'));
    await expect(failure).rejects.toBeInstanceOf(TransientError);
    await expect(failure).rejects.toThrow(/io\.kcr\.schedule\.synced t .* after 2 tries: .*(timeout|abort)/i);
    expect(calls).toBe(2);
    expect(Date.now() - started).toBeLessThan(2000);
  });
});
