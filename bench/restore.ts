// The restore latency benchmark of issue 5 (`npm run bench:restore`): with
// 1,000 annotated single-replica Deployments in the simulated cluster and their
// checkpoints in S3 (s3rver), kill containers and time restore-pod from the
// pod-failure event to the patch that sets the checkpoint image. Side by side
// in one run, on disjoint samples of the same workloads:
//   (a) 10 checkpoints per workload, the newest 3 of the failed pod (the usual case);
//   (b) 1 checkpoint per workload, of the failed pod (the baseline for a/b);
//   (c) 10 checkpoints per workload, none of the failed pod (it was replaced
//       since): every manifest is read before the cold-start decision.
// restore-pod runs in a process of its own (bench/restore-worker.ts), served
// over HTTP like the Knative Service; this process holds the simulated
// cluster and S3, kills the containers and posts the pod-update CloudEvents
// the ApiServerSource would send. Prints markdown tables.
//
//   npm run bench:restore [-- --workloads=1000 --checkpoints=10 --samples=200 --burst=12]
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { z } from 'zod';
import { startSimulatedCluster, type KubeObject, type SimulatedCluster } from '../simulator/index.js';
import { startEmbeddedS3, type EmbeddedS3 } from '../local/embedded-s3.js';
import { makeResourceEvent } from '../local/apiserver-source.js';
import { encodeBinary } from '../functions/core/runtime/cloudevents-http.js';
import { deployment } from '../simulator/workloads.js';
import { EventTypes } from '../functions/core/contract/events.js';
import { BUCKET_OF, CASES, CONTAINER, Clock, Done, Reply, Report, Seeded, Served, seedDocuments, wallNow, type CaseName, type HandledEvent, type Request, type Seed } from './restore-protocol.js';

const OPT_IN = { 'kcr.io/checkpoint-restore-schedule': '0 */6 * * *' };
const WORKLOADS_PER_NAMESPACE = 5;
/** Of a workload's history, how many checkpoints are of its live pod in case (a). */
const LIVE_CHECKPOINTS = 3;
const SEED_PARALLELISM = 16;
/** Long enough that a kubelet whose pull failed does not retry during the run. */
const IMAGE_PULL_BACKOFF_MS = 10 * 60 * 1000;
const BUCKETS = { history: 'kcr-bench-history', single: 'kcr-bench-single' } as const;

/** Between bursts, failures come one at a time: this many per round. */
const ISOLATED_PER_ROUND = 6;

interface Options {
  workloads: number;
  checkpoints: number;
  /** Failures per case. */
  samples: number;
  /** Failures posted at once in a burst; between bursts, failures come one at a time. */
  burst: number;
}

/** The first round of failures only warms up (connections, JIT) and is not measured. */
function warmupPerCase(o: Pick<Options, 'burst'>): number {
  return (ISOLATED_PER_ROUND + o.burst) / CASES.length;
}

function options(argv: string[]): Options {
  const value = (name: string, fallback: number): number => {
    const arg = argv.find((a) => a.startsWith(`--${name}=`));
    if (!arg) return fallback;
    const n = Number(arg.slice(name.length + 3));
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} takes a positive integer, got ${JSON.stringify(arg)}`);
    return n;
  };
  const o = { workloads: value('workloads', 1000), checkpoints: value('checkpoints', 10), samples: value('samples', 200), burst: value('burst', 12) };
  if (o.checkpoints <= LIVE_CHECKPOINTS) throw new Error(`--checkpoints must exceed the ${LIVE_CHECKPOINTS} checkpoints of the live pod`);
  if (o.burst % CASES.length !== 0) throw new Error(`--burst must be a multiple of ${CASES.length} (each burst takes as many failures of each case), got ${o.burst}`);
  const needed = (o.samples + warmupPerCase(o)) * CASES.length;
  if (needed > o.workloads) throw new Error(`--samples=${o.samples} per case (and ${warmupPerCase(o)} to warm up) needs ${needed} distinct workloads, --workloads=${o.workloads}`);
  return o;
}

// ---------- the worker process ----------

class Worker {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  constructor(private readonly child: ChildProcess) {
    child.on('message', (raw: unknown) => {
      const reply = Reply.safeParse(raw);
      if (!reply.success) return;
      const p = this.pending.get(reply.data.id);
      this.pending.delete(reply.data.id);
      if (reply.data.ok) p?.resolve(reply.data.value);
      else p?.reject(new Error(`restore worker: ${reply.data.error}`));
    });
    child.once('exit', (code, signal) => {
      for (const p of this.pending.values()) p.reject(new Error(`restore worker exited (${code ?? signal}) with a request pending`));
      this.pending.clear();
    });
  }

  static start(): Worker {
    const file = fileURLToPath(new URL('./restore-worker.ts', import.meta.url));
    return new Worker(fork(file, [], { execArgv: ['--import', import.meta.resolve('tsx')], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  }

  async request<T>(request: Request, schema: z.ZodType<T>): Promise<T> {
    const id = this.nextId++;
    const value = await new Promise<unknown>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.send({ id, request });
    });
    return schema.parse(value);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || !this.child.connected) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    await this.request({ kind: 'stop' }, Done);
    await exited;
  }
}

// ---------- the cluster ----------

interface Workload {
  index: number;
  namespace: string;
  name: string;
  pod: string;
  podUid: string;
  node: string;
}

const rec = (v: unknown): Record<string, unknown> => (v && typeof v === 'object' ? (v as Record<string, unknown>) : {});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function appStatus(pod: KubeObject | undefined): { restartCount: number; running: boolean } {
  const statuses = Array.isArray(pod?.status?.containerStatuses) ? (pod.status.containerStatuses as unknown[]) : [];
  const s = rec(statuses.map(rec).find((c) => c.name === CONTAINER));
  return { restartCount: typeof s.restartCount === 'number' ? s.restartCount : 0, running: rec(s.state).running !== undefined };
}

async function until<T>(what: string, probe: () => T | undefined, timeoutMs: number, intervalMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

function runningWorkloads(cluster: SimulatedCluster, count: number): Workload[] | undefined {
  const out: Workload[] = [];
  for (const p of cluster.listObjects('v1', 'Pod')) {
    const name = p.metadata.labels?.app;
    if (!name?.startsWith('app-') || !appStatus(p).running || rec(p.status).phase !== 'Running') continue;
    out.push({ index: Number(name.slice(4)), namespace: p.metadata.namespace!, name, pod: p.metadata.name!, podUid: p.metadata.uid!, node: String(p.spec?.nodeName) });
  }
  return out.length === count ? out.sort((x, y) => x.index - y.index) : undefined;
}

// ---------- the checkpoints ----------

const rfc3339 = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const HOUR = 3600_000;

/** Checkpoints of pods the workload had before its live one: taken every 5 minutes, hours ago. */
function earlierSeeds(w: Pick<Workload, 'namespace' | 'name' | 'index'>, count: number, now: number): Seed[] {
  return Array.from({ length: count }, (_, k) => {
    const generation = Math.floor(k / 4);
    const hex = (w.index * 7919 + generation * 104729).toString(16).padStart(10, '0').slice(-10);
    return {
      namespace: w.namespace,
      workload: w.name,
      pod: `${w.name}-${hex}-${'bcdfg'[generation % 5]}x${generation}q${k % 4}`.slice(0, 63),
      podUid: `00000000-0000-4000-8000-${hex.padStart(12, '0')}`,
      node: 'node-a',
      checkpointedAt: rfc3339(now - 2 * HOUR - generation * HOUR - k * 5 * 60_000),
    };
  });
}

/** Checkpoints of the live pod, the newest first. */
function liveSeeds(w: Workload, count: number, now: number): Seed[] {
  return Array.from({ length: count }, (_, k) => ({ namespace: w.namespace, workload: w.name, pod: w.pod, podUid: w.podUid, node: w.node, checkpointedAt: rfc3339(now - (k + 1) * 5 * 60_000) }));
}

// ---------- one failure ----------

interface Sample {
  case: CaseName;
  workload: Workload;
  /** The image its restore must patch in; undefined when it must fall back to a cold start. */
  expectedImage: string | undefined;
  burst: boolean;
  warmup: boolean;
  postedAt?: number;
  status?: number;
}

/** Kills the container, waits for the kubelet to report it, and posts the pod update as the ApiServerSource would. */
async function fail(cluster: SimulatedCluster, urls: Record<CaseName, string>, s: Sample): Promise<void> {
  const { namespace, pod } = s.workload;
  const before = appStatus(cluster.getObject('v1', 'Pod', namespace, pod)).restartCount;
  cluster.killContainer(namespace, pod, CONTAINER, { exitCode: 137 });
  const failed = await until(
    `the kubelet to report the restart of ${namespace}/${pod}`,
    () => {
      const p = cluster.getObject('v1', 'Pod', namespace, pod);
      const st = appStatus(p);
      return st.restartCount > before && st.running ? p : undefined;
    },
    10_000,
    1,
  );
  const { headers, body } = encodeBinary(makeResourceEvent('MODIFIED', failed, cluster.httpsUrl));
  s.postedAt = wallNow();
  const res = await fetch(urls[s.case], { method: 'POST', headers, ...(body ? { body } : {}) });
  await res.arrayBuffer();
  s.status = res.status;
}

// ---------- statistics ----------

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

const ms = (v: number) => (Number.isNaN(v) ? '–' : v < 10 ? v.toFixed(1) : v.toFixed(0));
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const sortedOf = (xs: number[]) => [...xs].sort((a, b) => a - b);

interface Measured {
  sample: Sample;
  event: HandledEvent;
  /** Event posted → first patch sent, in ms. */
  latency: number;
  /** Handler entry → first patch sent. */
  inHandler: number;
}

function check(sample: Sample, event: HandledEvent | undefined): string | undefined {
  const who = `(${sample.case}) ${sample.workload.namespace}/${sample.workload.pod}`;
  if (sample.status !== 202) return `${who}: restore-pod answered ${sample.status}${event?.error ? `: ${event.error}` : ''}`;
  if (!event) return `${who}: restore-pod never saw the event`;
  if (event.patches.length === 0) return `${who}: no patch (emitted ${event.emitted.join(', ') || 'nothing'})`;
  const images = event.patches.at(-1)!.images;
  if (sample.expectedImage !== undefined) {
    if (images.length !== 1 || images[0] !== sample.expectedImage) return `${who}: patched ${JSON.stringify(images)}, expected ${sample.expectedImage}`;
    if (!event.emitted.includes(EventTypes.podRestored)) return `${who}: emitted ${event.emitted.join(', ')}, expected ${EventTypes.podRestored}`;
  } else {
    if (images.length !== 0) return `${who}: patched ${JSON.stringify(images)}, expected no image change (cold start)`;
    if (!event.emitted.includes(EventTypes.restoreFailed)) return `${who}: emitted ${event.emitted.join(', ')}, expected ${EventTypes.restoreFailed}`;
  }
  return undefined;
}

// ---------- the run ----------

async function main(): Promise<void> {
  const o = options(process.argv.slice(2));
  const started = wallNow();
  const loadAtStart = loadavg()[0]!;
  const cleanup: (() => Promise<void> | void)[] = [];
  const scratch = mkdtempSync(join(tmpdir(), 'kcr-bench-restore-'));
  cleanup.push(() => rmSync(scratch, { recursive: true, force: true }));
  try {
    // s3rver keeps every object as files; on tmpfs, seeding and removal do not wait on the disk.
    const s3Dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'kcr-bench-s3-'));
    cleanup.push(() => rmSync(s3Dir, { recursive: true, force: true }));
    const s3Requests: Record<string, { list: number; get: number; put: number }> = {};
    let countS3 = false;
    const s3: EmbeddedS3 = await startEmbeddedS3({
      dir: s3Dir,
      onRequest(req, _res, url) {
        if (!countS3) return;
        const [bucket = '', ...key] = decodeURIComponent(url.pathname).split('/').slice(1);
        const c = (s3Requests[bucket] ??= { list: 0, get: 0, put: 0 });
        if (req.method === 'GET' || req.method === 'HEAD') c[key.join('/') ? 'get' : 'list']++;
        else c.put++;
      },
    });
    cleanup.unshift(() => s3.stop());

    const layout = join(scratch, 'empty-oci-layout');
    mkdirSync(layout);
    const stall = monitorEventLoopDelay({ resolution: 20 });
    stall.enable();
    const cluster = await startSimulatedCluster({
      stateDir: join(scratch, 'cluster'),
      // A slow tick: 1,000 counters must not keep a core busy. Checkpoint images
      // resolve against an empty layout, so the kubelet's pull fails at once.
      kubelet: { tickMs: 1000, dataSize: 1024, imagePullBackoffMs: IMAGE_PULL_BACKOFF_MS },
      imageSources: { 'kcr.local': { kind: 'layout', dir: layout } },
    });
    cleanup.unshift(() => cluster.stop());

    const worker = Worker.start();
    cleanup.unshift(() => worker.stop());
    await worker.request(
      { kind: 'init', kubeconfigPath: cluster.kubeconfigPath, s3: { endpoint: s3.endpoint, accessKey: s3.accessKey, secretKey: s3.secretKey, region: s3.region }, buckets: BUCKETS },
      Done,
    );

    // Which workloads fail in which case: disjoint, spread over the namespaces.
    const order = Array.from({ length: o.workloads }, (_, i) => i);
    let seed = 42;
    for (let i = order.length - 1; i > 0; i--) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      const j = seed % (i + 1);
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    const perCase = o.samples + warmupPerCase(o);
    const caseOf = new Map<number, CaseName>();
    CASES.forEach((c, k) => order.slice(k * perCase, (k + 1) * perCase).forEach((i) => caseOf.set(i, c)));

    const now = Date.now();
    const namespaces = Math.ceil(o.workloads / WORKLOADS_PER_NAMESPACE);
    const names = Array.from({ length: o.workloads }, (_, i) => ({
      index: i,
      namespace: `team-${String(Math.floor(i / WORKLOADS_PER_NAMESPACE)).padStart(3, '0')}`,
      name: `app-${String(i).padStart(4, '0')}`,
    }));
    // Case (c)'s workloads have no checkpoint of their live pod: all their history is of earlier pods.
    const earlier = names.flatMap((w) => earlierSeeds(w, caseOf.get(w.index) === 'c' ? o.checkpoints : o.checkpoints - LIVE_CHECKPOINTS, now));
    const seedingEarlier = worker.request({ kind: 'seed', bucket: 'history', seeds: earlier, parallelism: SEED_PARALLELISM }, Seeded);

    const setupStart = wallNow();
    cluster.seed(...Array.from({ length: namespaces }, (_, n) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: `team-${String(n).padStart(3, '0')}` } })));
    cluster.seed(...names.map((w) => deployment({ name: w.name, namespace: w.namespace, annotations: OPT_IN }) as KubeObject));
    const workloads = await until('every workload to run', () => runningWorkloads(cluster, o.workloads), 10 * 60_000, 500);
    const clusterMs = wallNow() - setupStart;
    const setupStall = stall.max / 1e6;

    const live = workloads.flatMap((w) => (caseOf.get(w.index) === 'c' ? [] : liveSeeds(w, LIVE_CHECKPOINTS, now)));
    const single = workloads.flatMap((w) => liveSeeds(w, 1, now));
    const seeded = [
      await seedingEarlier,
      await worker.request({ kind: 'seed', bucket: 'history', seeds: live, parallelism: SEED_PARALLELISM }, Seeded),
      await worker.request({ kind: 'seed', bucket: 'single', seeds: single, parallelism: SEED_PARALLELISM }, Seeded),
    ];
    const seedMs = wallNow() - setupStart;

    // Both processes read the same wall clock; the round trip bounds the error.
    let clock = { offset: 0, rtt: Number.POSITIVE_INFINITY };
    for (let i = 0; i < 20; i++) {
      const t0 = wallNow();
      const { now: theirs } = await worker.request({ kind: 'clock' }, Clock);
      const t1 = wallNow();
      if (t1 - t0 < clock.rtt) clock = { offset: theirs - (t0 + t1) / 2, rtt: t1 - t0 };
    }
    const urls = await worker.request({ kind: 'serve' }, Served);
    const servedUrls = Object.fromEntries(CASES.map((c) => [c, urls[c] ?? ''])) as Record<CaseName, string>;

    // Round-robin over the cases, so each case sees the same conditions; one at a time, then a burst.
    const byCase = Object.fromEntries(CASES.map((c) => [c, workloads.filter((w) => caseOf.get(w.index) === c)])) as Record<CaseName, Workload[]>;
    const samples: Sample[] = [];
    for (let k = 0; k < perCase; k++) {
      for (const c of CASES) {
        const w = byCase[c][k]!;
        const expectedImage = c === 'c' ? undefined : seedDocuments(BUCKETS[BUCKET_OF[c]], liveSeeds(w, 1, now)[0]!).image.reference;
        samples.push({ case: c, workload: w, expectedImage, burst: false, warmup: k < warmupPerCase(o) });
      }
    }
    const round = ISOLATED_PER_ROUND + o.burst;
    let runStart = wallNow();
    for (let i = 0; i < samples.length; i += round) {
      if (i === round) {
        // The warm-up round is over: count from here.
        cluster.resetApiCalls();
        countS3 = true;
        runStart = wallNow();
      }
      for (const s of samples.slice(i, i + ISOLATED_PER_ROUND)) {
        await fail(cluster, servedUrls, s);
        await sleep(10);
      }
      const burst = samples.slice(i + ISOLATED_PER_ROUND, i + round);
      for (const s of burst) s.burst = true;
      await Promise.all(burst.map((s) => fail(cluster, servedUrls, s)));
      await sleep(50);
    }
    const runMs = wallNow() - runStart;
    countS3 = false;
    const api = cluster.apiCalls();
    const { events } = await worker.request({ kind: 'report' }, Report);

    // ---------- results ----------
    const byPod = new Map(events.map((e) => [e.pod, e]));
    const problems: string[] = [];
    const measured: Measured[] = [];
    for (const s of samples) {
      const event = byPod.get(`${s.workload.namespace}/${s.workload.pod}`);
      const problem = check(s, event);
      if (problem || !event) {
        problems.push(problem ?? 'unreachable');
        continue;
      }
      if (s.warmup) continue;
      const patchAt = event.patches[0]!.at - clock.offset;
      measured.push({ sample: s, event, latency: patchAt - s.postedAt!, inHandler: event.patches[0]!.at - event.handlerAt });
    }

    const col = (c: CaseName) => measured.filter((m) => m.sample.case === c);
    const lat = (ms_: Measured[]) => sortedOf(ms_.map((m) => m.latency));
    const title: Record<CaseName, string> = {
      a: `(a) ${o.checkpoints} checkpoints, newest of the pod`,
      b: '(b) 1 checkpoint',
      c: `(c) ${o.checkpoints} checkpoints, none of the pod`,
    };
    /** Mean of `f` one at a time / in bursts: in bursts, the time is mostly queueing in the cluster's process. */
    const split = (f: (m: Measured) => number) => (c: CaseName) =>
      `${ms(
        mean(
          col(c)
            .filter((m) => !m.sample.burst)
            .map(f),
        ),
      )} / ${ms(
        mean(
          col(c)
            .filter((m) => m.sample.burst)
            .map(f),
        ),
      )}`;
    const rows: [string, (c: CaseName) => string][] = [
      ['failures measured', (c) => String(col(c).length)],
      ['p50 ms', (c) => ms(percentile(lat(col(c)), 50))],
      ['p95 ms', (c) => ms(percentile(lat(col(c)), 95))],
      ['p99 ms', (c) => ms(percentile(lat(col(c)), 99))],
      ['max ms', (c) => ms(percentile(lat(col(c)), 100))],
      ['p50 / p99 ms, one at a time', (c) => `${ms(percentile(lat(col(c).filter((m) => !m.sample.burst)), 50))} / ${ms(percentile(lat(col(c).filter((m) => !m.sample.burst)), 99))}`],
      [`p50 / p99 ms, in bursts of ${o.burst}`, (c) => `${ms(percentile(lat(col(c).filter((m) => m.sample.burst)), 50))} / ${ms(percentile(lat(col(c).filter((m) => m.sample.burst)), 99))}`],
      ['mean ms, one at a time / in bursts: HTTP in (post → handler)', split((m) => m.latency - m.inHandler)],
      ['mean ms, one at a time / in bursts: waiting on S3', split((m) => m.event.s3.msBeforePatch)],
      ['mean ms, one at a time / in bursts: of which listing the checkpoints', split((m) => m.event.s3.listMsBeforePatch)],
      ['mean ms, one at a time / in bursts: waiting on the API server', split((m) => m.event.kube.msBeforePatch)],
      ['mean ms, one at a time / in bursts: restore-pod itself', split((m) => m.inHandler - m.event.s3.msBeforePatch - m.event.kube.msBeforePatch)],
      [
        'S3 requests per failure (list + get + put)',
        (c) => {
          const e = col(c).map((m) => m.event.s3);
          return `${mean(e.map((x) => x.list + x.get + x.put)).toFixed(1)} (${mean(e.map((x) => x.list)).toFixed(1)} + ${mean(e.map((x) => x.get)).toFixed(1)} + ${mean(e.map((x) => x.put)).toFixed(1)})`;
        },
      ],
      ['API calls per failure', (c) => mean(col(c).map((m) => m.event.kube.calls)).toFixed(1)],
      ['patches retried on 409', (c) => String(col(c).filter((m) => m.event.patches.length > 1).length)],
    ];
    const ratio = (p: number, c: CaseName) => (percentile(lat(col(c)), p) / percentile(lat(col('b')), p)).toFixed(2);

    const out: string[] = [];
    out.push(`## restore-pod latency: pod-failure event received → patch sent`);
    out.push('');
    out.push(`| | ${CASES.map((c) => title[c]).join(' | ')} |`);
    out.push(`|---|${CASES.map(() => '---:').join('|')}|`);
    for (const [label, f] of rows) out.push(`| ${label} | ${CASES.map(f).join(' | ')} |`);
    out.push('');
    out.push(`a/b: p50 ${ratio(50, 'a')}×, p99 ${ratio(99, 'a')}×; c/b: p50 ${ratio(50, 'c')}×, p99 ${ratio(99, 'c')}×.`);
    out.push('');
    const s3Total = Object.values(s3Requests).reduce((n, r) => n + r.list + r.get + r.put, 0);
    const s3Client = measured.reduce((n, m) => n + m.event.s3.list + m.event.s3.get + m.event.s3.put, 0);
    const apiClient = measured.reduce((n, m) => n + m.event.kube.calls, 0);
    const byKey = Object.entries(api.byKey)
      .sort(([, x], [, y]) => y - x)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    out.push(
      `- ${o.workloads} annotated single-replica Deployments in ${namespaces} namespaces on ${cluster.nodes.length} simulated nodes; S3 (s3rver): ${seeded[0]!.objects + seeded[1]!.objects} objects in ${BUCKETS.history} (${o.checkpoints} checkpoints × manifest.json + image.json per workload), ${seeded[2]!.objects} in ${BUCKETS.single}.`,
    );
    out.push(
      `- ${measured.length} failures measured, ${o.samples} per case, round-robin over the cases: ${ISOLATED_PER_ROUND} one at a time then ${o.burst} at once, repeated, after one such round to warm up; ${(runMs / 1000).toFixed(1)} s.`,
    );
    out.push(`- Server side during the run: ${s3Total} S3 requests (the handlers counted ${s3Client}); ${api.total} API calls (the handlers counted ${apiClient}): ${byKey}.`);
    out.push(`- Clocks: the worker's wall clock differs by ${clock.offset.toFixed(3)} ms (± ${(clock.rtt / 2).toFixed(3)} ms), corrected for.`);
    out.push(
      `- Setup: workloads running after ${(clusterMs / 1000).toFixed(0)} s (the simulator's event loop stalled up to ${(setupStall / 1000).toFixed(1)} s at most), S3 seeded after ${(seedMs / 1000).toFixed(0)} s; total ${((wallNow() - started) / 1000).toFixed(0)} s.`,
    );
    out.push(
      `- Machine: ${availableParallelism()} cores; 1-minute load average ${loadAtStart.toFixed(1)} at the start, ${loadavg()[0]!.toFixed(1)} at the end (other work on the machine shows here).`,
    );
    console.log(out.join('\n'));
    if (problems.length) {
      console.error(`\n${problems.length} failure(s) not restored as expected:\n${problems.slice(0, 20).join('\n')}`);
      process.exitCode = 1;
    }
  } finally {
    for (const step of cleanup) {
      try {
        await step();
      } catch (err) {
        console.error('cleanup:', err instanceof Error ? err.message : err);
      }
    }
  }
}

await main();
