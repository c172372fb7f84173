// restore-pod's handler against an in-memory Kubernetes port and object store:
// what it does on a node whose runtime cannot restore (no patch, a Warning
// RestoreUnsupported naming the runtime, restore.failed), when the node cannot
// be read, and with a pod that is not bound to a node yet. Milliseconds, no cluster.
import { describe, expect, it } from 'vitest';
import type { CoreV1Event, V1NodeSystemInfo, V1Pod } from '@kubernetes/client-node';
import { checkpointId } from '../../functions/core/contract/checkpoint-id.js';
import { EventTypes } from '../../functions/core/contract/events.js';
import type { KcrEvent } from '../../functions/core/contract/build.js';
import { KubeApiError } from '../../functions/core/kubernetes/errors.js';
import { CheckpointCatalog } from '../../functions/core/storage/checkpoint-catalog.js';
import type { DisruptionRecord } from '../../functions/core/storage/records.js';
import { artifactKey, type CheckpointLocation } from '../../functions/core/storage/layout.js';
import { TransientError } from '../../functions/core/runtime/errors.js';
import type { IncomingEvent } from '../../functions/core/runtime/handler.js';
import { createRestorePod } from '../../functions/restore-pod/handler.js';
import type { RestorePodKube, WorkloadMeta } from '../../functions/restore-pod/kube-port.js';
import { restoreStateKey } from '../../functions/restore-pod/restore-state.js';
import { MemoryStore } from '../support/memory-store.js';
import { capturingLogger } from '../support/logs.js';
import { commitCheckpoint } from './committed.js';

const NOW = new Date('2026-11-30T12:00:00Z');
const NS = 'shop';
const ORIGINAL = 'quay.io/kcr/app:1';
const ago = (ms: number) => new Date(NOW.getTime() - ms);

/** The calls restore-pod makes, kept in memory; patches merge annotations and images as the API server would. */
class FakeKube implements RestorePodKube {
  readonly pods = new Map<string, V1Pod>();
  readonly runtimes = new Map<string, string>();
  readonly patches: { name: string; patch: { metadata?: { annotations?: Record<string, string> }; spec?: { containers: { name: string; image: string }[] } } }[] = [];
  readonly events: CoreV1Event[] = [];
  readonly nodeReads: string[] = [];
  nodeError?: Error;

  async getPod(namespace: string, name: string): Promise<V1Pod | undefined> {
    const p = this.pods.get(`${namespace}/${name}`);
    return p && structuredClone(p);
  }
  async getWorkload(): Promise<WorkloadMeta | undefined> {
    return { metadata: { annotations: { 'kcr.io/checkpoint-restore-schedule': '*/5 * * * *' } } };
  }
  async listPods(namespace: string): Promise<V1Pod[]> {
    return [...this.pods.values()].filter((p) => p.metadata?.namespace === namespace).map((p) => structuredClone(p));
  }
  async patchPod(namespace: string, name: string, patch: object): Promise<unknown> {
    const p = this.pods.get(`${namespace}/${name}`)!;
    const typed = patch as FakeKube['patches'][number]['patch'];
    this.patches.push({ name, patch: typed });
    p.metadata!.annotations = { ...p.metadata!.annotations, ...typed.metadata?.annotations };
    for (const c of typed.spec?.containers ?? []) p.spec!.containers.find((x) => x.name === c.name)!.image = c.image;
    return p;
  }
  async createEvent(event: CoreV1Event): Promise<void> {
    this.events.push(event);
  }
  async nodeReady(): Promise<boolean> {
    return true;
  }
  async nodeInfo(name: string): Promise<V1NodeSystemInfo | undefined> {
    this.nodeReads.push(name);
    if (this.nodeError) throw this.nodeError;
    const version = this.runtimes.get(name);
    if (version === undefined) return undefined;
    return {
      containerRuntimeVersion: version,
      architecture: 'amd64',
      bootID: '',
      kernelVersion: '',
      kubeProxyVersion: '',
      kubeletVersion: 'v1.37.0',
      machineID: '',
      operatingSystem: 'linux',
      osImage: '',
      systemUUID: '',
    };
  }
}

function deploymentPod(name: string, opts: { uid?: string; node?: string; created?: Date; restartCount?: number; failed?: boolean } = {}): V1Pod {
  const restartCount = opts.restartCount ?? 1;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: NS,
      uid: opts.uid ?? `uid-${name}`,
      resourceVersion: '1',
      creationTimestamp: opts.created ?? ago(60 * 60_000),
      labels: { app: 'cart', 'pod-template-hash': '7d9f' },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'cart-7d9f', uid: 'uid-rs', controller: true }],
    },
    spec: { ...(opts.node === undefined ? { nodeName: 'node-a' } : opts.node ? { nodeName: opts.node } : {}), containers: [{ name: 'app', image: ORIGINAL }] },
    status: {
      phase: 'Running',
      containerStatuses: [
        {
          name: 'app',
          image: ORIGINAL,
          imageID: '',
          ready: !opts.failed,
          restartCount,
          state: opts.failed ? { terminated: { exitCode: 137, reason: 'Error', finishedAt: ago(5_000) } } : { running: { startedAt: ago(60_000) } },
        },
      ],
    },
  };
}

async function seedCheckpoint(store: MemoryStore, pod: string, podUid: string, at: string): Promise<string> {
  const id = checkpointId({ podUid, container: 'app', checkpointedAt: at });
  const loc: CheckpointLocation = { namespace: NS, workload: { kind: 'Deployment', name: 'cart' }, container: 'app', id };
  const data = {
    id,
    namespace: NS,
    workload: loc.workload,
    pod,
    podUid,
    container: 'app',
    node: 'node-a',
    archivePath: `/var/lib/kubelet/checkpoints/checkpoint-${pod}_${NS}-app-${at}.tar`,
    checkpointedAt: at,
    artifact: { uri: `s3://${store.bucket}/${artifactKey(loc, 'archive')}`, size: 10, sha256: 'a'.repeat(64) },
  };
  await commitCheckpoint(store, data, 'kcr/shop/deployment-cart-app');
  return id;
}

function setup() {
  const kube = new FakeKube();
  const store = new MemoryStore();
  const { logger, lines } = capturingLogger();
  const handler = createRestorePod({ kube, store, windowMs: 120_000, maxAttempts: 2, now: () => NOW });
  const handle = (pod: V1Pod): Promise<KcrEvent[]> =>
    handler.handle(
      { type: EventTypes.resourceUpdate, data: pod, id: `e-${Math.random()}`, source: 'https://kubernetes.default.svc', extensions: {} } as unknown as IncomingEvent<typeof EventTypes.resourceUpdate>,
      { log: logger },
    );
  return { kube, store, lines, handle };
}

const data = (e: KcrEvent) => e.data as Record<string, unknown>;

describe('restore-pod on a runtime that cannot restore', () => {
  it('restores in place on a runtime that can (CRI-O), reading the node once', async () => {
    const { kube, store, handle } = setup();
    const pod = deploymentPod('cart-7d9f-aaaaa', { failed: true });
    kube.pods.set(`${NS}/cart-7d9f-aaaaa`, pod);
    kube.runtimes.set('node-a', 'cri-o://1.31.0');
    const id = await seedCheckpoint(store, 'cart-7d9f-aaaaa', 'uid-cart-7d9f-aaaaa', '2026-11-30T11:30:00Z');

    const out = await handle(pod);

    expect(out.map((e) => e.type)).toEqual(['io.kcr.pod.restored']);
    expect(data(out[0]!)).toMatchObject({ checkpointId: id, strategy: 'in-place' });
    expect(kube.patches).toHaveLength(1);
    expect(kube.nodeReads).toEqual(['node-a']);
  });

  it.each(['containerd://2.4.0', 'containerd://1.7.22', 'docker://27.3.1'])('on %s: no patch, a Warning RestoreUnsupported naming the runtime, restore.failed', async (runtime) => {
    const { kube, store, handle, lines } = setup();
    const pod = deploymentPod('cart-7d9f-aaaaa', { failed: true });
    kube.pods.set(`${NS}/cart-7d9f-aaaaa`, pod);
    kube.runtimes.set('node-a', runtime);
    const id = await seedCheckpoint(store, 'cart-7d9f-aaaaa', 'uid-cart-7d9f-aaaaa', '2026-11-30T11:30:00Z');

    const out = await handle(pod);

    expect(kube.patches).toEqual([]);
    expect(out.map((e) => e.type)).toEqual(['io.kcr.restore.failed']);
    expect(data(out[0]!)).toMatchObject({ namespace: NS, pod: 'cart-7d9f-aaaaa', container: 'app', checkpointId: id, stage: 'restore' });
    expect(String(data(out[0]!).reason)).toContain(`on node node-a: ${runtime}`);
    expect(kube.events).toHaveLength(1);
    expect(kube.events[0]).toMatchObject({ type: 'Warning', reason: 'RestoreUnsupported', involvedObject: { kind: 'Pod', name: 'cart-7d9f-aaaaa', fieldPath: 'spec.containers{app}' } });
    expect(kube.events[0]!.message).toContain(runtime);
    expect(lines.some((l) => l.level === 40 && String(l.msg).includes(runtime))).toBe(true);
  });

  it('tells of one failure once, however many updates repeat it, and of the next failure again', async () => {
    const { kube, store, handle } = setup();
    const pod = deploymentPod('cart-7d9f-aaaaa', { failed: true });
    kube.pods.set(`${NS}/cart-7d9f-aaaaa`, pod);
    kube.runtimes.set('node-a', 'containerd://2.4.1');
    await seedCheckpoint(store, 'cart-7d9f-aaaaa', 'uid-cart-7d9f-aaaaa', '2026-11-30T11:30:00Z');

    expect(await handle(pod)).toHaveLength(1);
    expect(await handle(pod)).toEqual([]);
    const again = deploymentPod('cart-7d9f-aaaaa', { failed: true, restartCount: 2 });
    kube.pods.set(`${NS}/cart-7d9f-aaaaa`, again);
    expect((await handle(again)).map((e) => e.type)).toEqual(['io.kcr.restore.failed']);
    expect(kube.events.map((e) => e.reason)).toEqual(['RestoreUnsupported', 'RestoreUnsupported']);
    expect(kube.patches).toEqual([]);
  });

  it('a replacement on such a node inherits nothing, and leaves the disruption for another pod', async () => {
    const { kube, store, handle } = setup();
    const catalog = new CheckpointCatalog(store);
    const id = await seedCheckpoint(store, 'cart-7d9f-lost1', 'uid-lost', '2026-11-30T11:50:00Z');
    const record: DisruptionRecord = {
      namespace: NS,
      workload: { kind: 'Deployment', name: 'cart' },
      pod: 'cart-7d9f-lost1',
      podUid: 'uid-lost',
      templateHash: '7d9f',
      reason: 'NodeNotReady',
      at: ago(60_000).toISOString(),
    };
    await catalog.putDisruption(record);
    const fresh = deploymentPod('cart-7d9f-new01', { node: 'node-b', created: ago(30_000) });
    kube.pods.set(`${NS}/cart-7d9f-new01`, fresh);
    kube.runtimes.set('node-b', 'containerd://2.4.0');

    const out = await handle(fresh);

    expect(kube.patches).toEqual([]);
    expect(out.map((e) => [e.type, data(e).checkpointId])).toEqual([['io.kcr.restore.failed', id]]);
    expect(kube.events.map((e) => e.reason)).toEqual(['RestoreUnsupported']);
    expect(await catalog.disruptions(NS, 'Deployment', 'cart')).toEqual([record]);

    // It starts from its own image, as it was: no second word about it.
    const started = deploymentPod('cart-7d9f-new01', { node: 'node-b', created: ago(30_000), restartCount: 0 });
    kube.pods.set(`${NS}/cart-7d9f-new01`, started);
    expect(await handle(started)).toEqual([]);
    expect(kube.events).toHaveLength(1);
  });

  it('a cold start needs no restore: it goes ahead without reading the node', async () => {
    const { kube, handle } = setup();
    const pod = deploymentPod('cart-7d9f-aaaaa', { failed: true });
    kube.pods.set(`${NS}/cart-7d9f-aaaaa`, pod);
    kube.runtimes.set('node-a', 'containerd://2.4.0');

    const out = await handle(pod);

    expect(out.map((e) => e.type)).toEqual(['io.kcr.restore.failed']);
    expect(String(data(out[0]!).reason)).toBe('exit code 137 (Error); no restorable checkpoint');
    expect(kube.events.map((e) => e.reason)).toEqual(['RestoreFailed']);
    expect(Object.keys(kube.patches[0]!.patch.metadata?.annotations ?? {})).toEqual([restoreStateKey('app')]);
    expect(kube.nodeReads).toEqual([]);
  });

  it('a healthy pod costs no node read', async () => {
    const { kube, handle } = setup();
    const pod = deploymentPod('cart-7d9f-aaaaa');
    pod.metadata!.annotations = { [restoreStateKey('app')]: JSON.stringify({ tried: [], restoredAt: ago(60_000).toISOString(), seenRestarts: 0, originalImage: ORIGINAL }) };
    kube.pods.set(`${NS}/cart-7d9f-aaaaa`, pod);
    expect(await handle(pod)).toEqual([]);
    expect(kube.nodeReads).toEqual([]);
  });
});

describe('restore-pod when the node cannot be told', () => {
  async function failing(nodeError?: Error, withNodeInfo = true) {
    const s = setup();
    const pod = deploymentPod('cart-7d9f-aaaaa', { failed: true });
    s.kube.pods.set(`${NS}/cart-7d9f-aaaaa`, pod);
    if (nodeError) s.kube.nodeError = nodeError;
    if (!withNodeInfo) Object.assign(s.kube, { nodeInfo: undefined });
    await seedCheckpoint(s.store, 'cart-7d9f-aaaaa', 'uid-cart-7d9f-aaaaa', '2026-11-30T11:30:00Z');
    return { ...s, pod };
  }

  it('RBAC forbids reading nodes: restores as before, and the log says what to grant', async () => {
    const { kube, handle, pod, lines } = await failing(new KubeApiError('get node node-a: HTTP 403: nodes "node-a" is forbidden', 403));
    expect((await handle(pod)).map((e) => e.type)).toEqual(['io.kcr.pod.restored']);
    expect(kube.patches).toHaveLength(1);
    expect(lines.some((l) => String(l.msg).includes('grant restore-pod "get" on "nodes"'))).toBe(true);
  });

  it('the node is gone: restores (the runtime is unknown, not unable)', async () => {
    const { kube, handle, pod } = await failing();
    expect((await handle(pod)).map((e) => e.type)).toEqual(['io.kcr.pod.restored']);
    expect(kube.nodeReads).toEqual(['node-a']);
  });

  it('a port that cannot read nodes: restores unchecked', async () => {
    const { kube, handle, pod } = await failing(undefined, false);
    expect((await handle(pod)).map((e) => e.type)).toEqual(['io.kcr.pod.restored']);
    expect(kube.patches).toHaveLength(1);
  });

  it('a transient failure reading the node fails the event (503, the broker retries), patching nothing', async () => {
    const { kube, handle, pod } = await failing(new TransientError('get node node-a: HTTP 503: unavailable'));
    await expect(handle(pod)).rejects.toThrow(TransientError);
    expect(kube.patches).toEqual([]);
  });
});

describe('a replacement not bound to a node yet', () => {
  it('waits for the update that binds it, then inherits', async () => {
    const { kube, store, handle } = setup();
    const catalog = new CheckpointCatalog(store);
    const id = await seedCheckpoint(store, 'cart-7d9f-lost1', 'uid-lost', '2026-11-30T11:50:00Z');
    await catalog.putDisruption({
      namespace: NS,
      workload: { kind: 'Deployment', name: 'cart' },
      pod: 'cart-7d9f-lost1',
      podUid: 'uid-lost',
      templateHash: '7d9f',
      reason: 'NodeNotReady',
      at: ago(60_000).toISOString(),
    });
    const pending = deploymentPod('cart-7d9f-new01', { node: '', created: ago(30_000) });
    pending.status = { phase: 'Pending' };
    kube.pods.set(`${NS}/cart-7d9f-new01`, pending);
    kube.runtimes.set('node-b', 'cri-o://1.31.0');

    expect(await handle(pending)).toEqual([]);
    expect(kube.patches).toEqual([]);
    expect((await catalog.disruptions(NS, 'Deployment', 'cart'))[0]?.claimedBy).toBeUndefined();

    const bound = { ...pending, spec: { ...pending.spec!, nodeName: 'node-b' } };
    kube.pods.set(`${NS}/cart-7d9f-new01`, bound);
    const out = await handle(bound);
    expect(out.map((e) => [e.type, data(e).strategy, data(e).checkpointId])).toEqual([['io.kcr.pod.restored', 'replacement', id]]);
    expect(kube.nodeReads).toEqual(['node-b']);
    expect((await catalog.disruptions(NS, 'Deployment', 'cart'))[0]?.claimedBy).toEqual({ pod: 'cart-7d9f-new01', uid: 'uid-cart-7d9f-new01' });
  });
});

describe('io.kcr.restore.requested (kcr restore --to)', () => {
  function request(handler: ReturnType<typeof setup>, body: Record<string, unknown>): Promise<KcrEvent[]> {
    const { logger } = capturingLogger();
    const h = createRestorePod({ kube: handler.kube, store: handler.store, windowMs: 120_000, maxAttempts: 2, now: () => NOW });
    return h.handle({ type: EventTypes.restoreRequested, data: body, id: 'r-1', source: '/kcr/cli', extensions: {} } as unknown as IncomingEvent<typeof EventTypes.restoreRequested>, { log: logger });
  }

  it('puts a running pod on an older checkpoint, by digest, with a fresh loop-guard cycle; a redelivery changes nothing', async () => {
    const s = setup();
    const pod = deploymentPod('cart-7d9f-aaaaa', { restartCount: 0 });
    s.kube.pods.set(`${NS}/cart-7d9f-aaaaa`, pod);
    const older = await seedCheckpoint(s.store, 'cart-7d9f-aaaaa', 'uid-cart-7d9f-aaaaa', '2026-11-30T11:00:00Z');
    await seedCheckpoint(s.store, 'cart-7d9f-aaaaa', 'uid-cart-7d9f-aaaaa', '2026-11-30T11:30:00Z');

    const out = await request(s, { namespace: NS, kind: 'Deployment', name: 'cart', checkpointId: older });

    expect(out.map((e) => e.type)).toEqual(['io.kcr.pod.restored']);
    expect(data(out[0]!)).toMatchObject({ pod: 'cart-7d9f-aaaaa', container: 'app', checkpointId: older, strategy: 'in-place' });
    expect(s.kube.patches).toHaveLength(1);
    const image = s.kube.patches[0]!.patch.spec!.containers[0]!.image;
    expect(image).toMatch(/@sha256:[0-9a-f]{64}$/);
    const state = JSON.parse(s.kube.patches[0]!.patch.metadata!.annotations![restoreStateKey('app')]!) as Record<string, unknown>;
    expect(state).toMatchObject({ tried: [older], current: older, originalImage: ORIGINAL, seenRestarts: 1 });
    expect(s.kube.events.map((e) => e.reason)).toEqual(['Restored']);

    expect(await request(s, { namespace: NS, pod: 'cart-7d9f-aaaaa', checkpointId: older })).toEqual([]);
    expect(s.kube.patches).toHaveLength(1);
  });

  it("refuses another workload's, a bad, or an unknown checkpoint: nothing patched, a Warning RestoreRefused", async () => {
    const s = setup();
    s.kube.pods.set(`${NS}/cart-7d9f-aaaaa`, deploymentPod('cart-7d9f-aaaaa', { restartCount: 0 }));
    const id = await seedCheckpoint(s.store, 'cart-7d9f-aaaaa', 'uid-cart-7d9f-aaaaa', '2026-11-30T11:00:00Z');
    const loc: CheckpointLocation = { namespace: NS, workload: { kind: 'Deployment', name: 'cart' }, container: 'app', id };
    // The same records under another workload's key: never found from cart's pods.
    const other = { ...loc, workload: { kind: 'Deployment' as const, name: 'shop' } };
    for (const f of ['manifest', 'image'] as const) await s.store.putJson(artifactKey(other, f), await s.store.getJson(artifactKey(loc, f)));
    await new CheckpointCatalog(s.store).markBad(loc, 'failed again after restore', NOW);

    const bad = await request(s, { namespace: NS, pod: 'cart-7d9f-aaaaa', checkpointId: id });
    expect(bad.map((e) => e.type)).toEqual(['io.kcr.restore.failed']);
    expect(String(data(bad[0]!).reason)).toContain('not a restorable checkpoint of Deployment shop/cart');
    const unknown = await request(s, { namespace: NS, pod: 'cart-7d9f-aaaaa', checkpointId: '20200101T000000Z-0123456789ab' });
    expect(unknown.map((e) => e.type)).toEqual(['io.kcr.restore.failed']);
    const gone = await request(s, { namespace: NS, pod: 'nothing-here', checkpointId: id });
    expect(String(data(gone[0]!).reason)).toContain('does not exist');
    expect(s.kube.patches).toEqual([]);
    expect(s.kube.events.map((e) => e.reason)).toEqual(['RestoreRefused', 'RestoreRefused']);
  });

  it('refuses on a node whose runtime cannot restore', async () => {
    const s = setup();
    s.kube.pods.set(`${NS}/cart-7d9f-aaaaa`, deploymentPod('cart-7d9f-aaaaa', { restartCount: 0 }));
    s.kube.runtimes.set('node-a', 'containerd://2.4.0');
    const id = await seedCheckpoint(s.store, 'cart-7d9f-aaaaa', 'uid-cart-7d9f-aaaaa', '2026-11-30T11:00:00Z');
    const out = await request(s, { namespace: NS, pod: 'cart-7d9f-aaaaa', checkpointId: id });
    expect(String(data(out[0]!).reason)).toContain('node node-a cannot restore');
    expect(s.kube.patches).toEqual([]);
  });
});
