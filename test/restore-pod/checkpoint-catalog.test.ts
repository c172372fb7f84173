// CheckpointCatalog.newestOfPod against an in-memory store: which checkpoint it
// picks, and which objects it reads to pick it (a checkpoint of another pod
// costs its manifest only).
import { describe, expect, it } from 'vitest';
import { CheckpointCatalog, type ContainerRef } from '../../functions/core/storage/checkpoint-catalog.js';
import { checkpointId } from '../../functions/core/contract/checkpoint-id.js';
import { artifactKey, type CheckpointLocation } from '../../functions/core/storage/layout.js';
import { MemoryStore } from '../support/memory-store.js';
import { commitCheckpoint } from './committed.js';

const REF: ContainerRef = { namespace: 'shop', workload: { kind: 'Deployment', name: 'cart' }, container: 'app' };

/** Records the keys read, in order. */
class ReadLog extends MemoryStore {
  readonly reads: string[] = [];
  override async getJson(key: string): Promise<unknown> {
    this.reads.push(key);
    return super.getJson(key);
  }
}

async function seed(store: MemoryStore, pod: string, at: string): Promise<CheckpointLocation> {
  const podUid = `uid-${pod}`;
  const id = checkpointId({ podUid, container: REF.container, checkpointedAt: at });
  const loc: CheckpointLocation = { ...REF, id };
  const data = {
    id,
    namespace: REF.namespace,
    workload: REF.workload,
    pod,
    podUid,
    container: REF.container,
    node: 'node-a',
    archivePath: `/var/lib/kubelet/checkpoints/checkpoint-${pod}_${REF.namespace}-${REF.container}-${at}.tar`,
    checkpointedAt: at,
    artifact: { uri: `s3://${store.bucket}/${artifactKey(loc, 'archive')}`, size: 10, sha256: 'a'.repeat(64) },
  };
  await commitCheckpoint(store, data, 'kcr/shop/deployment-cart-app');
  return loc;
}

describe('CheckpointCatalog.newestOfPod', () => {
  it("picks the pod's newest checkpoint, reading only the manifests of newer checkpoints of other pods", async () => {
    const store = new ReadLog();
    const older = await seed(store, 'cart-7d9f-aaaaa', '2026-11-23T10:00:00Z');
    const newest = await seed(store, 'cart-7d9f-aaaaa', '2026-11-23T10:05:00Z');
    const siblings = [await seed(store, 'cart-7d9f-bbbbb', '2026-11-23T10:06:00Z'), await seed(store, 'cart-7d9f-ccccc', '2026-11-23T10:07:00Z')];

    const found = await new CheckpointCatalog(store).newestOfPod(REF, 'cart-7d9f-aaaaa');

    expect(found).toMatchObject({ id: newest.id, pod: 'cart-7d9f-aaaaa' });
    expect(found?.image).toMatch(/@sha256:[0-9a-f]{64}$/);
    expect(store.reads).toEqual([artifactKey(siblings[1]!, 'manifest'), artifactKey(siblings[0]!, 'manifest'), artifactKey(newest, 'manifest'), artifactKey(newest, 'image')]);
    expect(store.reads).not.toContain(artifactKey(older, 'manifest'));
  });

  it('skips excluded checkpoints for the next one of the same pod', async () => {
    const store = new ReadLog();
    const older = await seed(store, 'cart-7d9f-aaaaa', '2026-11-23T10:00:00Z');
    const newest = await seed(store, 'cart-7d9f-aaaaa', '2026-11-23T10:05:00Z');

    const found = await new CheckpointCatalog(store).newestOfPod(REF, 'cart-7d9f-aaaaa', new Set([newest.id]));

    expect(found?.id).toBe(older.id);
    expect(store.reads).not.toContain(artifactKey(newest, 'manifest'));
  });

  it('reads no image.json when no checkpoint is of the pod', async () => {
    const store = new ReadLog();
    const others = [await seed(store, 'cart-5c4b-ddddd', '2026-11-22T09:00:00Z'), await seed(store, 'cart-5c4b-eeeee', '2026-11-22T09:05:00Z')];

    expect(await new CheckpointCatalog(store).newestOfPod(REF, 'cart-7d9f-aaaaa')).toBeUndefined();
    expect(store.reads.sort()).toEqual(others.map((l) => artifactKey(l, 'manifest')).sort());
  });

  it('walks past many other pods in a few rounds of parallel reads, and still picks the newest of the pod', async () => {
    // Reads of older checkpoints answer sooner, so a window's first answer is not its newest.
    class SlowNewer extends ReadLog {
      inFlight = 0;
      peak = 0;
      rounds = 0;
      override async getJson(key: string): Promise<unknown> {
        if (this.inFlight === 0) this.rounds++;
        this.inFlight++;
        this.peak = Math.max(this.peak, this.inFlight);
        // Latency in event-loop turns, not milliseconds: the order is the same on a loaded machine.
        const rank = order.indexOf(key);
        for (let turns = rank < 0 ? 1 : 2 + (order.length - rank); turns > 0; turns--) await new Promise((r) => setImmediate(r));
        this.inFlight--;
        return super.getJson(key);
      }
    }
    const store = new SlowNewer();
    const mine = [await seed(store, 'cart-7d9f-aaaaa', '2026-11-23T09:00:00Z'), await seed(store, 'cart-7d9f-aaaaa', '2026-11-23T09:01:00Z')];
    const others: CheckpointLocation[] = [];
    for (let i = 0; i < 13; i++) others.push(await seed(store, `cart-7d9f-o${i}`, `2026-11-23T10:${String(i).padStart(2, '0')}:00Z`));
    const order = [...others, ...mine].map((l) => artifactKey(l, 'manifest'));

    const found = await new CheckpointCatalog(store).newestOfPod(REF, 'cart-7d9f-aaaaa');

    expect(found?.id).toBe(mine[1]!.id);
    // Windows of 1, 2, 4 and 8: the 15 manifests in 4 rounds (the last also reads image.json), not 15.
    expect(store.rounds).toBeLessThanOrEqual(5);
    expect(store.peak).toBe(8);
  });
});
