// store-artifact against a real s3rver and a real node-agent, handle() called directly.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeAgentLocator } from '../../functions/core/node-agent/locator.js';
import { NodeAgentClient, type ArchiveSource } from '../../functions/store-artifact/node-agent-client.js';
import type { ObjectStore } from '../../functions/core/storage/object-store.js';
import { S3ObjectStore } from '../../functions/core/storage/s3.js';
import { checkpointId, kubeletArchiveName, KUBELET_CHECKPOINT_DIR, type CheckpointCreatedData, type KcrEvent } from '../../functions/core/contract/index.js';
import { artifactKey, checkpointPrefix } from '../../functions/core/storage/layout.js';
import { BadInputError, TransientError } from '../../functions/core/runtime/errors.js';
import type { HandlerContext, IncomingEvent } from '../../functions/core/runtime/handler.js';
import { createStoreArtifact, type PodReader } from '../../functions/store-artifact/handler.js';
import type { CheckpointManifest } from '../../functions/core/storage/records.js';
import type { V1Pod } from '@kubernetes/client-node';
import { startNodeAgent, type NodeAgent } from '../../node-agent/server.js';
import { SAMPLE_STATS, writeCheckpointArchive, type ArchiveSpec } from '../../simulator/archive-writer.js';
import { capturingLogger } from '../support/logs.js';
import { startS3, type S3Fixture } from '../support/s3.js';

const MiB = 1024 * 1024;
const TOKEN = 'agent-token';
const ctx: HandlerContext = { log: pino({ level: 'silent' }) };
/** The API after the checkpointed pods were deleted: their names are all that is left to check. */
const gone: PodReader = { getPod: () => Promise.resolve(undefined) };
/** The API with these pods. */
const livePods = (...pods: V1Pod[]): PodReader => ({ getPod: (ns, name) => Promise.resolve(pods.find((p) => p.metadata?.namespace === ns && p.metadata?.name === name)) });
const ownedPod = (data: CheckpointCreatedData, owner: { kind: string; name: string }): V1Pod => ({
  metadata: { name: data.pod, namespace: data.namespace, uid: data.podUid, ownerReferences: [{ apiVersion: 'apps/v1', kind: owner.kind, name: owner.name, uid: 'owner-uid', controller: true }] },
});

let s3: S3Fixture;
let root: string;
let dir: string;
let agent: NodeAgent;
const agentLog = capturingLogger();
let bucketNo = 0;
let podNo = 0;

beforeAll(async () => {
  s3 = await startS3();
  root = mkdtempSync(join(tmpdir(), 'kcr-store-'));
  dir = join(root, 'checkpoints');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(dir);
  agent = await startNodeAgent({ dir, token: TOKEN, allowDelete: true, logger: agentLog.logger });
});
afterAll(async () => {
  await agent?.close();
  await s3?.stop();
  rmSync(root, { recursive: true, force: true });
});

/** A fresh checkpoint of a fresh pod, its archive on the node, and the created event. */
async function scenario(spec: Partial<ArchiveSpec> = {}, write = true) {
  const pod = `redis-${podNo++}`;
  const timestamp = '2026-11-23T18:15:04Z';
  const name = kubeletArchiveName({ pod, namespace: 'shop', container: 'redis', timestamp });
  const data: CheckpointCreatedData = {
    id: checkpointId({ podUid: `uid-${pod}`, container: 'redis', checkpointedAt: timestamp }),
    namespace: 'shop',
    workload: { kind: 'StatefulSet', name: 'redis' },
    pod,
    podUid: `uid-${pod}`,
    container: 'redis',
    node: 'node-a',
    archivePath: `${KUBELET_CHECKPOINT_DIR}/${name}`,
    checkpointedAt: timestamp,
  };
  const file = join(dir, name);
  if (write) await writeCheckpointArchive(file, { pod, namespace: 'shop', podUid: `uid-${pod}`, container: 'redis', pagesBytes: 64 * 1024, ...spec });
  const store = new S3ObjectStore(s3.storeOptions(`bucket-${bucketNo++}`, { partSize: 5 * MiB, partsInFlight: 2 }));
  const event = { type: 'io.kcr.checkpoint.created', data, id: `ev-${pod}`, source: '/kcr/request-checkpoint', extensions: {} } as IncomingEvent<'io.kcr.checkpoint.created'>;
  const loc = { namespace: data.namespace, workload: data.workload, container: data.container, id: data.id };
  return { data, event, file, store, loc, prefix: checkpointPrefix(loc) };
}

function client(urls: Record<string, string> = { 'node-a': agent.url }, token = TOKEN): NodeAgentClient {
  return new NodeAgentClient({ locate: nodeAgentLocator({ urls }), token: () => token, timeoutMs: 5_000 });
}

async function keys(store: ObjectStore, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of store.list(prefix)) out.push(o.key);
  return out.sort();
}

const served = (file: string) => agentLog.lines.filter((l) => l.event === 'archive-served' && typeof l.name === 'string' && file.endsWith(l.name)).length;
const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const dataOf = (e: KcrEvent) => e.data as Record<string, unknown>;

describe('store-artifact', () => {
  it('streams the archive into the layout, writes manifest.json last, emits stored and deletes the node copy', async () => {
    const s = await scenario({ pagesBytes: 12 * MiB, rootfsImageName: 'docker.io/library/redis:7.2' });
    const expectedSha = sha256(s.file);
    const expectedSize = readFileSync(s.file).length;
    const before = s3.requests.length;
    const out = await createStoreArtifact({ pods: gone, store: s.store, agents: client() }).handle(s.event, ctx);

    expect(out).toHaveLength(1);
    expect(out[0]?.type).toBe('io.kcr.checkpoint.stored');
    expect(out[0]?.subject).toBe(`shop/${s.data.pod}/redis`);
    const artifact = { uri: `s3://${s.store.bucket}/${artifactKey(s.loc, 'archive')}`, size: expectedSize, sha256: expectedSha };
    expect(dataOf(out[0] as KcrEvent)).toEqual({ ...s.data, artifact });
    expect(await keys(s.store, 'checkpoints/')).toEqual([artifactKey(s.loc, 'archive'), artifactKey(s.loc, 'manifest')]);

    // Every write under the checkpoint's prefix happens before the manifest's PUT, which is the last one.
    const writes = s3.requests.slice(before).filter((r) => (r.method === 'PUT' || r.method === 'POST') && r.path.includes(s.prefix));
    expect(writes.at(-1)?.path).toBe(`/${s.store.bucket}/${artifactKey(s.loc, 'manifest')}`);
    expect(writes.filter((r) => r.path.endsWith('manifest.json'))).toHaveLength(1);
    expect(writes.filter((r) => r.method === 'PUT' && r.query.has('partNumber')).length).toBeGreaterThanOrEqual(3);

    const archive = createHash('sha256');
    for await (const c of await s.store.getStream(artifactKey(s.loc, 'archive'))) archive.update(c as Buffer);
    expect(archive.digest('hex')).toBe(expectedSha);

    const manifest = (await s.store.getJson(artifactKey(s.loc, 'manifest'))) as CheckpointManifest;
    expect(manifest.data).toEqual({ ...s.data, artifact });
    expect(manifest.archive).toMatchObject({
      rootfsImageName: 'docker.io/library/redis:7.2',
      rootfsImageRef: expect.stringMatching(/^sha256:/),
      runtime: 'runc',
      checkpointedTime: '2026-11-23T18:15:04.123456789Z',
      container: { pod: s.data.pod, namespace: 'shop', podUid: s.data.podUid, container: 'redis' },
      criuDumpStats: { decoded: true, dump: { ...SAMPLE_STATS } },
    });
    expect(manifest.source).toEqual({ node: 'node-a', archivePath: s.data.archivePath });
    expect(existsSync(s.file)).toBe(false);
  });

  it('a second delivery emits stored again without contacting the agent or uploading', async () => {
    const s = await scenario();
    const agents = client();
    let agentCalls = 0;
    const counting: ArchiveSource = {
      open: (n, p) => (agentCalls++, agents.open(n, p)),
      remove: (n, p) => (agentCalls++, agents.remove(n, p)),
    };
    const handler = createStoreArtifact({ pods: gone, store: s.store, agents: counting });
    const first = await handler.handle(s.event, ctx);
    expect(served(s.file)).toBe(1);
    const callsAfterFirst = agentCalls;
    const before = s3.requests.length;
    const second = await handler.handle(s.event, ctx);
    expect(dataOf(second[0] as KcrEvent)).toEqual(dataOf(first[0] as KcrEvent));
    expect(agentCalls).toBe(callsAfterFirst);
    expect(served(s.file)).toBe(1);
    expect(s3.requests.slice(before).filter((r) => r.method !== 'GET' && r.method !== 'HEAD')).toEqual([]);
  });

  it('when writing manifest.json fails, nothing claims success and the node copy stays', async () => {
    const s = await scenario();
    const failingCommit: ObjectStore = Object.assign(Object.create(s.store) as ObjectStore, {
      putJson: () => Promise.reject(new TransientError('S3 unavailable while committing')),
    });
    await expect(createStoreArtifact({ pods: gone, store: failingCommit, agents: client() }).handle(s.event, ctx)).rejects.toBeInstanceOf(TransientError);
    expect(await s.store.stat(artifactKey(s.loc, 'manifest'))).toBeUndefined();
    expect(existsSync(s.file)).toBe(true);
    // The retry completes the commit.
    const out = await createStoreArtifact({ pods: gone, store: s.store, agents: client() }).handle(s.event, ctx);
    expect(out[0]?.type).toBe('io.kcr.checkpoint.stored');
    expect(existsSync(s.file)).toBe(false);
  });

  it('when the agent dies midway: TransientError, multipart aborted, nothing under the checkpoint', async () => {
    const s = await scenario({ pagesBytes: 24 * MiB });
    const dying = await startNodeAgent({ dir, token: TOKEN, allowDelete: true, logger: pino({ level: 'silent' }) });
    const real = client({ 'node-a': dying.url });
    const killAt = 11 * MiB;
    const agents: ArchiveSource = {
      async open(node, path) {
        const download = await real.open(node, path);
        let seen = 0;
        const watch = new Transform({
          transform(chunk: Buffer, _e, cb) {
            seen += chunk.length;
            if (seen > killAt && seen - chunk.length <= killAt) void dying.close();
            cb(null, chunk);
          },
        });
        return { ...download, body: pipeline(download.body, watch, () => {}) };
      },
      remove: (n, p) => real.remove(n, p),
    };
    const before = s3.requests.length;
    await expect(createStoreArtifact({ pods: gone, store: s.store, agents }).handle(s.event, ctx)).rejects.toBeInstanceOf(TransientError);
    const sent = s3.requests.slice(before);
    expect(sent.some((r) => r.method === 'PUT' && r.query.has('partNumber'))).toBe(true);
    expect(sent.some((r) => r.method === 'DELETE' && r.query.has('uploadId'))).toBe(true);
    expect(await s3.pendingUploads(s.store.bucket)).toEqual([]);
    expect(await keys(s.store, 'checkpoints/')).toEqual([]);
    expect(existsSync(s.file)).toBe(true);
  });

  it.each([
    ['not a tar archive', (file: string) => writeFileSync(file, randomBytes(256 * 1024)), /not a tar archive/],
    ['truncated', (file: string) => truncateSync(file, Math.floor(readFileSync(file).length / 2)), /truncated tar archive/],
  ])('a %s archive is a permanent failure with nothing committed', async (_what, damage, reason) => {
    const s = await scenario({ pagesBytes: 7 * MiB });
    damage(s.file);
    const out = await createStoreArtifact({ pods: gone, store: s.store, agents: client() }).handle(s.event, ctx);
    expect(out.map((e) => e.type)).toEqual(['io.kcr.checkpoint.failed']);
    expect(dataOf(out[0] as KcrEvent)).toMatchObject({ id: s.data.id, namespace: 'shop', stage: 'store', reason: expect.stringMatching(reason) });
    expect(await keys(s.store, 'checkpoints/')).toEqual([]);
    expect(await s3.pendingUploads(s.store.bucket)).toEqual([]);
    expect(existsSync(s.file)).toBe(true); // kept on the node for forensics
  });

  it.each([
    [{ omit: ['config.dump'] }, /missing config.dump/],
    [{ omit: ['spec.dump'] }, /missing spec.dump/],
    [{ omit: ['checkpoint/', 'checkpoint/inventory.img', 'checkpoint/core-1.img', 'checkpoint/pagemap-1.img'] }, /missing checkpoint\//],
  ])('an archive without its parts (%o) fails permanently', async (spec, reason) => {
    const s = await scenario(spec);
    const out = await createStoreArtifact({ pods: gone, store: s.store, agents: client() }).handle(s.event, ctx);
    expect(dataOf(out[0] as KcrEvent)).toMatchObject({ stage: 'store', reason: expect.stringMatching(reason) });
    expect(await keys(s.store, 'checkpoints/')).toEqual([]);
  });

  it('an archive of another container fails permanently and its upload is removed', async () => {
    const s = await scenario({ pod: 'someone-else', pagesBytes: 6 * MiB });
    const out = await createStoreArtifact({ pods: gone, store: s.store, agents: client() }).handle(s.event, ctx);
    expect(dataOf(out[0] as KcrEvent)).toMatchObject({ stage: 'store', reason: expect.stringContaining(`pod someone-else ≠ ${s.data.pod}`) });
    expect(await keys(s.store, 'checkpoints/')).toEqual([]);
    expect(existsSync(s.file)).toBe(true);
  });

  it('an archive gone from the node (404) fails permanently', async () => {
    const s = await scenario({}, false);
    const out = await createStoreArtifact({ pods: gone, store: s.store, agents: client() }).handle(s.event, ctx);
    expect(dataOf(out[0] as KcrEvent)).toMatchObject({ stage: 'store', reason: expect.stringContaining('is gone from node node-a') });
  });

  it('a token the agent refuses fails permanently', async () => {
    const s = await scenario();
    const out = await createStoreArtifact({ pods: gone, store: s.store, agents: client(undefined, 'wrong') }).handle(s.event, ctx);
    expect(dataOf(out[0] as KcrEvent)).toMatchObject({ stage: 'store', reason: expect.stringContaining('401') });
    expect(existsSync(s.file)).toBe(true);
  });

  it('an unreachable agent or S3 is transient', async () => {
    const s = await scenario();
    const noAgent = client({ 'node-a': 'http://127.0.0.1:1' });
    await expect(createStoreArtifact({ pods: gone, store: s.store, agents: noAgent }).handle(s.event, ctx)).rejects.toBeInstanceOf(TransientError);
    const noS3 = new S3ObjectStore({ endpoint: 'http://127.0.0.1:1', accessKey: 'a', secretKey: 'b', bucket: 'kcr-unreachable' });
    await expect(createStoreArtifact({ pods: gone, store: noS3, agents: client() }).handle(s.event, ctx)).rejects.toBeInstanceOf(TransientError);
    expect(existsSync(s.file)).toBe(true);
  });

  it("refuses an event whose archive path is not its container's", async () => {
    const s = await scenario();
    const event = { ...s.event, data: { ...s.data, archivePath: '/var/lib/kubelet/checkpoints/checkpoint-other-0_shop-redis-2026-11-23T18:15:04Z.tar' } };
    await expect(createStoreArtifact({ pods: gone, store: s.store, agents: client() }).handle(event, ctx)).rejects.toBeInstanceOf(BadInputError);
  });
});

describe('store-artifact trusts the archive and the API, not the event', () => {
  it('refuses a made-up id (a far-future "newest" checkpoint) before reading the archive', async () => {
    const s = await scenario();
    const event = { ...s.event, data: { ...s.data, id: '29991231T235959Z-aaaaaaaaaaaa' } };
    const out = await createStoreArtifact({ pods: gone, store: s.store, agents: client() }).handle(event, ctx);
    expect(out.map((e) => e.type)).toEqual(['io.kcr.checkpoint.failed']);
    expect(dataOf(out[0] as KcrEvent).reason).toBe(`id 29991231T235959Z-aaaaaaaaaaaa is not the checkpoint id of pod uid ${s.data.podUid}, container redis at 2026-11-23T18:15:04Z (${s.data.id})`);
    expect(served(s.file)).toBe(0);
    await s.store.ensureBucket();
    expect(await keys(s.store, 'checkpoints/')).toEqual([]);
    expect(existsSync(s.file)).toBe(true);
  });

  it("refuses a checkpointedAt that is not the archive name's time, and a pod uid the id was not made of", async () => {
    const s = await scenario();
    const late = await createStoreArtifact({ pods: gone, store: s.store, agents: client() }).handle({ ...s.event, data: { ...s.data, checkpointedAt: '2099-01-01T00:00:00Z' } }, ctx);
    expect(dataOf(late[0] as KcrEvent).reason).toMatch(/^checkpointedAt 2099-01-01T00:00:00Z is not the time of archive/);
    const otherUid = await createStoreArtifact({ pods: gone, store: s.store, agents: client() }).handle({ ...s.event, data: { ...s.data, podUid: 'uid-of-someone-else' } }, ctx);
    expect(dataOf(otherUid[0] as KcrEvent).reason).toMatch(/^id .* is not the checkpoint id of pod uid uid-of-someone-else/);
    expect(served(s.file)).toBe(0);
    await s.store.ensureBucket();
    expect(await keys(s.store, 'checkpoints/')).toEqual([]);
  });

  it("refuses a workload that is not the pod's controller, as the API says", async () => {
    const s = await scenario();
    // The archive of StatefulSet redis's pod, claimed for Deployment counter (id made to match).
    const event = { ...s.event, data: { ...s.data, workload: { kind: 'Deployment' as const, name: 'counter' } } };
    const out = await createStoreArtifact({ pods: livePods(ownedPod(s.data, { kind: 'StatefulSet', name: 'redis' })), store: s.store, agents: client() }).handle(event, ctx);
    expect(dataOf(out[0] as KcrEvent)).toMatchObject({ stage: 'store', reason: `pod shop/${s.data.pod} belongs to StatefulSet redis, not Deployment counter` });
    expect(served(s.file)).toBe(0);
    expect(await keys(s.store, 'checkpoints/')).toEqual([]);
  });

  it('once the pod is gone, takes only a workload whose controller names its pods so', async () => {
    const s = await scenario();
    const asDeployment = await createStoreArtifact({ pods: gone, store: s.store, agents: client() }).handle({ ...s.event, data: { ...s.data, workload: { kind: 'Deployment', name: 'redis' } } }, ctx);
    expect(dataOf(asDeployment[0] as KcrEvent).reason).toBe(`pod shop/${s.data.pod} (gone from the API) cannot be a pod of Deployment redis`);
    const asOther = await createStoreArtifact({ pods: gone, store: s.store, agents: client() }).handle({ ...s.event, data: { ...s.data, workload: { kind: 'StatefulSet', name: 'web' } } }, ctx);
    expect(dataOf(asOther[0] as KcrEvent).reason).toMatch(/cannot be a pod of StatefulSet web$/);
    expect(await keys(s.store, 'checkpoints/')).toEqual([]);
    // The pod's own StatefulSet is taken, from the live pod or from its name.
    const ok = await createStoreArtifact({ pods: livePods(ownedPod(s.data, { kind: 'StatefulSet', name: 'redis' })), store: s.store, agents: client() }).handle(s.event, ctx);
    expect(ok.map((e) => e.type)).toEqual(['io.kcr.checkpoint.stored']);
  });

  it('refuses an archive whose spec.dump does not name the pod uid', async () => {
    const s = await scenario({ podUid: '' });
    const out = await createStoreArtifact({ pods: gone, store: s.store, agents: client() }).handle(s.event, ctx);
    expect(dataOf(out[0] as KcrEvent).reason).toMatch(/does not name its pod, pod uid, namespace and container in spec.dump/);
    expect(await keys(s.store, 'checkpoints/')).toEqual([]);
  });

  it('50 concurrent duplicates: one download, one upload, 50 × stored, nothing failed', async () => {
    const s = await scenario({ pagesBytes: 6 * MiB });
    const handler = createStoreArtifact({ pods: gone, store: s.store, agents: client() });
    const before = s3.requests.length;
    const outs = await Promise.all(Array.from({ length: 50 }, () => handler.handle(s.event, ctx)));
    expect(outs.flat().map((e) => e.type)).toEqual(Array(50).fill('io.kcr.checkpoint.stored'));
    expect(served(s.file)).toBe(1);
    const sent = s3.requests.slice(before);
    expect(sent.filter((r) => r.method === 'POST' && r.query.has('uploads'))).toHaveLength(1);
    expect(sent.filter((r) => r.method === 'PUT' && r.path.endsWith('manifest.json'))).toHaveLength(1);
  });

  it('duplicates racing in separate instances: every one ends stored, the checkpoint stays whole', async () => {
    for (let round = 0; round < 3; round++) {
      const s = await scenario({ pagesBytes: 6 * MiB });
      const expectedSha = sha256(s.file);
      // Separate instances share nothing but S3 and the node: the loser finds the node copy deleted.
      const outs = await Promise.all(Array.from({ length: 4 }, () => createStoreArtifact({ pods: gone, store: s.store, agents: client() }).handle(s.event, ctx)));
      expect(outs.flat().map((e) => e.type)).toEqual(Array(4).fill('io.kcr.checkpoint.stored'));
      expect(await keys(s.store, s.prefix)).toEqual([artifactKey(s.loc, 'archive'), artifactKey(s.loc, 'manifest')]);
      const archive = createHash('sha256');
      for await (const c of await s.store.getStream(artifactKey(s.loc, 'archive'))) archive.update(c as Buffer);
      expect(archive.digest('hex')).toBe(expectedSha);
    }
  });
});
