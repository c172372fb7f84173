// The demo the local mode runs: an annotated counter Deployment and a
// StatefulSet get checkpointed on a seconds schedule (created → stored → image
// built); then the counter's container is killed and web-0 is evicted, and
// both come back with their state. Each step records whether it happened.
import { AppsV1Api } from '@kubernetes/client-node';
import type { Stack } from './stack.js';
import type { BrokerObservation } from './broker.js';
import { dataOf } from '../functions/core/runtime/cloudevents-http.js';
import { artifactKey } from '../functions/core/storage/layout.js';
import { readTar } from '../simulator/archive.js';
import { decodePages, PAGES_MAGIC } from '../simulator/state.js';
import { lastCounter } from '../simulator/kubelet/podman-runtime.js';
import type { ImageBuiltData } from '../functions/core/contract/events.js';
import { errorMessage } from '../functions/core/runtime/errors.js';
import { checkRedis, fillRedis, redisCli, redisDeployment, type RedisSample } from './redis-demo.js';
import { join } from 'node:path';

/** Keys the Redis demo holds (random 100-character values; ~2.5 MB of memory). */
const REDIS_KEYS = 10_000;

const DEMO_NAMESPACE = 'default';
const DEMO_SCHEDULE = '*/10 * * * * *';

export interface StepResult {
  step: string;
  ok: boolean;
  seconds: number;
  detail: string;
}

interface DemoOptions {
  /** Called with each step as it ends. */
  onStep?: (r: StepResult) => void;
  /** Longest wait for any one step. */
  stepTimeoutMs?: number;
}

interface Seen {
  type: string;
  data: Record<string, unknown>;
}

export async function runDemo(stack: Stack, options: DemoOptions = {}): Promise<StepResult[]> {
  const ns = DEMO_NAMESPACE;
  const timeout = options.stepTimeoutMs ?? 60_000;
  const apps = stack.cluster.kubeConfig.makeApiClient(AppsV1Api);
  const seen: Seen[] = [];
  const unsubscribe = stack.broker.onDelivery((o: BrokerObservation) => {
    if (o.kind === 'received') seen.push({ type: o.event.attributes.type ?? '', data: (dataOf(o.event) ?? {}) as Record<string, unknown> });
  });
  const results: StepResult[] = [];
  const t0 = Date.now();
  // The Redis demo needs real process memory: only on the podman runtime.
  const podman = stack.cluster.runtime === 'podman' ? stack.podman : undefined;
  const redisSockets = join(stack.cluster.stateDir, '..', 'redis-sockets');

  async function step(name: string, run: () => Promise<string>): Promise<boolean> {
    const started = Date.now();
    let r: StepResult;
    try {
      r = { step: name, ok: true, seconds: 0, detail: await run() };
    } catch (err) {
      r = { step: name, ok: false, seconds: 0, detail: errorMessage(err) };
    }
    r.seconds = (Date.now() - started) / 1000;
    results.push(r);
    options.onStep?.(r);
    return r.ok;
  }

  async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>): Promise<T> {
    const deadline = Date.now() + timeout;
    for (;;) {
      const v = await probe();
      if (v !== undefined) return v;
      if (Date.now() > deadline) throw new Error(`no ${what} within ${timeout / 1000} s`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const find = (type: string, pred: (d: Record<string, unknown>) => boolean = () => true) => seen.find((e) => e.type === type && pred(e.data))?.data;
  const podOf = async (selector: string) =>
    until(`running pod for ${selector}`, async () => {
      const pods = await stack.cluster.kubeConfig.makeApiClient((await import('@kubernetes/client-node')).CoreV1Api).listNamespacedPod({ namespace: ns, labelSelector: selector });
      return pods.items.find((p) => p.status?.phase === 'Running' && !p.metadata?.deletionTimestamp)?.metadata?.name;
    });

  /**
   * The counter a checkpoint holds, read back from the archive in S3: a simulated archive
   * carries it in pages-1.img; a real one holds CRIU's raw pages, so the counter is the last
   * the process printed before the dump (ctr.log, which podman exports with it).
   */
  async function checkpointedCounter(built: ImageBuiltData): Promise<number> {
    const stream = await stack.store.getStream(artifactKey({ namespace: built.namespace, workload: built.workload, container: built.container, id: built.id }, 'archive'));
    const chunks: Buffer[] = [];
    for await (const c of stream) chunks.push(c as Buffer);
    const files = await readTar(Buffer.concat(chunks), new Set(['checkpoint/pages-1.img', 'ctr.log']));
    const pages = files.get('checkpoint/pages-1.img');
    if (!pages) throw new Error(`checkpoint ${built.id} holds no checkpoint/pages-1.img`);
    if (pages.subarray(0, PAGES_MAGIC.length).toString('ascii') === PAGES_MAGIC) return decodePages(pages).state.counter;
    const logged = lastCounter(files.get('ctr.log')?.toString('utf8') ?? '');
    if (logged === undefined) throw new Error(`checkpoint ${built.id}: no counter in its ctr.log`);
    return logged;
  }

  /** Waits for `pod` to run restored, and checks its counter went on from the checkpoint. */
  async function continued(pod: string, built: ImageBuiltData, before: number | undefined): Promise<string> {
    const from = await checkpointedCounter(built);
    // A restored real process prints its next counter once it runs again: wait for one past the checkpoint's.
    const s = await until(`restored ${pod}`, () => {
      const st = stack.cluster.containerState(ns, pod, 'app');
      return st?.running && st.restoredFrom && st.counter > from ? st : undefined;
    });
    if (s.counter < from) throw new Error(`${pod}: counter ${s.counter} is below the checkpointed ${from}`);
    return `before the kill ${before ?? '?'}, checkpointed ${from} (${(built.artifact.size / 1024 / 1024).toFixed(1)} MiB archive), after the restore ${s.counter} (a cold start would begin at ${stack.cluster.runtime === 'podman' ? 1 : 0})`;
  }

  try {
    const annotations = { 'kcr.io/checkpoint-restore-schedule': DEMO_SCHEDULE };
    const template = (name: string) => ({ metadata: { labels: { app: name } }, spec: { containers: [{ name: 'app', image: `quay.io/kcr/${name}:1` }] } });
    await step('annotate a Deployment and a StatefulSet', async () => {
      await apps.createNamespacedDeployment({
        namespace: ns,
        body: { metadata: { name: 'counter', annotations }, spec: { replicas: 1, selector: { matchLabels: { app: 'counter' } }, template: template('counter') } },
      });
      await apps.createNamespacedStatefulSet({
        namespace: ns,
        body: { metadata: { name: 'web', annotations }, spec: { replicas: 1, serviceName: 'web', selector: { matchLabels: { app: 'web' } }, template: template('web') } },
      });
      if (podman) await apps.createNamespacedDeployment({ namespace: ns, body: redisDeployment(await podman.ensureRedisImage(), redisSockets, annotations) });
      return `counter and web${podman ? ' (and redis, on podman)' : ''}, schedule "${DEMO_SCHEDULE}"`;
    });
    await step('PingSources created by schedule-sync', async () => {
      await until('schedule.synced for both', () => (['counter', 'web'].every((n) => find('io.kcr.schedule.synced', (d) => d.name === n && d.action === 'created')) ? true : undefined));
      return 'kcr-deployment-counter, kcr-statefulset-web';
    });
    let redisFilled: { sample: RedisSample; at: number; pod: string } | undefined;
    if (podman) {
      await step(`fill Redis with ${REDIS_KEYS} keys (persistence off: memory only)`, async () => {
        const pod = await podOf('app=redis');
        await until('Redis answering on its unix socket', () =>
          redisCli(redisSockets, ['PING']).then(
            (r) => (r === 'PONG' ? r : undefined),
            () => undefined,
          ),
        );
        const sample = await fillRedis(redisSockets, REDIS_KEYS);
        redisFilled = { sample, at: Date.now(), pod };
        return `${pod}: DBSIZE ${await redisCli(redisSockets, ['DBSIZE'])}`;
      });
    }
    const counterPod = await podOf('app=counter');
    let counterBuilt: ImageBuiltData | undefined;
    let webBuilt: ImageBuiltData | undefined;
    const checkpointed = await step('checkpoint created → stored → image built', async () => {
      counterBuilt = (await until('image.built for counter', () => find('io.kcr.image.built', (d) => d.pod === counterPod))) as unknown as ImageBuiltData;
      webBuilt = (await until('image.built for web-0', () => find('io.kcr.image.built', (d) => d.pod === 'web-0'))) as unknown as ImageBuiltData;
      return `${counterBuilt.id} (counter), ${webBuilt.id} (web-0), ${(counterBuilt.artifact.size / 1024 / 1024).toFixed(1)} MiB each`;
    });
    if (checkpointed && counterBuilt && webBuilt) {
      const cb = counterBuilt;
      const wb = webBuilt;
      let counterBefore: number | undefined;
      await step(`kill the container of ${counterPod}`, async () => {
        counterBefore = stack.cluster.containerState(ns, counterPod, 'app')?.counter;
        stack.cluster.killContainer(ns, counterPod, 'app', { exitCode: 137 });
        return `counter was ${counterBefore}; ${stack.cluster.runtime === 'podman' ? 'SIGKILL' : 'exit code 137'}`;
      });
      await step('restore-pod restores it in place', async () => {
        const r = await until('pod.restored for counter', () => find('io.kcr.pod.restored', (d) => d.pod === counterPod));
        return `${String(r.checkpointId)} (${String(r.strategy)})`;
      });
      await step('its state continues', () => continued(counterPod, newestBuilt(seen, counterPod) ?? cb, counterBefore));
      let webBefore: number | undefined;
      await step('evict web-0 (node memory pressure)', async () => {
        webBefore = stack.cluster.containerState(ns, 'web-0', 'app')?.counter;
        stack.cluster.evictPod(ns, 'web-0', 'The node was low on resource: memory.');
        return `counter was ${webBefore}; phase Failed, reason Evicted`;
      });
      await step("the replacement web-0 inherits web-0's checkpoint", async () => {
        const r = await until('pod.restored for web-0', () => find('io.kcr.pod.restored', (d) => d.pod === 'web-0' && d.strategy === 'replacement'));
        return `${String(r.checkpointId)} (${String(r.strategy)})`;
      });
      await step("web-0's state continues", () => continued('web-0', newestBuilt(seen, 'web-0') ?? wb, webBefore));
    }
    if (podman && redisFilled) {
      const { pod, sample, at } = redisFilled;
      let redisBuilt: ImageBuiltData | undefined;
      const redisCheckpointed = await step('Redis checkpointed with every key', async () => {
        // The kubelet names archives by the second: one from a later second holds every key.
        redisBuilt = (await until('image.built for redis after the fill', () =>
          find('io.kcr.image.built', (d) => d.pod === pod && Date.parse(String(d.checkpointedAt)) >= at),
        )) as unknown as ImageBuiltData;
        return `${redisBuilt.id}, ${(redisBuilt.artifact.size / 1024 / 1024).toFixed(1)} MiB archive`;
      });
      if (redisCheckpointed) {
        await step(`kill Redis (${pod})`, async () => {
          const before = await checkRedis(redisSockets, sample);
          stack.cluster.killContainer(ns, pod, 'app');
          return `DBSIZE was ${before.dbsize}; SIGKILL`;
        });
        await step('Redis restored with its data', async () => {
          const r = await until('pod.restored for redis', () => find('io.kcr.pod.restored', (d) => d.pod === pod));
          await until('Redis restored and answering', async () => {
            const st = stack.cluster.containerState(ns, pod, 'app');
            if (!st?.running || !st.restoredFrom) return undefined;
            return redisCli(redisSockets, ['PING']).then(
              (x) => (x === 'PONG' ? x : undefined),
              () => undefined,
            );
          });
          const after = await checkRedis(redisSockets, sample);
          if (after.dbsize !== sample.keys || after.wrong.length)
            throw new Error(`after the restore DBSIZE ${after.dbsize} (expected ${sample.keys}), wrong values: ${after.wrong.join(', ') || 'none'}`);
          return `before the kill DBSIZE ${sample.keys}, after the restore DBSIZE ${after.dbsize} and ${sample.sample.size} sampled values equal, from ${String(r.checkpointId)} (a cold start would hold 0 keys)`;
        });
      }
    }
  } finally {
    unsubscribe();
  }
  results.push({ step: 'total', ok: results.every((r) => r.ok), seconds: (Date.now() - t0) / 1000, detail: `${seen.length} events through the broker` });
  return results;
}

/** The newest image built for a pod when the kill happened: what restore-pod chose from. */
function newestBuilt(seen: Seen[], pod: string): ImageBuiltData | undefined {
  const restored = seen.find((e) => e.type === 'io.kcr.pod.restored' && e.data.pod === pod);
  const id = restored?.data.checkpointId;
  return seen.find((e) => e.type === 'io.kcr.image.built' && e.data.id === id)?.data as unknown as ImageBuiltData | undefined;
}
