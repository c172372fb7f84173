import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { serveFunction, type RunningFunction } from '../../functions/core/runtime/server.js';
import { readEnv } from '../../functions/core/runtime/config.js';
import { createLogger } from '../../functions/core/runtime/logger.js';
import { createTestHandler, sampleCreated, type Recorder } from './fixtures/test-handler.js';
import { metric, scrape } from '../support/metrics.js';
import { until } from '../support/wait.js';
import { startSink, type TestSink } from '../support/sink.js';

const TYPE = 'io.kcr.checkpoint.created';

function structured(overrides: Record<string, unknown> = {}, data: unknown = sampleCreated) {
  return {
    headers: { 'content-type': 'application/cloudevents+json' },
    body: JSON.stringify({ specversion: '1.0', id: 'ev-1', source: '/kcr/request-checkpoint', type: TYPE, datacontenttype: 'application/json', data, ...overrides }),
  };
}

function binary(headers: Record<string, string> = {}, data: unknown = sampleCreated) {
  return {
    headers: { 'content-type': 'application/json', 'ce-specversion': '1.0', 'ce-id': 'ev-2', 'ce-source': '/kcr/request-checkpoint', 'ce-type': TYPE, ...headers },
    body: JSON.stringify(data),
  };
}

describe('function runtime over HTTP', () => {
  let sink: TestSink;
  let fn: RunningFunction;
  let recorder: Recorder;

  async function start(opts: { acceptsBatch?: boolean } = {}) {
    recorder = { calls: [] };
    fn = await serveFunction(createTestHandler(recorder, opts), { port: 0, host: '127.0.0.1', sink: sink.url, emitRetries: 2, emitBackoffMs: 5, logger: silent() });
  }
  const post = (req: { headers: Record<string, string>; body: string }) => fetch(fn.url, { method: 'POST', headers: req.headers, body: req.body });

  beforeEach(async () => {
    sink = await startSink();
    await start();
  });
  afterEach(async () => {
    await fn.close();
    await sink.close();
  });

  it('handles a structured-mode event and emits the result to K_SINK', async () => {
    const res = await post(structured({ traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' }));
    expect(res.status).toBe(202);
    expect(recorder.calls).toHaveLength(1);
    expect(recorder.calls[0]?.data).toEqual(sampleCreated);
    expect(sink.events.map((e) => e.type)).toEqual(['io.kcr.checkpoint.stored']);
    const out = sink.events[0]!;
    expect(out.source).toBe('/kcr/test-fn');
    expect(out.subject).toBe('default/counter-7d9f8-abcde/app');
    expect(out.kcrcheckpointid).toBe(sampleCreated.id);
    expect(out.traceparent).toBe('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
  });

  it('handles a binary-mode event, keeping extensions', async () => {
    const res = await post(binary({ 'ce-kcrcheckpointid': sampleCreated.id }));
    expect(res.status).toBe(202);
    expect(recorder.calls[0]?.id).toBe('ev-2');
    expect(recorder.calls[0]?.extensions.kcrcheckpointid).toBe(sampleCreated.id);
    expect(sink.events).toHaveLength(1);
  });

  it('rejects a batch with 400 unless the handler supports batches', async () => {
    const one = JSON.parse(structured().body) as Record<string, unknown>;
    const batch = { headers: { 'content-type': 'application/cloudevents-batch+json' }, body: JSON.stringify([one, { ...one, id: 'ev-9' }]) };
    const res = await post(batch);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(/batch/);
    expect(recorder.calls).toHaveLength(0);

    await fn.close();
    await start({ acceptsBatch: true });
    const ok = await post(batch);
    expect(ok.status).toBe(202);
    expect(recorder.calls.map((c) => c.id)).toEqual(['ev-1', 'ev-9']);
    expect(sink.events).toHaveLength(2);
  });

  it('rejects a batch as a whole when one of its events is invalid', async () => {
    await fn.close();
    await start({ acceptsBatch: true });
    const one = JSON.parse(structured().body) as Record<string, unknown>;
    const res = await post({ headers: { 'content-type': 'application/cloudevents-batch+json' }, body: JSON.stringify([one, { ...one, id: undefined }]) });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(/batch event 1: .*id/);
    expect(recorder.calls).toHaveLength(0);
  });

  it.each([
    ['structured without id', structured({ id: undefined }), /id is missing/],
    ['structured with empty id', structured({ id: '' }), /id is missing/],
    [
      'binary without ce-id',
      (() => {
        const b = binary();
        delete (b.headers as Record<string, string>)['ce-id'];
        return b;
      })(),
      /not a CloudEvent/,
    ],
    ['structured with specversion 0.2', structured({ specversion: '0.2' }), /specversion "0.2"/],
    ['binary with specversion 2.0', binary({ 'ce-specversion': '2.0' }), /specversion "2.0"/],
    ['structured without source', structured({ source: undefined }), /source/],
    ['not JSON', { headers: { 'content-type': 'application/cloudevents+json' }, body: '{nope' }, /not valid JSON/],
    ['a plain POST', { headers: { 'content-type': 'text/plain' }, body: 'hello' }, /not a CloudEvent/],
    ['an unknown type', structured({ type: 'io.kcr.nope' }), /not handled here/],
    ['a type this function does not take', structured({ type: 'io.kcr.image.built' }), /not handled here/],
    ['wrong data for the type', structured({}, { ...sampleCreated, id: 'x', node: 'Not_A_Node' }), /data does not match io.kcr.checkpoint.created: id: .*node: /],
    ['data missing a field', structured({}, { ...sampleCreated, podUid: undefined }), /podUid/],
    ['binary data that is not JSON', { ...binary(), body: 'nope' }, /not valid JSON|not a valid CloudEvent/],
  ])('answers 400 without calling the handler for %s', async (_name, req, message) => {
    const res = await post(req as { headers: Record<string, string>; body: string });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(message);
    expect(recorder.calls).toHaveLength(0);
    expect(sink.events).toHaveLength(0);
  });

  it('answers 400 for a BadInputError from the handler, 503 for a TransientError, 500 for a bug', async () => {
    expect((await post(structured({}, { ...sampleCreated, pod: 'bad' }))).status).toBe(400);
    expect((await post(structured({}, { ...sampleCreated, pod: 'transient' }))).status).toBe(503);
    expect((await post(structured({}, { ...sampleCreated, pod: 'bug' }))).status).toBe(500);
    expect(sink.events).toHaveLength(0);
  });

  it('answers 503 when the result cannot be emitted, after retrying', async () => {
    sink.status = 500;
    const res = await post(structured());
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: string }).error).toMatch(/after 3 tries: HTTP 500/);
    const metrics = await (await fetch(`${fn.url}/metrics`)).text();
    expect(metric(metrics, 'kcr_events_failed_total', { type: 'io.kcr.checkpoint.created', outcome: 'emit', function: 'test-fn' })).toBe(1);
  });

  it('serves health, readiness and Prometheus metrics', async () => {
    await post(structured());
    await post(structured({}, { ...sampleCreated, pod: 'transient' }));
    expect((await fetch(`${fn.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${fn.url}/readyz`)).status).toBe(200);
    const metrics = await (await fetch(`${fn.url}/metrics`)).text();
    expect(metric(metrics, 'kcr_events_received_total', { type: 'io.kcr.checkpoint.created', function: 'test-fn' })).toBe(2);
    expect(metric(metrics, 'kcr_events_emitted_total', { type: 'io.kcr.checkpoint.stored', function: 'test-fn' })).toBe(1);
    expect(metric(metrics, 'kcr_events_failed_total', { type: 'io.kcr.checkpoint.created', outcome: 'transient', function: 'test-fn' })).toBe(1);
    expect(metric(metrics, 'kcr_handler_duration_seconds_count', { type: 'io.kcr.checkpoint.created', function: 'test-fn' })).toBe(2);
  });
});

describe('configuration', () => {
  it('fails at once naming the bad variable', () => {
    expect(() => readEnv(['PORT', 'K_SINK'], { PORT: 'eighty', K_SINK: 'ftp://broker' })).toThrow(/PORT="eighty".*K_SINK="ftp:\/\/broker"/);
    expect(readEnv(['PORT', 'KCR_EMIT_RETRIES'], {})).toEqual({ PORT: 8080, KCR_EMIT_RETRIES: 4 });
  });
});

describe('graceful shutdown', () => {
  it('finishes the event in flight on SIGTERM, refuses new ones, and exits 0', async () => {
    const sink = await startSink();
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/runtime/fixtures/slow-function.ts'], {
      env: { ...process.env, PORT: '0', K_SINK: sink.url, KCR_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /READY (\d+)/.exec(out);
          if (m) resolve(Number(m[1]));
        });
        child.once('exit', (code) => reject(new Error(`fixture exited early with ${code}`)));
      });
      const url = `http://127.0.0.1:${port}`;
      const req = structured();
      const inFlight = fetch(url, { method: 'POST', headers: req.headers, body: req.body });
      // The handler holds the event until SIGUSR2: it is in flight once the runtime counted it.
      await until('the event in the handler', async () => (await scrape(url, 'kcr_events_received_total', { type: TYPE })) === 1);
      child.kill('SIGTERM');
      await until('the runtime draining', async () => (await fetch(`${url}/readyz`)).status === 503);
      const refused = await fetch(url, { method: 'POST', headers: req.headers, body: req.body });
      expect(refused.status).toBe(503);
      expect(await refused.json()).toEqual({ error: 'test-fn is shutting down' });
      child.kill('SIGUSR2');
      expect((await inFlight).status).toBe(202);
      const [code] = (await once(child, 'exit')) as [number | null];
      expect(code).toBe(0);
      expect(sink.events.map((e) => e.type)).toEqual(['io.kcr.checkpoint.stored']);
    } finally {
      child.kill('SIGKILL');
      await sink.close();
    }
  });
});

function silent() {
  return createLogger('test-fn', 'silent');
}
