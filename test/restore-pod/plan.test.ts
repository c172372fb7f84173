// restore-pod's decisions as tables (functions/restore-pod/plan.ts): the loop
// guard within and after its window, the fallback to the next older
// checkpoint, the cold start after maxAttempts, redeliveries, the gave-up
// window, replacements and refusals. No I/O: each case is a snapshot in, a plan out.
import { describe, expect, it } from 'vitest';
import type { V1Pod } from '@kubernetes/client-node';
import { checkpointId } from '../../functions/core/contract/checkpoint-id.js';
import type { RestorableCheckpoint } from '../../functions/core/storage/checkpoint-catalog.js';
import type { DisruptionRecord } from '../../functions/core/storage/records.js';
import { candidateSearch, planFailure, refusalOf, replacementPlan, replacementRecord, type FailureSnapshot } from '../../functions/restore-pod/plan.js';
import { restoreStateKey, type RestoreState } from '../../functions/restore-pod/restore-state.js';

const NOW = new Date('2026-11-30T12:00:00Z');
const WINDOW = 120_000;
const ORIGINAL = 'quay.io/kcr/app:1';
const POD = 'cart-7d9f-aaaaa';

const ago = (ms: number) => new Date(NOW.getTime() - ms);

function checkpoint(pod: string, at: string): RestorableCheckpoint {
  const podUid = `uid-${pod}`;
  const id = checkpointId({ podUid, container: 'app', checkpointedAt: at });
  return { id, pod, podUid, image: `kcr.local/kcr/shop/deployment-cart-app@sha256:${id.slice(-12).padStart(64, '0')}` };
}

const older = checkpoint(POD, '2026-11-30T11:00:00Z');
const newer = checkpoint(POD, '2026-11-30T11:30:00Z');
const sibling = checkpoint('cart-7d9f-bbbbb', '2026-11-30T11:45:00Z');
const inherited = checkpoint('cart-7d9f-zzzzz', '2026-11-30T10:00:00Z');
/** What S3 holds for the container, newest first. */
const ALL = [sibling, newer, older, inherited];

function pod(image: string, state?: RestoreState): V1Pod {
  return {
    metadata: { name: POD, namespace: 'shop', uid: 'uid-pod', ...(state ? { annotations: { [restoreStateKey('app')]: JSON.stringify(state) } } : {}) },
    spec: { nodeName: 'node-a', containers: [{ name: 'app', image }] },
  };
}

function snapshot(image: string, state: RestoreState | undefined, restartCount: number, at: Date = NOW): FailureSnapshot {
  return { pod: pod(image, state), failure: { container: 'app', restartCount, reason: 'exit code 137', at }, state, now: NOW, windowMs: WINDOW, maxAttempts: 2 };
}

/** The state our own patch left after restoring `current`. */
function restored(current: RestorableCheckpoint, tried: RestorableCheckpoint[], restoredAt: Date, seenRestarts: number, extra: Partial<RestoreState> = {}): RestoreState {
  return { tried: tried.map((c) => c.id), current: current.id, restoredAt: restoredAt.toISOString(), seenRestarts, originalImage: ORIGINAL, ...extra };
}

describe('planFailure: what a failed container gets', () => {
  it.each([
    {
      what: "a first failure restores the pod's newest checkpoint, never a sibling replica's",
      s: snapshot(ORIGINAL, undefined, 1),
      restores: newer,
      tried: [newer],
      seenRestarts: 2,
    },
    {
      what: 'failing again within the window blames the checkpoint and falls back to the next older one',
      s: snapshot(newer.image, restored(newer, [newer], ago(60_000), 2), 3, ago(10_000)),
      restores: older,
      tried: [older, newer],
      seenRestarts: 4,
      markBad: newer,
    },
    {
      what: 'failing again after the window starts a new cycle from the newest checkpoint, blaming none',
      s: snapshot(newer.image, restored(newer, [newer], ago(10 * 60_000), 2), 3),
      restores: newer,
      tried: [newer],
      seenRestarts: 4,
    },
    {
      what: 'a restored replacement keeps restoring from the pod it inherited from',
      s: snapshot(inherited.image, restored(inherited, [inherited], ago(10 * 60_000), 1, { sourcePod: 'cart-7d9f-zzzzz' }), 2),
      restores: inherited,
      tried: [inherited],
      seenRestarts: 3,
      sourcePod: 'cart-7d9f-zzzzz',
    },
    {
      what: 'the gave-up window has passed: restores again',
      s: snapshot(ORIGINAL, { tried: [], restoredAt: ago(5 * 60_000).toISOString(), seenRestarts: 4, originalImage: ORIGINAL, gaveUpAt: ago(5 * 60_000).toISOString() }, 5),
      restores: newer,
      tried: [newer],
      seenRestarts: 6,
    },
  ])('$what', ({ s, restores, tried, seenRestarts, markBad, sourcePod }) => {
    const plan = planFailure(s, ALL);
    expect(plan).toMatchObject({
      container: 'app',
      image: restores.image,
      restoredFrom: restores.id,
      state: { tried: tried.map((c) => c.id), current: restores.id, restoredAt: NOW.toISOString(), seenRestarts, originalImage: ORIGINAL },
      kubeEvent: { type: 'Normal', reason: 'Restored' },
    });
    expect(plan?.state.gaveUpAt).toBeUndefined();
    expect(plan?.state.sourcePod).toBe(sourcePod);
    expect(plan?.markBad?.id).toBe(markBad?.id);
    expect(plan?.outcome.type).toBe('io.kcr.pod.restored');
    expect(plan?.outcome.data).toEqual({ namespace: 'shop', pod: POD, container: 'app', checkpointId: restores.id, image: restores.image, strategy: 'in-place' });
  });

  it.each([
    {
      what: 'after maxAttempts checkpoints failed within the window: cold start from the original image',
      s: snapshot(older.image, restored(older, [older, newer], ago(30_000), 3), 4),
      candidates: ALL,
      reason: `exit code 137; 2 checkpoints failed to restore (${older.id}, ${newer.id}): cold start from the original image`,
      checkpointId: older.id,
      markBad: older,
      tried: [older, newer],
      // Our patch puts the original image back, which restarts the container once more.
      seenRestarts: 5,
    },
    {
      what: 'no older restorable checkpoint after the one that failed: cold start',
      s: snapshot(newer.image, restored(newer, [newer], ago(30_000), 2), 3),
      candidates: [newer],
      reason: `exit code 137; no older restorable checkpoint after ${newer.id}: cold start from the original image`,
      checkpointId: newer.id,
      markBad: newer,
      tried: [newer],
      seenRestarts: 4,
    },
    {
      what: 'no checkpoint at all: the container keeps its image, the failure is told',
      s: snapshot(ORIGINAL, undefined, 1),
      candidates: [sibling],
      reason: 'exit code 137; no restorable checkpoint',
      tried: [],
      // Nothing is patched but annotations: the container does not restart for us.
      seenRestarts: 1,
    },
  ])('$what', ({ s, candidates, reason, checkpointId: id, markBad, tried, seenRestarts }) => {
    const plan = planFailure(s, candidates);
    expect(plan).toMatchObject({
      image: ORIGINAL,
      state: { tried: tried.map((c) => c.id), seenRestarts, originalImage: ORIGINAL, gaveUpAt: NOW.toISOString() },
      kubeEvent: { type: 'Warning', reason: 'RestoreFailed', message: `Container app: ${reason}` },
    });
    expect(plan?.restoredFrom).toBeUndefined();
    expect(plan?.state.current).toBeUndefined();
    expect(plan?.markBad?.id).toBe(markBad?.id);
    expect(plan?.outcome.type).toBe('io.kcr.restore.failed');
    expect(plan?.outcome.data).toEqual({ namespace: 'shop', pod: POD, container: 'app', ...(id ? { checkpointId: id } : {}), stage: 'restore', reason });
  });

  it.each([
    { what: 'a redelivery of the failure our patch accounted for', s: snapshot(newer.image, restored(newer, [newer], ago(10_000), 2), 2) },
    { what: 'an older event than our patch', s: snapshot(newer.image, restored(newer, [newer], ago(10_000), 3), 2) },
    {
      what: 'a new failure within the gave-up window',
      s: snapshot(ORIGINAL, { tried: [], restoredAt: ago(60_000).toISOString(), seenRestarts: 4, originalImage: ORIGINAL, gaveUpAt: ago(60_000).toISOString() }, 5),
    },
  ])('nothing to do for $what', ({ s }) => {
    expect(planFailure(s, ALL)).toBeUndefined();
    expect(candidateSearch(s)).toBeUndefined();
  });

  it('asks for the one checkpoint it needs: of the source pod, outside those tried and blamed', () => {
    expect(candidateSearch(snapshot(ORIGINAL, undefined, 1))).toEqual({ pod: POD, exclude: new Set() });
    expect(candidateSearch(snapshot(newer.image, restored(newer, [newer], ago(60_000), 2), 3, ago(10_000)))).toEqual({ pod: POD, exclude: new Set([newer.id]) });
    const replacement = restored(inherited, [inherited], ago(10 * 60_000), 1, { sourcePod: 'cart-7d9f-zzzzz' });
    expect(candidateSearch(snapshot(inherited.image, replacement, 2))?.pod).toBe('cart-7d9f-zzzzz');
    // Out of attempts: no read, a cold start.
    expect(candidateSearch(snapshot(older.image, restored(older, [older, newer], ago(30_000), 3), 4))).toBeUndefined();
  });

  it('takes the first candidate the search allows, whatever else the list holds', () => {
    const s = snapshot(newer.image, restored(newer, [newer], ago(60_000), 2), 3);
    // What the catalog answers for the search: only the next older checkpoint.
    expect(planFailure(s, [older])?.restoredFrom).toBe(older.id);
    expect(planFailure(s, [newer, older])?.restoredFrom).toBe(older.id);
  });
});

describe('replacements', () => {
  const OWNER = { kind: 'Deployment', name: 'cart' } as const;
  const lost: DisruptionRecord = {
    namespace: 'shop',
    workload: OWNER,
    pod: 'cart-7d9f-zzzzz',
    podUid: 'uid-cart-7d9f-zzzzz',
    templateHash: '7d9f',
    reason: 'NodeNotReady',
    at: ago(60_000).toISOString(),
  };

  function newPod(extra: { name?: string; uid?: string; hash?: string; created?: Date; restartCount?: number } = {}): V1Pod {
    return {
      metadata: {
        name: extra.name ?? 'cart-7d9f-nnnnn',
        namespace: 'shop',
        uid: extra.uid ?? 'uid-new',
        labels: { 'pod-template-hash': extra.hash ?? '7d9f' },
        creationTimestamp: extra.created ?? ago(30_000),
      },
      spec: { nodeName: 'node-b', containers: [{ name: 'app', image: ORIGINAL }] },
      ...(extra.restartCount !== undefined
        ? { status: { containerStatuses: [{ name: 'app', image: ORIGINAL, imageID: '', ready: true, restartCount: extra.restartCount, state: { running: {} } }] } }
        : {}),
    };
  }

  it.each([
    { what: 'an unclaimed recent disruption of the same template', pod: newPod(), records: [lost], found: true },
    { what: 'one this pod claimed already (a retry)', pod: newPod(), records: [{ ...lost, claimedBy: { pod: 'cart-7d9f-nnnnn', uid: 'uid-new' } }], found: true },
    { what: 'one another pod claimed', pod: newPod(), records: [{ ...lost, claimedBy: { pod: 'cart-7d9f-ooooo', uid: 'uid-other' } }], found: false },
    { what: "the pod's own disruption", pod: newPod({ uid: lost.podUid }), records: [lost], found: false },
    { what: 'another template (a rollout)', pod: newPod({ hash: '5c4b' }), records: [lost], found: false },
    { what: 'an expired record', pod: newPod(), records: [{ ...lost, at: ago(2 * 60 * 60_000).toISOString() }], found: false },
    { what: 'a Deployment pod created well before the loss', pod: newPod({ created: ago(10 * 60_000) }), records: [lost], found: false },
  ])('$what: inherited $found', ({ pod: p, records, found }) => {
    expect(replacementRecord(p, OWNER, records, NOW, 60 * 60_000)).toBe(found ? records[0] : undefined);
  });

  it('a StatefulSet pod inherits only from the pod of its own name', () => {
    const sts = { kind: 'StatefulSet', name: 'web' } as const;
    const record = { ...lost, workload: sts, pod: 'web-0', templateHash: 'web-6b8f' };
    const web0 = newPod({ name: 'web-0', hash: 'ignored' });
    web0.metadata!.labels = { 'controller-revision-hash': 'web-6b8f' };
    expect(replacementRecord(web0, sts, [record], NOW, 60 * 60_000)).toBe(record);
    expect(replacementRecord({ ...web0, metadata: { ...web0.metadata, name: 'web-1' } }, sts, [record], NOW, 60 * 60_000)).toBeUndefined();
  });

  it("plans the disrupted pod's checkpoint into a pod created after it, remembering where it came from", () => {
    const plan = replacementPlan(newPod(), 'app', lost, inherited, NOW);
    expect(plan).toMatchObject({
      image: inherited.image,
      restoredFrom: inherited.id,
      state: { tried: [inherited.id], current: inherited.id, seenRestarts: 0, originalImage: ORIGINAL, sourcePod: 'cart-7d9f-zzzzz' },
      kubeEvent: { type: 'Normal', reason: 'Restored', message: `Container app restored from checkpoint ${inherited.id} of cart-7d9f-zzzzz (NodeNotReady)` },
    });
    expect(plan?.outcome.data).toMatchObject({ strategy: 'replacement', checkpointId: inherited.id });
    // Already started: our patch restarts it once.
    expect(replacementPlan(newPod({ restartCount: 2 }), 'app', lost, inherited, NOW)?.state.seenRestarts).toBe(3);
  });

  it('a pod older than the checkpoint is not its replacement (the disrupted pod still ran then)', () => {
    expect(replacementPlan(newPod({ created: new Date('2026-11-30T09:59:59Z') }), 'app', lost, inherited, NOW)).toBeUndefined();
    expect(replacementPlan(newPod({ created: new Date('2026-11-30T10:00:00Z') }), 'app', lost, inherited, NOW)).toBeDefined();
  });
});

describe('refusalOf', () => {
  it('names the checkpoint, the node and why, as a Warning and restore.failed', () => {
    const plan = planFailure(snapshot(ORIGINAL, undefined, 1), ALL)!;
    const r = refusalOf(pod(ORIGINAL), { ...plan, restoredFrom: newer.id }, 'node-a', 'containerd://2.4.0 cannot restore checkpoints');
    const reason = `not restored from checkpoint ${newer.id} on node node-a: containerd://2.4.0 cannot restore checkpoints`;
    expect(r.kubeEvent).toEqual({ type: 'Warning', reason: 'RestoreUnsupported', message: `Container app: ${reason}` });
    expect(r.outcome.type).toBe('io.kcr.restore.failed');
    expect(r.outcome.data).toEqual({ namespace: 'shop', pod: POD, container: 'app', checkpointId: newer.id, stage: 'restore', reason });
  });
});
