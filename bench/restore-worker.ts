// The restore-pod side of bench/restore.ts, in a process of its own as the
// Knative Service is: it seeds S3 for the driver, then serves one restore-pod
// per case over HTTP (functions/core/runtime/server.ts) and measures, per event,
// when the handler got it, when each patch was sent, and the S3 and API calls
// made before the patch (attributed to the event with AsyncLocalStorage).
// Started by bench/restore.ts over an IPC channel; not run by hand.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Readable } from 'node:stream';
import { KubeConfig } from '@kubernetes/client-node';
import pLimit from 'p-limit';
import { pino } from 'pino';
import { Kubernetes } from '../functions/core/kubernetes/kubernetes.js';
import type { ObjectInfo, ObjectStore, UploadOptions, UploadResult } from '../functions/core/storage/object-store.js';
import { S3ObjectStore } from '../functions/core/storage/s3.js';
import { artifactKey } from '../functions/core/storage/layout.js';
import { createRestorePod } from '../functions/restore-pod/handler.js';
import { readEnv } from '../functions/core/runtime/config.js';
import { errorMessage } from '../functions/core/runtime/errors.js';
import type { FunctionHandler } from '../functions/core/runtime/handler.js';
import { serveFunction, type RunningFunction } from '../functions/core/runtime/server.js';
import { CASES, BUCKET_OF, Envelope, seedDocuments, wallNow, type CaseName, type HandledEvent, type Reply, type Request } from './restore-protocol.js';

const current = new AsyncLocalStorage<HandledEvent>();

/** S3 requests of one event in flight, and since when: parallel reads count their overlap once. */
const s3Busy = new WeakMap<HandledEvent, { inFlight: number; since: number }>();

/** Counts an S3 call against the event being handled; the time any of its calls is in flight counts until the event's first patch. */
async function trackS3<T>(op: 'list' | 'get' | 'put', fn: () => Promise<T>): Promise<T> {
  const rec = current.getStore();
  const start = wallNow();
  const busy = rec ? (s3Busy.get(rec) ?? { inFlight: 0, since: start }) : undefined;
  if (rec && busy) {
    if (busy.inFlight++ === 0) busy.since = start;
    s3Busy.set(rec, busy);
  }
  try {
    return await fn();
  } finally {
    if (rec && busy) {
      rec.s3[op]++;
      const end = wallNow();
      if (--busy.inFlight === 0 && rec.patches.length === 0) rec.s3.msBeforePatch += end - busy.since;
      if (op === 'list' && rec.patches.length === 0) rec.s3.listMsBeforePatch += end - start;
    }
  }
}

async function trackKube<T>(fn: () => Promise<T>): Promise<T> {
  const rec = current.getStore();
  const start = wallNow();
  try {
    return await fn();
  } finally {
    if (rec) {
      rec.kube.calls++;
      if (rec.patches.length === 0) rec.kube.msBeforePatch += wallNow() - start;
    }
  }
}

/** The S3 store restore-pod gets: the real one, with every call counted and timed. */
class MeasuredStore implements ObjectStore {
  constructor(private readonly inner: ObjectStore) {}
  get bucket(): string {
    return this.inner.bucket;
  }
  ensureBucket(): Promise<void> {
    return this.inner.ensureBucket();
  }
  getStream(key: string): Promise<Readable> {
    return trackS3('get', () => this.inner.getStream(key));
  }
  getRange(key: string, offset: number, length: number): Promise<Buffer> {
    return trackS3('get', () => this.inner.getRange(key, offset, length));
  }
  getJson(key: string): Promise<unknown> {
    return trackS3('get', () => this.inner.getJson(key));
  }
  putJson(key: string, value: unknown): Promise<void> {
    return trackS3('put', () => this.inner.putJson(key, value));
  }
  stat(key: string): Promise<ObjectInfo | undefined> {
    return trackS3('get', () => this.inner.stat(key));
  }
  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const all = await trackS3('list', async () => {
      const out: ObjectInfo[] = [];
      for await (const o of this.inner.list(prefix)) out.push(o);
      return out;
    });
    yield* all;
  }
  upload(key: string, body: Readable, options?: UploadOptions): Promise<UploadResult> {
    return trackS3('put', () => this.inner.upload(key, body, options));
  }
  remove(key: string): Promise<void> {
    return trackS3('put', () => this.inner.remove(key));
  }
}

function imagesOf(patch: object): string[] {
  const containers = (patch as { spec?: { containers?: { image?: unknown }[] } }).spec?.containers ?? [];
  return containers.map((c) => c.image).filter((i): i is string => typeof i === 'string');
}

/** The Kubernetes adapter restore-pod gets: records the moment each patch is sent, and times the calls before it. */
class MeasuredKubernetes extends Kubernetes {
  override getWorkload(...args: Parameters<Kubernetes['getWorkload']>): ReturnType<Kubernetes['getWorkload']> {
    return trackKube(() => super.getWorkload(...args));
  }
  override getPod(...args: Parameters<Kubernetes['getPod']>): ReturnType<Kubernetes['getPod']> {
    return trackKube(() => super.getPod(...args));
  }
  override listPods(...args: Parameters<Kubernetes['listPods']>): ReturnType<Kubernetes['listPods']> {
    return trackKube(() => super.listPods(...args));
  }
  override nodeReady(...args: Parameters<Kubernetes['nodeReady']>): ReturnType<Kubernetes['nodeReady']> {
    return trackKube(() => super.nodeReady(...args));
  }
  override createEvent(...args: Parameters<Kubernetes['createEvent']>): ReturnType<Kubernetes['createEvent']> {
    return trackKube(() => super.createEvent(...args));
  }
  override patchPod(...args: Parameters<Kubernetes['patchPod']>): ReturnType<Kubernetes['patchPod']> {
    const rec = current.getStore();
    rec?.patches.push({ at: wallNow(), images: imagesOf(args[2]) });
    if (rec) rec.kube.calls++;
    return super.patchPod(...args);
  }
}

type RestorePod = ReturnType<typeof createRestorePod>;

/** Records each event the handler gets, and runs the handler in that record's context. */
function measured(name: CaseName, inner: RestorePod, events: HandledEvent[]): RestorePod {
  return {
    name: inner.name,
    accepts: inner.accepts,
    emits: inner.emits,
    async handle(event, ctx) {
      const meta = (event.data as { metadata?: { namespace?: string; name?: string } }).metadata;
      const rec: HandledEvent = {
        case: name,
        pod: `${meta?.namespace ?? ''}/${meta?.name ?? ''}`,
        handlerAt: wallNow(),
        patches: [],
        s3: { list: 0, get: 0, put: 0, msBeforePatch: 0, listMsBeforePatch: 0 },
        kube: { calls: 0, msBeforePatch: 0 },
        emitted: [],
      };
      events.push(rec);
      try {
        const out = await current.run(rec, () => inner.handle(event, ctx));
        rec.emitted = out.map((e) => e.type);
        return out;
      } catch (err) {
        rec.error = errorMessage(err);
        throw err;
      } finally {
        rec.doneAt = wallNow();
      }
    },
  };
}

interface State {
  stores: Record<'history' | 'single', S3ObjectStore>;
  kube: MeasuredKubernetes;
  servers: RunningFunction[];
  events: HandledEvent[];
}

let state: State | undefined;

function ready(): State {
  if (!state) throw new Error('the worker got a request before init');
  return state;
}

async function answer(request: Request): Promise<unknown> {
  switch (request.kind) {
    case 'init': {
      const store = (bucket: string) => new S3ObjectStore({ ...request.s3, bucket });
      const stores = { history: store(request.buckets.history), single: store(request.buckets.single) };
      await Promise.all(Object.values(stores).map((s) => s.ensureBucket()));
      const kc = new KubeConfig();
      kc.loadFromFile(request.kubeconfigPath);
      state = { stores, kube: new MeasuredKubernetes(kc), servers: [], events: [] };
      return {};
    }
    case 'seed': {
      const s = ready();
      const store = s.stores[request.bucket];
      const limit = pLimit(request.parallelism);
      const start = wallNow();
      // image.json after manifest.json, as the pipeline commits them.
      await Promise.all(
        request.seeds.map((seed) =>
          limit(async () => {
            const docs = seedDocuments(store.bucket, seed);
            await store.putJson(artifactKey(docs.loc, 'manifest'), docs.manifest);
            await store.putJson(artifactKey(docs.loc, 'image'), docs.image);
          }),
        ),
      );
      return { objects: request.seeds.length * 2, ms: wallNow() - start };
    }
    case 'serve': {
      const s = ready();
      // As deployed: the loop-guard settings come from the ENV catalog's defaults.
      const env = readEnv(['KCR_RESTORE_WINDOW_SECONDS', 'KCR_RESTORE_MAX_ATTEMPTS'], {});
      const urls: Partial<Record<CaseName, string>> = {};
      for (const name of CASES) {
        const handler = createRestorePod({
          kube: s.kube,
          store: new MeasuredStore(s.stores[BUCKET_OF[name]]),
          windowMs: env.KCR_RESTORE_WINDOW_SECONDS * 1000,
          maxAttempts: env.KCR_RESTORE_MAX_ATTEMPTS,
        });
        const server = await serveFunction(measured(name, handler, s.events) as FunctionHandler, {
          port: 0,
          host: '127.0.0.1',
          logger: pino({ level: 'silent' }),
          // The broker is not part of the measurement: what restore-pod emits is recorded by measured().
          emit: async () => undefined,
        });
        s.servers.push(server);
        urls[name] = server.url;
      }
      return urls;
    }
    case 'clock':
      return { now: wallNow() };
    case 'report':
      return { events: ready().events };
    case 'stop': {
      await Promise.all((state?.servers ?? []).map((s) => s.close()));
      setImmediate(() => process.disconnect());
      return {};
    }
  }
}

if (!process.send) throw new Error('bench/restore-worker.ts runs under bench/restore.ts, which talks to it over IPC');
process.on('message', (raw: unknown) => {
  const parsed = Envelope.safeParse(raw);
  if (!parsed.success) {
    console.error(`restore-worker: unexpected message ${JSON.stringify(raw).slice(0, 200)}: ${parsed.error.message}`);
    return;
  }
  const { id, request } = parsed.data;
  void answer(request)
    .then(
      (value): Reply => ({ id, ok: true, value }),
      (err: unknown): Reply => ({ id, ok: false, error: `${request.kind}: ${errorMessage(err)}` }),
    )
    .then((reply) => process.send?.(reply));
});
