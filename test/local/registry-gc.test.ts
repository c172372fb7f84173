// The local registry's disk stays flat: retention deletes the images of old
// checkpoints, and the garbage collection (stop, garbage-collect, start on the
// same port) frees their blobs. A shortened soak on the local stack: a few
// dozen checkpoints through the whole chain, each round racing a collection
// (build-image's pushes meet a refused connection and are retried), then
// another collection and the storage's size. Bounded: it stops after its rounds.
import { readdirSync, statSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppsV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { scheduleGarbageCollection, startStack, type Stack } from '../../local/stack.js';
import type { RegistryServer } from '../../local/registry-server.js';
import { events as build } from '../../functions/core/contract/build.js';
import { createLogger } from '../../functions/core/runtime/logger.js';
import { Kubernetes } from '../../functions/core/kubernetes/kubernetes.js';
import { ImageRecord } from '../../functions/core/storage/records.js';
import { artifactKey } from '../../functions/core/storage/layout.js';
import { deployment, runningPods } from '../../simulator/workloads.js';
import { optionalBinary } from '../support/binaries.js';
import { testRingsDir, testS3Kind } from '../support/s3.js';
import { until as poll } from '../support/wait.js';

const registryBinary = optionalBinary('docker-registry');
const NS = 'default';
const OPT_IN = { 'kcr.io/checkpoint-restore-schedule': '0 0 1 1 *' };
// Not below the replicas: a round's checkpoints then all stay among the newest kept while their builds wait for the registry.
const RETENTION = 3;
const REPLICAS = 3;
const ROUNDS = 10;

interface Seen {
  type: string;
  data: Record<string, unknown>;
}

/** Bytes of every regular file under `dir`. */
function sizeOf(dir: string): number {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).reduce((sum, path) => {
    const s = statSync(join(dir, path));
    return s.isFile() ? sum + s.size : sum;
  }, 0);
}

/** The digests of the blobs the registry stores. */
function blobsOf(storageDir: string): Set<string> {
  const root = join(storageDir, 'docker', 'registry', 'v2', 'blobs', 'sha256');
  return new Set(readdirSync(root).flatMap((prefix) => readdirSync(join(root, prefix)).map((hex) => `sha256:${hex}`)));
}

describe.skipIf(!registryBinary)('the local registry under retention and garbage collection', () => {
  let stack: Stack;
  let dir: string;
  const seen: Seen[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kcr-registry-gc-'));
    stack = await startStack({
      stateDir: dir,
      s3: testS3Kind(),
      swiftRingsDir: `${testRingsDir()}-stack`,
      nodes: ['node-a', 'node-b'],
      registryBinary: registryBinary as string,
      env: { KCR_CHECKPOINT_RETENTION: String(RETENTION) },
      registryGcIntervalMs: 0,
      kubelet: { tickMs: 50, backoffBaseMs: 100, backoffMaxMs: 400 },
      containerDataBytes: 256 * 1024,
      backoffScale: 0.05,
    });
    stack.broker.onDelivery((o) => {
      if (o.kind === 'received') seen.push({ type: o.event.attributes.type ?? '', data: JSON.parse(o.event.data?.toString('utf8') ?? 'null') as Record<string, unknown> });
    });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const until = <T>(what: string, probe: () => T | undefined | false) =>
    poll(what, probe, {
      timeout: 20_000,
      context: () =>
        `events: ${seen
          .slice(-10)
          .map((e) => `${e.type} ${String(e.data.pod ?? '')}`)
          .join(', ')}`,
    });
  const built = () => seen.filter((e) => e.type === 'io.kcr.image.built');

  it('keeps its storage under the state directory', () => {
    expect(stack.registry.kind).toBe('docker-registry');
    if (stack.registry.kind === 'docker-registry') expect(stack.registry.server.storageDir).toBe(join(dir, 'registry', 'storage'));
  });

  it('stays flat over a few dozen checkpoints, bounded by the retention count, while builds ride out the collections', async () => {
    if (stack.registry.kind !== 'docker-registry') throw new Error('expected docker-registry');
    const registry = stack.registry.server;
    await stack.cluster.kubeConfig.makeApiClient(AppsV1Api).createNamespacedDeployment({ namespace: NS, body: deployment({ name: 'soak', replicas: REPLICAS, annotations: OPT_IN }) });
    await runningPods(new Kubernetes(stack.cluster.kubeConfig), NS, 'app=soak', REPLICAS);

    const sizes: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      // The kubelet names archives by the second: each round in a later one than the last.
      const last = built().at(-1)?.data.checkpointedAt;
      if (typeof last === 'string') await until('the next second', () => Date.now() >= Date.parse(last) + 1000);
      const before = built().length;
      await stack.broker.publish(build.checkpointRequested({ namespace: NS, kind: 'Deployment', name: 'soak' }, { source: 'test' }));
      // The registry goes away while the round's images are pushed.
      const collecting = registry.collectGarbage();
      await until(`round ${round}: ${REPLICAS} images built`, () => built().length >= before + REPLICAS);
      await collecting;
      await stack.broker.idle();
      await registry.collectGarbage();
      sizes.push(sizeOf(registry.storageDir));
    }

    const archives = built().map((e) => (e.data.artifact as { size: number }).size);
    expect(archives).toHaveLength(ROUNDS * REPLICAS);
    expect(seen.filter((e) => e.type === 'io.kcr.checkpoint.failed')).toEqual([]);
    // At most the checkpoints kept, plus the round's others (each build keeps the one it built), and small metadata.
    const bound = (RETENTION + REPLICAS) * Math.max(...archives) + 256 * 1024;
    const pushed = archives.reduce((a, b) => a + b, 0);
    expect(pushed).toBeGreaterThan(3 * bound);
    for (const [round, size] of sizes.entries()) expect(size, `after round ${round}: ${sizes.join(', ')}`).toBeLessThanOrEqual(bound);

    // What is left is what S3 still names (image.json, or prune.json for a deletion still to retry): every such layer is there, no other is.
    const blobs = blobsOf(registry.storageDir);
    const kept = new Set<string>();
    for (const e of built()) {
      for (const file of ['image', 'prune'] as const) {
        const record = await stack.store.getJson(artifactKey({ namespace: NS, workload: { kind: 'Deployment', name: 'soak' }, container: 'app', id: String(e.data.id) }, file));
        if (record !== undefined) kept.add(ImageRecord.parse(record).layer.digest);
      }
    }
    expect(kept.size).toBeGreaterThanOrEqual(RETENTION);
    for (const e of built()) {
      const layer = `sha256:${(e.data.artifact as { sha256: string }).sha256}`;
      expect(blobs.has(layer), layer).toBe(kept.has(layer));
    }
  }, 60_000);
});

describe("the local stack's garbage collection schedule", () => {
  it('collects every interval until stopped', async () => {
    vi.useFakeTimers();
    try {
      const collectGarbage = vi.fn(async () => undefined);
      const registry = { host: '127.0.0.1:5000', collectGarbage } as unknown as RegistryServer;
      const stop = scheduleGarbageCollection(registry, 60_000, createLogger('registry', 'silent'));
      await vi.advanceTimersByTimeAsync(3 * 60_000);
      expect(collectGarbage).toHaveBeenCalledTimes(3);
      await stop();
      await vi.advanceTimersByTimeAsync(3 * 60_000);
      expect(collectGarbage).toHaveBeenCalledTimes(3);
    } finally {
      vi.useRealTimers();
    }
  });
});
