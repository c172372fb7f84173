// Retention by count and by bytes, per workload (kcr.io/checkpoint-retention,
// kcr.io/checkpoint-retention-bytes over the defaults), and pins: the pure
// policy in tables, then build-image pruning an OCI layout and S3 by it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createBuildImage, type WorkloadReader } from '../../functions/build-image/handler.js';
import { OciLayout } from '../../functions/build-image/oci-layout.js';
import { overLimits, retentionLimits } from '../../functions/build-image/retention-policy.js';
import { parseQuantityBytes } from '../../functions/core/runtime/quantity.js';
import { EventTypes } from '../../functions/core/contract/events.js';
import { artifactKey } from '../../functions/core/storage/layout.js';
import { writePin } from '../../functions/core/storage/records.js';
import { MemoryStore } from '../support/memory-store.js';
import { keyOf, makeFixture, seed, storedEvent, testContext, type Fixture } from './fixtures.js';

const ctx = testContext();

describe('Kubernetes quantities as bytes', () => {
  it.each([
    ['0', 0],
    ['1024', 1024],
    ['2Gi', 2 * 2 ** 30],
    ['1.5Mi', 1.5 * 2 ** 20],
    ['500M', 500e6],
    ['1k', 1000],
    ['1e3', 1000],
    ['0.1', 1],
  ])('%s is %d bytes', (text, bytes) => expect(parseQuantityBytes(text)).toBe(bytes));
  it.each(['', '-1Gi', '2GB', 'Gi', '1.2.3', '2 Gi', 'lots'])('%j is not a quantity', (text) => expect(parseQuantityBytes(text)).toBeUndefined());
});

describe('the retention policy', () => {
  const c = (id: string, bytes = 10, pinned = false) => ({ id, bytes, pinned });
  it.each([
    ['the newest N', [c('d'), c('c'), c('b'), c('a')], { keep: 2, maxBytes: 0 }, 'd', ['b', 'a']],
    ['the newest that fit the bytes', [c('d', 40), c('c', 40), c('b', 40), c('a', 1)], { keep: 0, maxBytes: 100 }, 'd', ['b', 'a']],
    ['both limits, the tighter wins', [c('d'), c('c'), c('b')], { keep: 5, maxBytes: 15 }, 'd', ['c', 'b']],
    ['the one just built even alone over the bytes', [c('d', 500), c('c', 1)], { keep: 0, maxBytes: 100 }, 'd', ['c']],
    ['pins neither counted nor removed', [c('d'), c('c', 10, true), c('b'), c('a', 10, true)], { keep: 2, maxBytes: 0 }, 'd', []],
    ['pins not counted in the bytes', [c('d', 50), c('c', 1000, true), c('b', 50), c('a', 50)], { keep: 0, maxBytes: 100 }, 'd', ['a']],
    ['no limits: nothing', [c('b'), c('a')], { keep: 0, maxBytes: 0 }, 'b', []],
  ])('keeps %s', (_what, committed, limits, current, victims) => expect(overLimits(committed, limits, current)).toEqual(victims));

  it('takes the annotations over the defaults, and says which do not parse', () => {
    const defaults = { keep: 10, maxBytes: 0 };
    expect(retentionLimits(defaults, undefined)).toEqual({ limits: defaults, problems: [] });
    expect(retentionLimits(defaults, { 'kcr.io/checkpoint-retention': '5', 'kcr.io/checkpoint-retention-bytes': '2Gi' })).toEqual({ limits: { keep: 5, maxBytes: 2 * 2 ** 30 }, problems: [] });
    expect(retentionLimits(defaults, { 'kcr.io/checkpoint-retention': '0' }).limits).toEqual({ keep: 0, maxBytes: 0 });
    const bad = retentionLimits(defaults, { 'kcr.io/checkpoint-retention': 'five', 'kcr.io/checkpoint-retention-bytes': '2GB' });
    expect(bad.limits).toEqual(defaults);
    expect(bad.problems).toHaveLength(2);
    expect(bad.problems[1]).toContain('"2GB" is not a quantity');
  });
});

describe('build-image retention by bytes, pins and workload annotations', () => {
  let dir: string;
  let layout: OciLayout;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'kcr-retention-limits-'));
    layout = new OciLayout(dir, 'kcr.local');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  async function history(n: number): Promise<Fixture[]> {
    const out: Fixture[] = [];
    for (let i = 0; i < n; i++) out.push(await makeFixture({ pagesBytes: 64 * 1024, checkpointedAt: `2026-11-23T18:${String(i * 5).padStart(2, '0')}:00Z` }));
    return out;
  }
  const committed = (store: MemoryStore, f: Fixture) => store.objects.has(keyOf(f, 'manifest'));
  const loc = (f: Fixture) => ({ namespace: f.data.namespace, workload: f.data.workload, container: f.data.container, id: f.data.id });

  async function buildAll(handler: ReturnType<typeof createBuildImage>, store: MemoryStore, fixtures: Fixture[]): Promise<void> {
    for (const f of fixtures) {
      seed(store, f);
      expect((await handler.handle(storedEvent(f.data), ctx))[0]?.type).toBe(EventTypes.imageBuilt);
    }
  }

  function workloads(annotations: Record<string, string> | Error): WorkloadReader & { reads: string[] } {
    const reads: string[] = [];
    return {
      reads,
      async getWorkload(namespace, kind, name) {
        reads.push(`${namespace}/${kind}/${name}`);
        if (annotations instanceof Error) throw annotations;
        return { metadata: { annotations } };
      },
    };
  }

  it('keeps the newest checkpoints whose archives fit in the bytes, and never a pinned one', async () => {
    const store = new MemoryStore();
    const fixtures = await history(5);
    const size = Math.max(...fixtures.map((f) => f.archive.length));
    const handler = createBuildImage({ store, target: layout, repoPrefix: 'kcr', retention: { keep: 0, maxBytes: 2 * size, pods: { listPods: async () => [] } } });
    await buildAll(handler, store, fixtures.slice(0, 1));
    await writePin(store, loc(fixtures[0]!), { id: fixtures[0]!.data.id, pinnedAt: '2026-11-23T18:01:00Z' });
    await buildAll(handler, store, fixtures.slice(1));

    expect(fixtures.map((f) => committed(store, f))).toEqual([true, false, false, true, true]);
    expect(store.objects.has(artifactKey(loc(fixtures[0]!), 'pin'))).toBe(true);
    // Pinned: its image stays in the layout too.
    const image = (await store.getJson(keyOf(fixtures[0]!, 'image'))) as { repository: string; indexDigest: string };
    expect(await layout.hasManifest(image.repository, image.indexDigest)).toBe(true);
  });

  it("takes the workload's annotations over the defaults", async () => {
    const store = new MemoryStore();
    const fixtures = await history(5);
    const reader = workloads({ 'kcr.io/checkpoint-retention': '3' });
    const handler = createBuildImage({ store, target: layout, repoPrefix: 'kcr', retention: { keep: 1, pods: { listPods: async () => [] }, workloads: reader } });
    await buildAll(handler, store, fixtures);
    expect(fixtures.map((f) => committed(store, f))).toEqual([false, false, true, true, true]);
    expect(reader.reads[0]).toBe('shop/Deployment/redis');

    const size = Math.max(...fixtures.map((f) => f.archive.length));
    const bytes = createBuildImage({
      store,
      target: layout,
      repoPrefix: 'kcr',
      retention: { keep: 10, pods: { listPods: async () => [] }, workloads: workloads({ 'kcr.io/checkpoint-retention-bytes': String(size) }) },
    });
    await buildAll(bytes, store, fixtures.slice(4));
    expect(fixtures.map((f) => committed(store, f))).toEqual([false, false, false, false, true]);
  });

  it('prunes nothing while the workload cannot be read (its annotations may keep more)', async () => {
    const store = new MemoryStore();
    const fixtures = await history(3);
    const handler = createBuildImage({ store, target: layout, repoPrefix: 'kcr', retention: { keep: 1, pods: { listPods: async () => [] }, workloads: workloads(new Error('HTTP 503')) } });
    await buildAll(handler, store, fixtures);
    expect(fixtures.map((f) => committed(store, f))).toEqual([true, true, true]);
  });
});
