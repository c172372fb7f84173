// Serves one FunctionHandler as a Knative Service: CloudEvents in over HTTP,
// result events out to K_SINK, health, readiness, metrics and graceful drain.
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express, { type Request, type Response } from 'express';
import type { CloudEvent } from 'cloudevents';
import { BadInputError, TransientError, errorMessage } from './errors.js';
import type { FunctionHandler, IncomingEvent, RawEvent, RawFunctionHandler } from './handler.js';
import { createEmitter, type Emit } from './emitter.js';
import { FunctionMetrics, type FailureOutcome } from './metrics.js';
import { createLogger, logUnhandledRejections, type Logger } from './logger.js';
import { isBatch } from './cloudevents-http.js';
import { parseRawRequest, parseRequest } from './parse.js';
import { readEnv } from './config.js';

interface ServeOptions {
  /** 0 picks a free port. */
  port: number;
  host?: string;
  /** Where result events go (K_SINK). Required when the handler emits. */
  sink?: string;
  emitRetries?: number;
  emitBackoffMs?: number;
  emitTimeoutMs?: number;
  /** How long close() waits for in-flight events. */
  shutdownTimeoutMs?: number;
  logger?: Logger;
  /** Replaces the HTTP sender, e.g. the local broker's in-process ingress. */
  emit?: Emit;
  processMetrics?: boolean;
}

export interface RunningFunction {
  url: string;
  port: number;
  metrics: FunctionMetrics;
  /** Refuses new events, waits for in-flight ones (bounded), then closes the server. */
  close(): Promise<void>;
}

export type AnyHandler = FunctionHandler | RawFunctionHandler;

export async function serveFunction(handler: AnyHandler, options: ServeOptions): Promise<RunningFunction> {
  const log = options.logger ?? createLogger(handler.name);
  const metrics = new FunctionMetrics(handler.name, options.processMetrics ?? false);
  const observe = metrics.observe.bind(metrics);
  const emit = resolveEmit(handler, options);
  let draining = false;
  let inFlight = 0;
  let idle: (() => void) | undefined;

  const app = express();
  app.disable('x-powered-by');
  app.get('/healthz', (_req, res) => void res.json({ status: 'ok' }));
  app.get('/readyz', (_req, res) => void res.status(draining ? 503 : 200).json({ status: draining ? 'draining' : 'ready' }));
  app.get('/metrics', async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  app.post('/', express.text({ type: () => true, limit: '5mb' }), async (req: Request, res: Response) => {
    if (draining) {
      res
        .set('Connection', 'close')
        .status(503)
        .json({ error: `${handler.name} is shutting down` });
      return;
    }
    inFlight++;
    try {
      await handleRequest(req, res);
    } catch (err) {
      log.error({ err: errorMessage(err) }, 'request failed');
      if (!res.headersSent) res.status(500).json({ error: errorMessage(err) });
    } finally {
      inFlight--;
      if (inFlight === 0) idle?.();
    }
  });
  app.use((err: unknown, _req: Request, res: Response, _next: () => void) => {
    const status = typeof err === 'object' && err !== null && 'status' in err && typeof err.status === 'number' ? err.status : 400;
    res.status(status).json({ error: `bad request: ${errorMessage(err)}` });
  });

  async function handleRequest(req: Request, res: Response): Promise<void> {
    const started = process.hrtime.bigint();
    const body = typeof req.body === 'string' ? req.body : '';
    if (isBatch(req.get('content-type')) && !handler.acceptsBatch) {
      metrics.failed.inc({ type: 'batch', outcome: 'bad_input' });
      res.status(400).json({ error: `${handler.name} does not accept batched CloudEvents (application/cloudevents-batch+json); send one event per request` });
      return;
    }
    let incoming: (IncomingEvent | RawEvent)[];
    try {
      incoming = 'raw' in handler ? parseRawRequest(req.headers, body) : parseRequest(req.headers, body, handler.accepts);
    } catch (err) {
      const type = req.get('ce-type') ?? 'unknown';
      metrics.failed.inc({ type, outcome: 'bad_input' });
      log.warn({ type, ceId: req.get('ce-id'), err: errorMessage(err) }, 'rejected event');
      res.status(400).json({ error: errorMessage(err) });
      return;
    }
    for (const event of incoming) {
      const outcome = await handleOne(event, started);
      if (outcome.status !== 202) {
        res.status(outcome.status).json({ error: outcome.error });
        return;
      }
    }
    res.status(202).end();
  }

  async function handleOne(event: IncomingEvent | RawEvent, started: bigint): Promise<{ status: number; error?: string }> {
    metrics.received.inc({ type: event.type });
    const attrs: Readonly<Record<string, unknown>> = 'attributes' in event ? event.attributes : { ...event.extensions, subject: event.subject };
    const checkpointId = typeof attrs.kcrcheckpointid === 'string' ? attrs.kcrcheckpointid : undefined;
    const eventLog = log.child({ ceId: event.id, type: event.type, subject: attrs.subject, ...(checkpointId ? { checkpointId } : {}) });
    const traceparent = typeof attrs.traceparent === 'string' ? attrs.traceparent : undefined;
    const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
    const fail = (outcome: FailureOutcome, status: number, err: unknown) => {
      metrics.failed.inc({ type: event.type, outcome });
      metrics.duration.observe({ type: event.type }, seconds());
      const level = status >= 500 && outcome !== 'transient' ? 'error' : 'warn';
      eventLog[level]({ status, durationMs: Math.round(seconds() * 1000), err: errorMessage(err) }, 'event not handled');
      return { status, error: errorMessage(err) };
    };
    let out: CloudEvent<unknown>[];
    try {
      const ctx = { log: eventLog, observe, ...(traceparent ? { traceparent } : {}) };
      out = 'attributes' in event ? await (handler as RawFunctionHandler).handle(event, ctx) : await (handler as FunctionHandler).handle(event, ctx);
    } catch (err) {
      if (err instanceof BadInputError) return fail('bad_input', 400, err);
      if (err instanceof TransientError) return fail('transient', 503, err);
      return fail('error', 500, err);
    }
    for (const produced of out) {
      // CloudEvent instances are frozen: propagate the trace context on a clone.
      const result = traceparent && produced.traceparent === undefined ? produced.cloneWith({ traceparent }) : produced;
      try {
        await emit(result);
        metrics.emitted.inc({ type: result.type });
      } catch (err) {
        return fail('emit', 503, err);
      }
    }
    metrics.duration.observe({ type: event.type }, seconds());
    eventLog.info({ durationMs: Math.round(seconds() * 1000), emitted: out.map((e) => e.type) }, 'event handled');
    return { status: 202 };
  }

  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(options.port, options.host ?? '0.0.0.0', (err?: Error) => (err ? reject(err) : resolve(s)));
    s.once('error', reject);
  });
  const port = (server.address() as AddressInfo).port;
  log.info({ port, sink: options.sink }, `${handler.name} listening`);

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    metrics,
    async close() {
      if (!draining) {
        draining = true;
        log.info({ inFlight }, 'draining');
      }
      if (inFlight > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, options.shutdownTimeoutMs ?? 30_000);
          idle = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
    },
  };
}

function resolveEmit(handler: AnyHandler, options: ServeOptions): Emit {
  if (options.emit) return options.emit;
  if (options.sink) {
    return createEmitter({
      sink: options.sink,
      retries: options.emitRetries ?? 4,
      backoffMs: options.emitBackoffMs ?? 100,
      timeoutMs: options.emitTimeoutMs ?? 5000,
    });
  }
  if (handler.emits) throw new Error(`${handler.name} emits events but has no sink: set K_SINK`);
  return async (event) => {
    throw new Error(`${handler.name} has no sink for ${event.type}`);
  };
}

/** Runs a handler as the process's one Knative Service, configured from the environment. */
export async function runFunction(handler: AnyHandler, env: NodeJS.ProcessEnv = process.env): Promise<RunningFunction> {
  const config = readEnv(['PORT', 'K_SINK', 'KCR_EMIT_RETRIES', 'KCR_EMIT_BACKOFF_MS', 'KCR_EMIT_TIMEOUT_MS', 'KCR_SHUTDOWN_TIMEOUT_MS', 'KCR_LOG_LEVEL'], env);
  if (handler.emits && !config.K_SINK) throw new Error(`invalid configuration: K_SINK=(unset): ${handler.name} emits events and needs the broker URL`);
  const logger = createLogger(handler.name, config.KCR_LOG_LEVEL);
  logUnhandledRejections(logger);
  const running = await serveFunction(handler, {
    port: config.PORT,
    ...(config.K_SINK ? { sink: config.K_SINK } : {}),
    emitRetries: config.KCR_EMIT_RETRIES,
    emitBackoffMs: config.KCR_EMIT_BACKOFF_MS,
    emitTimeoutMs: config.KCR_EMIT_TIMEOUT_MS,
    shutdownTimeoutMs: config.KCR_SHUTDOWN_TIMEOUT_MS,
    logger,
    processMetrics: true,
  });
  const stop = (signal: string) => {
    logger.info({ signal }, 'shutting down');
    running.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err: errorMessage(err) }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  return running;
}
