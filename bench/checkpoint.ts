// Benchmark of request-checkpoint (issue 3): N annotated Deployments of R replicas
// in the simulated cluster, one ping per workload fired at once (as the
// PingSources of a `*/5 * * * *` schedule do), served over HTTP by the runtime,
// with bounded client concurrency (the Knative Service's containerConcurrency).
// Reports pings/s, ping-to-created latency and API calls per container, side by
// side for several KCR_CHECKPOINT_CONCURRENCY values and both kubelet routes
// (KCR_CHECKPOINT_VIA: node-agent, the default, and apiserver-proxy), each with the
// kubelet calls alone over the same route as a floor.
//
// The simulated cluster runs on a worker thread (bench/checkpoint-cluster.ts);
// the function, the load generator and the counting sink share the main thread.
//
//   npm run bench:checkpoint -- [--workloads 500] [--replicas 2] [--nodes 4]
//                               [--namespaces 50] [--concurrency 1,8,32] [--clients 10]
//                               [--tick-ms 1000] [--data-size 4096] [--via node-agent,apiserver-proxy]
//                               [--cpu-profile file]
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { Session } from 'node:inspector/promises';
import { Worker } from 'node:worker_threads';
import pLimit from 'p-limit';
import { KubeConfig } from '@kubernetes/client-node';
import { Kubernetes } from '../functions/core/kubernetes/kubernetes.js';
import { createRequestCheckpoint } from '../functions/request-checkpoint/handler.js';
import { apiServerProxyRoute, nodeAgentRoute, type CheckpointVia, type KubeletRoute } from '../functions/request-checkpoint/kubelet-route.js';
import { nodeAgentLocator } from '../functions/core/node-agent/locator.js';
import { serveFunction } from '../functions/core/runtime/server.js';
import { createLogger } from '../functions/core/runtime/logger.js';
import { pingSourceName } from '../functions/schedule-sync/ping-source.js';
import type { ApiCallCounts, ClusterReady, ClusterSpec } from './checkpoint-cluster.js';

const { values: args } = parseArgs({
  options: {
    workloads: { type: 'string', default: '500' },
    replicas: { type: 'string', default: '2' },
    nodes: { type: 'string', default: '4' },
    namespaces: { type: 'string', default: '50' },
    concurrency: { type: 'string', default: '1,8,32' },
    clients: { type: 'string', default: '10' },
    'tick-ms': { type: 'string', default: '1000' },
    'data-size': { type: 'string', default: '4096' },
    via: { type: 'string', default: 'node-agent,apiserver-proxy' },
    /** Write a V8 CPU profile of the main thread's measured part (not the set-up) here. */
    'cpu-profile': { type: 'string' },
  },
});
const positive = (name: string, raw: string | undefined): number => {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got "${raw}"`);
  return n;
};
const WORKLOADS = positive('workloads', args.workloads);
const REPLICAS = positive('replicas', args.replicas);
const NODES = positive('nodes', args.nodes);
const NAMESPACES = Math.min(positive('namespaces', args.namespaces), WORKLOADS);
const CLIENTS = positive('clients', args.clients);
const TICK_MS = positive('tick-ms', args['tick-ms']);
const DATA_SIZE = positive('data-size', args['data-size']);
const CONCURRENCIES = (args.concurrency ?? '').split(',').map((c) => positive('concurrency', c));
const WARMUP_PINGS = Math.min(50, WORKLOADS);
const VIAS = (args.via ?? '').split(',').map((v): CheckpointVia => {
  if (v !== 'node-agent' && v !== 'apiserver-proxy') throw new Error(`--via takes node-agent and/or apiserver-proxy, got "${v}"`);
  return v;
});

// Workloads spread over namespaces as in a shared cluster (the simulated
// ReplicaSet controller lists a namespace's pods per ReplicaSet, so one huge
// namespace would also make the set-up quadratic).
const WORKLOAD_LIST = Array.from({ length: WORKLOADS }, (_, i) => ({
  namespace: `team-${String(i % NAMESPACES).padStart(3, '0')}`,
  name: `w${String(i).padStart(4, '0')}`,
}));

/** The simulated cluster on its worker thread, with request/answer messaging. */
class ClusterThread {
  private nextId = 0;
  private readonly waiting = new Map<number, (result: unknown) => void>();

  private constructor(readonly worker: Worker) {
    worker.on('message', (msg: { id?: number; result?: unknown }) => {
      if (msg.id === undefined) return;
      this.waiting.get(msg.id)?.(msg.result);
      this.waiting.delete(msg.id);
    });
  }

  static async start(spec: ClusterSpec): Promise<{ thread: ClusterThread; ready: ClusterReady }> {
    // Node 20 loads a worker's entry before its --import hooks run, so the
    // worker registers tsx itself before importing the TypeScript entry.
    const tsxApi = JSON.stringify(import.meta.resolve('tsx/esm/api'));
    const entry = JSON.stringify(new URL('./checkpoint-cluster.ts', import.meta.url).href);
    const worker = new Worker(`import(${tsxApi}).then(({ register }) => { register(); return import(${entry}); });`, { eval: true, workerData: spec });
    const ready = await new Promise<ClusterReady>((resolve, reject) => {
      worker.on('message', (msg: { ready?: ClusterReady }) => msg.ready && resolve(msg.ready));
      worker.once('error', (err) => reject(new Error(`the simulated cluster's worker failed during set-up: ${err.message}`, { cause: err })));
      worker.once('exit', (code) => reject(new Error(`the simulated cluster's worker exited with code ${code} during set-up`)));
    });
    return { thread: new ClusterThread(worker), ready };
  }

  private call<T>(op: 'resetApiCalls' | 'clearArchives' | 'stop' | 'apiCalls'): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve) => {
      this.waiting.set(id, (result) => resolve(result as T));
      this.worker.postMessage({ id, op });
    });
  }

  resetApiCalls = () => this.call<void>('resetApiCalls');
  clearArchives = () => this.call<void>('clearArchives');
  apiCalls = () => this.call<ApiCallCounts>('apiCalls');
  stop = () => this.call<void>('stop');
  elu = (since?: EventLoopUtilization) => this.worker.performance.eventLoopUtilization(since);
}

interface Arrival {
  workload: string;
  at: number;
}

/** A broker stand-in that only timestamps each checkpoint.created (binary mode, as the emitter sends). */
async function startCountingSink(): Promise<{ url: string; arrivals: Arrival[]; others: () => number; close(): Promise<void> }> {
  const arrivals: Arrival[] = [];
  let others = 0;
  const server: Server = createServer((req, res) => {
    readBody(req).then(
      (body) => {
        const at = performance.now();
        if (req.headers['ce-type'] === 'io.kcr.checkpoint.created') arrivals.push({ workload: (JSON.parse(body) as { workload: { name: string } }).workload.name, at });
        else others++;
        res.writeHead(202).end();
      },
      () => res.writeHead(400).end(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    arrivals,
    others: () => others,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** The ping the PingSource of a workload sends. */
function pingRequest(w: { namespace: string; name: string }): { headers: Record<string, string>; body: string } {
  return {
    headers: { 'content-type': 'application/cloudevents+json' },
    body: JSON.stringify({
      specversion: '1.0',
      id: `ping-${w.name}-${Math.random().toString(16).slice(2)}`,
      source: `/apis/v1/namespaces/${w.namespace}/pingsources/${pingSourceName('Deployment', w.name)}`,
      type: 'dev.knative.sources.ping',
      datacontenttype: 'application/json',
      data: { namespace: w.namespace, kind: 'Deployment', name: w.name },
    }),
  };
}

function latencies(ms: number[]): { p50: number; p99: number } {
  const sorted = [...ms].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
  return { p50: at(50), p99: at(99) };
}

/** Busy share of each thread, and the process's CPU time, over a measured span. */
interface Load {
  mainBusy: number;
  clusterBusy: number;
  cpuMs: number;
}

async function measured<T>(cluster: ClusterThread, fn: () => Promise<T>): Promise<{ value: T; wallMs: number; load: Load }> {
  const main0 = performance.eventLoopUtilization();
  const cluster0 = cluster.elu();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const value = await fn();
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return {
    value,
    wallMs,
    load: { mainBusy: performance.eventLoopUtilization(main0).utilization, clusterBusy: cluster.elu(cluster0).utilization, cpuMs: (cpu.user + cpu.system) / 1000 },
  };
}

interface RoundResult {
  via: CheckpointVia;
  concurrency: number;
  wallMs: number;
  created: number;
  fromFire: { p50: number; p99: number };
  fromPost: { p50: number; p99: number };
  calls: ApiCallCounts;
  load: Load;
}

async function runRound(cluster: ClusterThread, kube: Kubernetes, kubelet: KubeletRoute, concurrency: number, workloads: typeof WORKLOAD_LIST): Promise<RoundResult> {
  await cluster.clearArchives();
  const sink = await startCountingSink();
  const fn = await serveFunction(createRequestCheckpoint({ kube, kubelet, timeoutSeconds: 60, concurrency }), {
    port: 0,
    host: '127.0.0.1',
    sink: sink.url,
    logger: createLogger('request-checkpoint', 'silent'),
  });
  await cluster.resetApiCalls();
  const clients = pLimit(CLIENTS);
  const postedAt = new Map<string, number>();
  const refused: string[] = [];
  let firedAt = 0;
  const { wallMs, load } = await measured(cluster, async () => {
    // Every PingSource with this schedule fires in the same second: all pings are queued at once.
    firedAt = performance.now();
    await Promise.all(
      workloads.map((w) =>
        clients(async () => {
          postedAt.set(w.name, performance.now());
          const res = await fetch(fn.url, { method: 'POST', ...pingRequest(w) });
          const text = await res.text();
          if (res.status !== 202) refused.push(`${w.namespace}/${w.name}: HTTP ${res.status} ${text}`);
        }),
      ),
    );
  });
  const calls = await cluster.apiCalls();
  await fn.close();
  await sink.close();
  const expected = workloads.length * REPLICAS;
  if (sink.arrivals.length !== expected || refused.length > 0 || sink.others() > 0) {
    throw new Error(
      `round via ${kubelet.via} with KCR_CHECKPOINT_CONCURRENCY=${concurrency}: expected ${expected} checkpoint.created and every ping answered 202; got ${sink.arrivals.length} created, ${sink.others()} other events, refused: ${refused.slice(0, 3).join('; ') || 'none'}`,
    );
  }
  return {
    via: kubelet.via,
    concurrency,
    wallMs,
    created: sink.arrivals.length,
    fromFire: latencies(sink.arrivals.map((a) => a.at - firedAt)),
    fromPost: latencies(sink.arrivals.map((a) => a.at - postedAt.get(a.workload)!)),
    calls,
    load,
  };
}

interface FloorResult {
  wallMs: number;
  p50: number;
  p99: number;
  load: Load;
}

/** The kubelet calls alone over the round's route, with the same concurrency: no handler, runtime or sink. */
async function runFloor(cluster: ClusterThread, kubelet: KubeletRoute, concurrency: number, targets: ClusterReady['targets']): Promise<FloorResult> {
  await cluster.clearArchives();
  const limit = pLimit(concurrency);
  const times: number[] = [];
  const { wallMs, load } = await measured(cluster, () =>
    Promise.all(
      targets.map((t) =>
        limit(async () => {
          const started = performance.now();
          const answer = await kubelet.checkpoint(t.node, t.namespace, t.pod, t.container, 60);
          if (!answer.ok) throw new Error(`floor: checkpoint of ${t.namespace}/${t.pod}/${t.container} on ${t.node} answered ${answer.status}: ${answer.body}`);
          times.push(performance.now() - started);
        }),
      ),
    ),
  );
  return { wallMs, ...latencies(times), load };
}

async function main(): Promise<void> {
  const started = performance.now();
  const spec: ClusterSpec = {
    nodes: Array.from({ length: NODES }, (_, i) => `node-${i}`),
    tickMs: TICK_MS,
    dataSize: DATA_SIZE,
    namespaces: [...new Set(WORKLOAD_LIST.map((w) => w.namespace))],
    workloads: WORKLOAD_LIST,
    replicas: REPLICAS,
    schedule: '*/5 * * * *',
  };
  const { thread: cluster, ready } = await ClusterThread.start(spec);
  try {
    console.error(`set-up: ${WORKLOADS} Deployments × ${REPLICAS} replicas in ${NAMESPACES} namespaces on ${NODES} nodes, running and idle after ${(ready.setupMs / 1000).toFixed(1)} s`);
    const kc = new KubeConfig();
    kc.loadFromFile(ready.kubeconfigPath);
    const kube = new Kubernetes(kc);
    const routes: Record<CheckpointVia, KubeletRoute> = {
      'apiserver-proxy': apiServerProxyRoute(kube),
      'node-agent': nodeAgentRoute({ locate: nodeAgentLocator({ urls: ready.agentUrls }), token: () => ready.agentToken }),
    };

    // JIT warm-up of every path, not reported (it also fills the kubelets' review caches, as in a running cluster).
    for (const via of VIAS) {
      await runFloor(cluster, routes[via], 8, ready.targets.slice(0, WARMUP_PINGS * REPLICAS));
      await runRound(cluster, kube, routes[via], 8, WORKLOAD_LIST.slice(0, WARMUP_PINGS));
    }

    const profiler = args['cpu-profile'] ? new Session() : undefined;
    if (profiler) {
      profiler.connect();
      await profiler.post('Profiler.enable');
      await profiler.post('Profiler.start');
    }
    const rounds: RoundResult[] = [];
    const floors: FloorResult[] = [];
    for (const c of CONCURRENCIES) {
      for (const via of VIAS) {
        floors.push(await runFloor(cluster, routes[via], c, ready.targets));
        rounds.push(await runRound(cluster, kube, routes[via], c, WORKLOAD_LIST));
        console.error(`KCR_CHECKPOINT_CONCURRENCY=${c} via ${via}: done`);
      }
    }
    if (profiler) {
      const { profile } = await profiler.post('Profiler.stop');
      writeFileSync(args['cpu-profile']!, JSON.stringify(profile));
      profiler.disconnect();
    }
    report(rounds, floors, ready.targets.length);
    console.error(`total run time ${((performance.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    await cluster.stop();
    await cluster.worker.terminate();
  }
}

function report(rounds: RoundResult[], floors: FloorResult[], containers: number): void {
  const ms = (v: number) => `${Math.round(v)} ms`;
  const pct = (v: number) => `${Math.round(v * 100)} %`;
  const pingsPerSec = (r: RoundResult) => (WORKLOADS / r.wallMs) * 1000;
  // Against the other route at the same concurrency: the node-agent route's ratio to the proxy's.
  const vsProxy = (r: RoundResult, value: (x: RoundResult) => number) => {
    const proxy = rounds.find((x) => x.via === 'apiserver-proxy' && x.concurrency === r.concurrency);
    return proxy && r.via !== 'apiserver-proxy' ? ` (${(value(r) / value(proxy)).toFixed(2)}×)` : '';
  };
  console.log(`\n${WORKLOADS} Deployments × ${REPLICAS} replicas × 1 container (${containers} containers) in ${NAMESPACES} namespaces on ${NODES} simulated nodes;`);
  console.log(`kubelet dataSize ${DATA_SIZE} B, tick ${TICK_MS} ms; ${WORKLOADS} pings queued at once, ${CLIENTS} in flight (containerConcurrency);`);
  console.log(`Node ${process.version}, ${cpus().length} CPUs; simulated cluster and node-agents on a worker thread, function + load generator + sink on the main thread.\n`);
  const header = ['KCR_CHECKPOINT_CONCURRENCY / KCR_CHECKPOINT_VIA', ...rounds.map((r) => `${r.concurrency} / ${r.via}`)];
  const rows: string[][] = [
    ['**pings handled per second**', ...rounds.map((r) => `**${pingsPerSec(r).toFixed(1)}**${vsProxy(r, pingsPerSec)}`)],
    ['wall time for all pings', ...rounds.map((r) => ms(r.wallMs))],
    ['**p50 ping-to-created** (from the POST of the ping)', ...rounds.map((r) => `**${ms(r.fromPost.p50)}**${vsProxy(r, (x) => x.fromPost.p50)}`)],
    ['**p99 ping-to-created** (from the POST of the ping)', ...rounds.map((r) => `**${ms(r.fromPost.p99)}**${vsProxy(r, (x) => x.fromPost.p99)}`)],
    ['p50 ping-to-created, from the PingSource firing (incl. queueing)', ...rounds.map((r) => ms(r.fromFire.p50))],
    ['p99 ping-to-created, from the PingSource firing (incl. queueing)', ...rounds.map((r) => ms(r.fromFire.p99))],
    ['checkpoint.created events', ...rounds.map((r) => String(r.created))],
    ['**API calls per checkpointed container**', ...rounds.map((r) => `**${(r.calls.total / r.created).toFixed(2)}**`)],
    [
      'API calls per ping: get, list, proxy, event, kubelet reviews',
      ...rounds.map(
        (r) =>
          `${(r.calls.total / WORKLOADS).toFixed(2)}: ${r.calls.gets / WORKLOADS}, ${r.calls.lists / WORKLOADS}, ${r.calls.proxies / WORKLOADS}, ${r.calls.events / WORKLOADS}, ${(r.calls.reviews / WORKLOADS).toFixed(3)}`,
      ),
    ],
    ['main thread busy (function, load generator, sink)', ...rounds.map((r) => pct(r.load.mainBusy))],
    ['cluster + node-agents thread busy', ...rounds.map((r) => pct(r.load.clusterBusy))],
    ['process CPU time per container', ...rounds.map((r) => `${(r.load.cpuMs / r.created).toFixed(1)} ms`)],
    [`floor: ${containers} kubelet checkpoints alone over the route, per second`, ...floors.map((f) => ((containers / f.wallMs) * 1000).toFixed(1))],
    ['floor: p50 / p99 per kubelet call', ...floors.map((f) => `${ms(f.p50)} / ${ms(f.p99)}`)],
    ['floor: cluster + node-agents thread busy', ...floors.map((f) => pct(f.load.clusterBusy))],
    ['floor: process CPU time per container', ...floors.map((f) => `${(f.load.cpuMs / containers).toFixed(1)} ms`)],
    ['floor wall time / round wall time', ...rounds.map((r, i) => pct(floors[i]!.wallMs / r.wallMs))],
  ];
  console.log(`| ${header.join(' | ')} |`);
  console.log(`|${header.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`);
  for (const row of rows) console.log(`| ${row.join(' | ')} |`);
  if (VIAS.length > 1) console.log('\nRatios in parentheses: the node-agent route against apiserver-proxy at the same concurrency, measured in the same run.');
}

await main();
