// The whole local stack for end-to-end tests: started once per file with the
// test timings, every event the broker receives recorded, and the helpers the
// scenarios share (wait for an event, checkpoint a pod through the chain, wait
// until nothing more happens). `useLocalStack` registers its own beforeAll/afterAll.
import { afterAll, beforeAll } from 'vitest';
import { AppsV1Api, CoreV1Api, PatchStrategy, setHeaderOptions, type V1PodList } from '@kubernetes/client-node';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startStack, type Stack } from '../../local/stack.js';
import type { WireEvent } from '../../functions/core/runtime/cloudevents-http.js';
import { events as build } from '../../functions/core/contract/build.js';
import { Kubernetes } from '../../functions/core/kubernetes/kubernetes.js';
import { deployment, statefulSet } from '../../simulator/workloads.js';
import { optionalBinary } from './binaries.js';
import { SWIFT_START_TIMEOUT_MS, testRingsDir, testS3Kind } from './s3.js';
import { until as poll } from './wait.js';

export const NS = 'default';
// Opted in, with a schedule that does not fire during the test: checkpoints are taken on demand.
export const OPT_IN = { 'kcr.io/checkpoint-restore-schedule': '0 0 1 1 *' };

/** startStack's options but where state lives and which registry: the kit picks those. */
export type LocalStackOptions = Omit<Parameters<typeof startStack>[0], 'stateDir' | 'registryBinary'>;

/** Fast kubelet restarts and broker retries, small containers: the stack as most tests want it. */
export const TEST_TIMINGS = {
  kubelet: { tickMs: 50, backoffBaseMs: 100, backoffMaxMs: 400, dataSize: 4096 },
  backoffScale: 0.05,
} satisfies LocalStackOptions;

/** An event the broker received, its data parsed. */
export interface Seen {
  type: string;
  data: Record<string, unknown>;
  event: WireEvent;
}

export interface LocalStack {
  /** Set by the kit's beforeAll. */
  readonly stack: Stack;
  readonly kube: Kubernetes;
  readonly apps: AppsV1Api;
  readonly core: CoreV1Api;
  /** Every event the broker received, in order. */
  readonly seen: Seen[];
  /** The received events of a type, about one pod when given. */
  of(type: string, pod?: string): Seen[];
  /** Polls until `probe` gives a value (not undefined or false); a timeout names `what` and the last kcr events. */
  until<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs?: number): Promise<T>;
  /**
   * Publishes io.kcr.checkpoint.requested for the pod and waits for one
   * image.built per container; returns those, in order. Waits first for the
   * second after the pod's last checkpoint, since the kubelet names archives by
   * the second: one in the same second would be the same checkpoint.
   */
  checkpoint(pod: string, containers?: number): Promise<Seen[]>;
  /**
   * Waits until nothing more happens: a round in which the broker went idle,
   * every pod ran (or had finished) with none pending or terminating, and a
   * marker change made through each watched resource (Pods, Deployments,
   * StatefulSets) reached the broker after every change before it and was
   * delivered, with no other event received meanwhile. Watch streams deliver
   * in order, so what the last events caused in the cluster has been handled.
   */
  settle(): Promise<void>;
  /** The object keys under a prefix. */
  keys(prefix: string): Promise<string[]>;
}

const SETTLE_NS = 'kcr-settle';
const SETTLE_ANNOTATION = 'test.kcr.io/settle';

/** Pods that may still change by themselves: not yet running every container, or terminating; settle's markers aside. */
function unsettledPods(pods: V1PodList): string[] {
  return pods.items
    .filter((p) => p.metadata?.namespace !== SETTLE_NS)
    .filter((p) => {
      if (p.metadata?.deletionTimestamp) return true;
      const phase = p.status?.phase;
      if (phase === 'Succeeded' || phase === 'Failed') return false;
      const statuses = p.status?.containerStatuses ?? [];
      return phase !== 'Running' || (p.spec?.containers ?? []).some((c) => !statuses.find((s) => s.name === c.name)?.state?.running);
    })
    .map((p) => `${p.metadata?.namespace}/${p.metadata?.name}`);
}

/** Starts the local stack for the file (state in a temp dir named by `name`), stops and removes it after. */
export function useLocalStack(name: string, options: LocalStackOptions): LocalStack {
  let started: { stack: Stack; kube: Kubernetes; apps: AppsV1Api; core: CoreV1Api; dir: string } | undefined;
  const seen: Seen[] = [];
  const get = () => {
    if (!started) throw new Error('the local stack is used before its beforeAll ran');
    return started;
  };

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), `kcr-${name}-`));
    try {
      const registryBinary = optionalBinary('docker-registry');
      const stack = await startStack({ s3: testS3Kind(), swiftRingsDir: `${testRingsDir()}-stack`, ...options, stateDir: dir, ...(registryBinary ? { registryBinary } : {}) });
      started = { stack, dir, kube: new Kubernetes(stack.cluster.kubeConfig), apps: stack.cluster.kubeConfig.makeApiClient(AppsV1Api), core: stack.cluster.kubeConfig.makeApiClient(CoreV1Api) };
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    started.stack.broker.onDelivery((o) => {
      if (o.kind === 'received') seen.push({ type: o.event.attributes.type ?? '', data: JSON.parse(o.event.data?.toString('utf8') ?? 'null') as Record<string, unknown>, event: o.event });
    });
  }, SWIFT_START_TIMEOUT_MS);
  afterAll(async () => {
    await started?.stack.stop();
    if (started) rmSync(started.dir, { recursive: true, force: true });
  });

  const of = (type: string, pod?: string) => seen.filter((e) => e.type === type && (!pod || e.data.pod === pod));
  const lastEvents = () =>
    `events: ${seen
      .filter((e) => e.type.startsWith('io.kcr'))
      .slice(-15)
      .map((e) => `${e.type} ${String(e.data.pod ?? e.data.name ?? '')}`)
      .join(', ')}`;
  const until: LocalStack['until'] = (what, probe, timeoutMs = 15_000) => poll(what, probe, { timeout: timeoutMs, context: lastEvents });

  // settle's markers: a Pod no scheduler binds, and a Deployment and a StatefulSet of no
  // replicas, in a namespace of their own; kcr's functions take them for workloads not opted in.
  let markers = 0;
  const isMarker = (e: Seen) => e.event.attributes.namespace === SETTLE_NS;
  async function passMarkers(): Promise<void> {
    const { core, apps } = get();
    if (markers === 0) {
      await core.createNamespace({ body: { metadata: { name: SETTLE_NS } } });
      const marker = { name: 'marker', namespace: SETTLE_NS, replicas: 0 };
      await core.createNamespacedPod({
        namespace: SETTLE_NS,
        body: { metadata: { name: 'marker' }, spec: { schedulerName: 'kcr-settle-marker', containers: [{ name: 'app', image: 'quay.io/kcr/app:1' }] } },
      });
      await apps.createNamespacedDeployment({ namespace: SETTLE_NS, body: deployment(marker) });
      await apps.createNamespacedStatefulSet({ namespace: SETTLE_NS, body: statefulSet(marker) });
    }
    const n = String(++markers);
    const body = { metadata: { annotations: { [SETTLE_ANNOTATION]: n } } };
    const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
    await core.patchNamespacedPod({ namespace: SETTLE_NS, name: 'marker', body }, merge);
    await apps.patchNamespacedDeployment({ namespace: SETTLE_NS, name: 'marker', body }, merge);
    await apps.patchNamespacedStatefulSet({ namespace: SETTLE_NS, name: 'marker', body }, merge);
    const passed = (kind: string) =>
      seen.some((e) => isMarker(e) && e.event.attributes.kind === kind && (e.data.metadata as { annotations?: Record<string, string> } | undefined)?.annotations?.[SETTLE_ANNOTATION] === n);
    await until(`settle marker ${n} through the Pod, Deployment and StatefulSet watches`, () => ['Pod', 'Deployment', 'StatefulSet'].every(passed));
  }

  return {
    get stack() {
      return get().stack;
    },
    get kube() {
      return get().kube;
    },
    get apps() {
      return get().apps;
    },
    get core() {
      return get().core;
    },
    seen,
    of,
    until,
    async checkpoint(pod, containers = 1) {
      const before = of('io.kcr.image.built', pod).length;
      const last = of('io.kcr.image.built', pod).at(-1)?.data.checkpointedAt;
      if (typeof last === 'string') await until('the second after the last checkpoint', () => Date.now() >= Date.parse(last) + 1000);
      await get().stack.broker.publish(build.checkpointRequested({ namespace: NS, pod }, { source: 'test' }));
      await until(`image built for ${pod}`, () => of('io.kcr.image.built', pod).length >= before + containers);
      return of('io.kcr.image.built', pod).slice(before, before + containers);
    },
    async settle() {
      const { broker } = get().stack;
      for (let round = 1; ; round++) {
        const from = seen.length;
        await broker.idle();
        await until('every pod running or finished, none pending or terminating', async () => unsettledPods(await get().core.listPodForAllNamespaces()).length === 0);
        await passMarkers();
        await broker.idle();
        const news = seen.slice(from).filter((e) => !isMarker(e));
        if (news.length === 0) return;
        if (round === 20) throw new Error(`the stack did not settle: 20 rounds each received events, the last ${news.map((e) => e.type).join(', ')}`);
      }
    },
    async keys(prefix) {
      const out: string[] = [];
      for await (const o of get().stack.store.list(prefix)) out.push(o.key);
      return out;
    },
  };
}
