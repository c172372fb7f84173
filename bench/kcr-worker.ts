// One kcr function of the artifact benchmark, in a process of its own so that
// its peak RSS is that function's alone: store-artifact (node-agent → S3) or
// build-image (S3 → registry), wired from the environment exactly as the
// deployed function is (through functions/catalog.ts, with the runtime loaded,
// from KCR_S3_*, KCR_NODE_AGENT_*, KCR_REGISTRY_*, KCR_IMAGE_*), its handle()
// called directly. Prints one JSON line
// (WorkerResult). bench/artifacts.ts compiles it and runs it with plain node,
// as deployed:
//
//   node <compiled>/bench/kcr-worker.js '<WorkerJob JSON>' [<file.cpuprofile>]
//
// With a second argument it also writes V8's CPU profile of handle() alone
// (not of the module loading before it) there, as `node --cpu-prof` would.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
import { S3ObjectStore, s3OptionsFromEnv } from '../functions/core/storage/s3.js';
import { FUNCTIONS } from '../functions/catalog.js';
import { ImageRecord } from '../functions/core/storage/records.js';
import {
  checkpointId,
  CheckpointStoredData,
  EventTypes,
  ImageBuiltData,
  kubeletArchiveName,
  KUBELET_CHECKPOINT_DIR,
  type CheckpointCreatedData,
  type KcrEvent,
} from '../functions/core/contract/index.js';
import { artifactKey } from '../functions/core/storage/layout.js';
import type { FunctionHandler, HandlerContext, IncomingEvent } from '../functions/core/runtime/handler.js';
// What the image's entry point (functions/main.ts) loads besides the function: the runtime's memory counts too.
import '../functions/core/runtime/server.js';
import { WorkerJob, type BenchCheckpoint, type WorkerResult } from './kcr-job.js';
import { procStatusBytes } from './support.js';

const ctx: HandlerContext = { log: pino({ level: 'silent' }) };

function incoming<T extends typeof EventTypes.checkpointCreated | typeof EventTypes.checkpointStored>(type: T, data: IncomingEvent<T>['data']): IncomingEvent<T> {
  return { type, data, id: `bench-${type}`, source: '/kcr/bench', extensions: {} } as IncomingEvent<T>;
}

/** The single event a handler returned, checked to be of the expected type (a `failed` event ends the run with its reason). */
function only(out: KcrEvent[], type: string, stage: string): unknown {
  const [event] = out;
  if (out.length !== 1 || event?.type !== type) {
    throw new Error(`${stage} returned ${out.map((e) => `${e.type} ${JSON.stringify(e.data)}`).join('; ') || 'no event'} instead of one ${type}`);
  }
  return event.data;
}

const profileFile = process.argv[3];

/** Runs `fn` under V8's sampling profiler when a profile file was asked for (1 ms samples, --cpu-prof's default). */
async function profiled<T>(fn: () => Promise<T>): Promise<T> {
  if (!profileFile) return fn();
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 1000 });
  await session.post('Profiler.start');
  try {
    return await fn();
  } finally {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(profileFile, JSON.stringify(profile));
    session.disconnect();
  }
}

function cpuSince(start: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}

async function store(c: BenchCheckpoint): Promise<WorkerResult> {
  const handler = (await FUNCTIONS['store-artifact'](process.env)) as FunctionHandler;
  const startRssBytes = procStatusBytes('VmRSS');
  const created: CheckpointCreatedData = {
    id: checkpointId({ podUid: c.podUid, container: c.container, checkpointedAt: c.timestamp }),
    namespace: c.namespace,
    workload: c.workload,
    pod: c.pod,
    podUid: c.podUid,
    container: c.container,
    node: c.node,
    archivePath: `${KUBELET_CHECKPOINT_DIR}/${kubeletArchiveName({ pod: c.pod, namespace: c.namespace, container: c.container, timestamp: c.timestamp })}`,
    checkpointedAt: c.timestamp,
  };
  const cpu = process.cpuUsage();
  const start = performance.now();
  const out = await profiled(() => handler.handle(incoming(EventTypes.checkpointCreated, created), ctx));
  const ms = performance.now() - start;
  const cpuMs = cpuSince(cpu);
  const peakRssBytes = procStatusBytes('VmHWM');
  const stored = CheckpointStoredData.parse(only(out, EventTypes.checkpointStored, 'store-artifact'));
  return { stage: 'store', ms, cpuMs, peakRssBytes, startRssBytes, stored };
}

async function build(stored: CheckpointStoredData): Promise<WorkerResult> {
  const handler = (await FUNCTIONS['build-image'](process.env)) as FunctionHandler;
  const startRssBytes = procStatusBytes('VmRSS');
  const cpu = process.cpuUsage();
  const start = performance.now();
  const out = await profiled(() => handler.handle(incoming(EventTypes.checkpointStored, stored), ctx));
  const ms = performance.now() - start;
  const cpuMs = cpuSince(cpu);
  const peakRssBytes = procStatusBytes('VmHWM');
  const built = ImageBuiltData.parse(only(out, EventTypes.imageBuilt, 'build-image'));
  const loc = { namespace: stored.namespace, workload: stored.workload, container: stored.container, id: stored.id };
  const record = ImageRecord.parse(await new S3ObjectStore(s3OptionsFromEnv(process.env)).getJson(artifactKey(loc, 'image')));
  return { stage: 'build', ms, cpuMs, peakRssBytes, startRssBytes, layerBytes: record.layer.size, reference: built.image.reference };
}

const raw = process.argv[2];
if (!raw) throw new Error('usage: node kcr-worker.js <WorkerJob JSON> (or node --import tsx bench/kcr-worker.ts …)');
const job = WorkerJob.parse(JSON.parse(raw));
const result = job.stage === 'store' ? await store(job.checkpoint) : await build(job.stored);
process.stdout.write(`${JSON.stringify(result)}\n`);
