// Small kubelet-style checkpoint archives (CRI-O layout, written by the
// simulator's archive writer) and the stored event and manifest.json that
// store-artifact would have written for them.
import { createHash } from 'node:crypto';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Readable } from 'node:stream';
import type { V1Pod } from '@kubernetes/client-node';
import tar from 'tar-stream';
import { checkpointArchiveStream } from '../../simulator/archive-writer.js';
import type { Retention } from '../../functions/build-image/handler.js';
import { checkpointId } from '../../functions/core/contract/checkpoint-id.js';
import { EventTypes, type CheckpointStoredData } from '../../functions/core/contract/events.js';
import { artifactKey, DEFAULT_BUCKET, s3Uri } from '../../functions/core/storage/layout.js';
import { MANIFEST_API_VERSION, type CheckpointManifest } from '../../functions/core/storage/records.js';
import type { MemoryStore } from '../support/memory-store.js';
import { createLogger } from '../../functions/core/runtime/logger.js';
import type { HandlerContext, IncomingEvent } from '../../functions/core/runtime/handler.js';

export interface FixtureSpec {
  namespace?: string;
  pod?: string;
  podUid?: string;
  container?: string;
  workloadName?: string;
  checkpointedAt?: string;
  /** Bytes of checkpoint/pages-1.img. */
  pagesBytes?: number;
}

export interface Fixture {
  archive: Buffer;
  data: CheckpointStoredData;
  manifest: CheckpointManifest;
  /** The archive's entry names, in order. */
  entries: string[];
}

export async function makeFixture(spec: FixtureSpec = {}): Promise<Fixture> {
  const s = {
    namespace: spec.namespace ?? 'shop',
    pod: spec.pod ?? 'redis-7d9f8-abcde',
    podUid: spec.podUid ?? '0f6a4c1e-2b3d-4e5f-8a9b-0c1d2e3f4a5b',
    container: spec.container ?? 'redis',
    checkpointedAt: spec.checkpointedAt ?? '2026-11-23T18:15:04Z',
    pagesBytes: spec.pagesBytes ?? 200 * 1024,
  };
  // Written as the simulated kubelet writes it (random pages and container hash): no test compares archives built apart.
  const archive = await collect(checkpointArchiveStream({ ...s, checkpointedTime: s.checkpointedAt }));
  const id = checkpointId({ podUid: s.podUid, container: s.container, checkpointedAt: s.checkpointedAt });
  const workload = { kind: 'Deployment' as const, name: spec.workloadName ?? 'redis' };
  const loc = { namespace: s.namespace, workload, container: s.container, id };
  const data: CheckpointStoredData = {
    id,
    namespace: s.namespace,
    workload,
    pod: s.pod,
    podUid: s.podUid,
    container: s.container,
    node: 'node-1',
    archivePath: `/var/lib/kubelet/checkpoints/checkpoint-${s.pod}_${s.namespace}-${s.container}-${s.checkpointedAt}.tar`,
    checkpointedAt: s.checkpointedAt,
    artifact: { uri: s3Uri(DEFAULT_BUCKET, artifactKey(loc, 'archive')), size: archive.length, sha256: createHash('sha256').update(archive).digest('hex') },
  };
  const entries = await tarEntries(archive);
  const manifest: CheckpointManifest = {
    apiVersion: MANIFEST_API_VERSION,
    kind: 'CheckpointManifest',
    data,
    archive: {
      rootfsImageName: 'docker.io/library/redis:7',
      rootfsImageRef: 'sha256:6f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8',
      runtime: 'runc',
      checkpointedTime: s.checkpointedAt,
      container: { pod: s.pod, container: s.container },
      entries: entries.length,
      // Counted as store-artifact's inspection counts them: CRIU images, not the checkpoint/ directory entry; directories with their '/'.
      checkpointFiles: entries.filter((e) => e.startsWith('checkpoint/') && e !== 'checkpoint/').length,
      topLevel: [...new Set(entries.map((e) => (e.includes('/') ? `${e.split('/')[0]}/` : e)))].sort(),
    },
    source: { node: data.node, archivePath: data.archivePath },
    storedAt: s.checkpointedAt,
  };
  return { archive, data, manifest, entries };
}

/** Puts the archive and then manifest.json (the commit marker) into the store, as store-artifact does. */
export function seed(store: MemoryStore, fixture: Fixture): void {
  const loc = { namespace: fixture.data.namespace, workload: fixture.data.workload, container: fixture.data.container, id: fixture.data.id };
  store.put(artifactKey(loc, 'archive'), fixture.archive);
  store.put(artifactKey(loc, 'manifest'), Buffer.from(JSON.stringify(fixture.manifest)));
}

export function keyOf(fixture: Fixture, file: 'archive' | 'manifest' | 'image'): string {
  const d = fixture.data;
  return artifactKey({ namespace: d.namespace, workload: d.workload, container: d.container, id: d.id }, file);
}

export async function tarEntries(archive: Buffer | Readable): Promise<string[]> {
  const extract = tar.extract();
  const names: string[] = [];
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, stream, next) => {
      names.push(header.name);
      stream.on('end', next);
      stream.resume();
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
  });
  if (Buffer.isBuffer(archive)) extract.end(archive);
  else archive.pipe(extract);
  await done;
  return names;
}

export function testContext(): HandlerContext {
  return { log: createLogger('build-image-test', 'silent') };
}

async function collect(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** The stored event as the runtime hands it to the handler (data already checked). */
export function storedEvent(data: CheckpointStoredData): IncomingEvent<typeof EventTypes.checkpointStored> {
  return { type: EventTypes.checkpointStored, data, id: `evt-${data.id}`, source: '/kcr/store-artifact', extensions: { kcrcheckpointid: data.id } };
}

/** Retention of the newest `keep` checkpoints, with the pods the API lists (none unless given). */
export function retain(keep: number, pods: V1Pod[] = []): Retention {
  return { keep, pods: { listPods: async () => pods } };
}

/** A loopback port nothing listens on: connecting is refused (ECONNREFUSED), as while the registry restarts. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
