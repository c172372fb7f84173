// build-image end to end against Debian's docker-registry on loopback (behind
// a counting proxy), with skopeo reading what it pushed.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createGunzip } from 'node:zlib';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createBuildImage } from '../../functions/build-image/handler.js';
import { ImageRecord } from '../../functions/core/storage/records.js';
import { RegistryClient } from '../../functions/build-image/registry.js';
import { Annotations, MediaTypes } from '../../functions/build-image/checkpoint-image.js';
import { EventTypes } from '../../functions/core/contract/events.js';
import { TransientError } from '../../functions/core/runtime/errors.js';
import { optionalBinary } from '../support/binaries.js';
import { MemoryStore } from '../support/memory-store.js';
import { startRegistry, startRegistryProxy, type RegistryProxy, type TestRegistry } from '../support/registry.js';
import { closedPort, keyOf, makeFixture, seed, storedEvent, tarEntries, testContext, type Fixture } from './fixtures.js';

const run = promisify(execFile);
const registryBinary = optionalBinary('docker-registry');
const skopeo = optionalBinary('skopeo');

const BLOB_UPLOAD = /\/blobs\/uploads\//;

describe.skipIf(!registryBinary)('build-image against docker-registry', () => {
  let registry: TestRegistry;
  let proxy: RegistryProxy;
  let store: MemoryStore;
  let fixture: Fixture;
  const ctx = testContext();

  const client = () => new RegistryClient({ baseUrl: proxy.url });
  const handlerFor = (opts: { prefix?: string; compression?: 'none' | 'gzip' } = {}) =>
    createBuildImage({ store, target: client(), repoPrefix: opts.prefix ?? 'kcr', compression: opts.compression ?? 'none' });

  beforeAll(async () => {
    registry = await startRegistry(registryBinary as string);
    proxy = await startRegistryProxy(registry.url);
  });
  afterAll(async () => {
    await proxy?.close();
    await registry?.stop();
  });
  beforeEach(async () => {
    store = new MemoryStore();
    fixture = await makeFixture({ pod: `redis-${Math.random().toString(36).slice(2, 8)}`, podUid: crypto.randomUUID() });
    seed(store, fixture);
  });

  it('pushes the image, writes image.json last, and emits image.built with the index digest', async () => {
    const [event] = await handlerFor().handle(storedEvent(fixture.data), ctx);
    expect(event?.type).toBe(EventTypes.imageBuilt);
    const data = event?.data as { image: { reference: string; digest: string; size: number }; id: string };
    const repo = 'kcr/shop/deployment-redis-redis';
    expect(data.id).toBe(fixture.data.id);
    expect(data.image.reference).toBe(`${proxy.host}/${repo}@${data.image.digest}`);
    expect(event?.subject).toBe(`shop/${fixture.data.pod}/redis`);

    expect(store.writes.at(-1)).toBe(keyOf(fixture, 'image'));
    const record = ImageRecord.parse(await store.getJson(keyOf(fixture, 'image')));
    expect(record).toMatchObject({ reference: data.image.reference, digest: data.image.digest, indexDigest: data.image.digest, mediaType: MediaTypes.index, tag: fixture.data.id, target: 'registry' });
    expect(record.layer).toEqual({ mediaType: MediaTypes.layerTar, digest: `sha256:${fixture.data.artifact.sha256}`, size: fixture.archive.length });

    // The annotations are on the index (tag) and on the manifest it points to, read back over the API.
    const registryClient = client();
    const index = await registryClient.getManifest(repo, fixture.data.id);
    expect(index?.digest).toBe(data.image.digest);
    expect(index?.mediaType).toBe(MediaTypes.index);
    const indexJson = JSON.parse(index?.bytes.toString() ?? '{}') as { annotations: Record<string, string>; manifests: { digest: string }[] };
    const manifest = await registryClient.getManifest(repo, indexJson.manifests[0]?.digest ?? '');
    expect(manifest?.digest).toBe(record.manifestDigest);
    const manifestJson = JSON.parse(manifest?.bytes.toString() ?? '{}') as { annotations: Record<string, string>; layers: { digest: string }[] };
    for (const annotations of [indexJson.annotations, manifestJson.annotations]) {
      expect(annotations).toMatchObject({
        [Annotations.criOCheckpointName]: 'redis',
        [Annotations.containerName]: 'redis',
        [Annotations.podName]: fixture.data.pod,
        [Annotations.podNamespace]: 'shop',
        [Annotations.rootfsImageName]: 'docker.io/library/redis:7',
        [Annotations.created]: '2026-11-23T18:15:04Z',
        [Annotations.checkpointId]: fixture.data.id,
        [Annotations.archiveSha256]: fixture.data.artifact.sha256,
      });
    }

    // The layer's files are the archive's files.
    const layer = await fetch(`${registry.url}/v2/${repo}/blobs/${manifestJson.layers[0]?.digest}`);
    expect(layer.status).toBe(200);
    const entries = await tarEntries(Readable.fromWeb(layer.body as import('node:stream/web').ReadableStream));
    expect(entries).toEqual(fixture.entries);
    expect(entries).toEqual(expect.arrayContaining(['config.dump', 'spec.dump', 'checkpoint/pages-1.img']));
  });

  it('does not upload the blob again on a second build, and yields the same digest', async () => {
    const handler = handlerFor();
    const startsBefore = proxy.count('POST', BLOB_UPLOAD);
    const first = await handler.build(fixture.data, ctx);
    expect(first).toMatchObject({ action: 'built', layer: 'uploaded' });
    const uploadsAfterFirst = proxy.count('PUT', BLOB_UPLOAD) + proxy.count('PATCH', BLOB_UPLOAD);

    // Redelivered event, image.json present and image in the registry: nothing pushed at all.
    const again = await handler.build(fixture.data, ctx);
    expect(again.action).toBe('reused');
    expect(again.record.digest).toBe(first.record.digest);

    // image.json lost: a full rebuild finds the blobs by HEAD and uploads none of them.
    await store.remove(keyOf(fixture, 'image'));
    const rebuilt = await handler.build(fixture.data, ctx);
    expect(rebuilt).toMatchObject({ action: 'built', layer: 'exists' });
    expect(rebuilt.record).toEqual(first.record);
    expect(proxy.count('PUT', BLOB_UPLOAD) + proxy.count('PATCH', BLOB_UPLOAD)).toBe(uploadsAfterFirst);
    expect(proxy.count('POST', BLOB_UPLOAD) - startsBefore).toBe(2); // the layer and the config, once each, in the first build
  });

  it('rebuilds the same digest after the image was deleted from the registry', async () => {
    const handler = handlerFor();
    const first = await handler.build(fixture.data, ctx);
    const repo = first.record.repository;
    const registryClient = client();
    expect(await registryClient.deleteManifest(repo, first.record.indexDigest)).toBe(true);
    expect(await registryClient.deleteManifest(repo, first.record.manifestDigest)).toBe(true);
    expect(await registryClient.hasManifest(repo, first.record.indexDigest)).toBe(false);

    const [event] = await handler.handle(storedEvent(fixture.data), ctx);
    expect(event?.type).toBe(EventTypes.imageBuilt);
    expect((event?.data as { image: { digest: string } }).image.digest).toBe(first.record.digest);
    expect(await registryClient.hasManifest(repo, first.record.indexDigest)).toBe(true);
  });

  it('mounts the layer from the previous repository when the same checkpoint goes to another one', async () => {
    const first = await handlerFor({ prefix: 'kcr' }).build(fixture.data, ctx);
    const putsBefore = proxy.count('PUT', BLOB_UPLOAD);
    const moved = await handlerFor({ prefix: 'kcr-moved' }).build(fixture.data, ctx);
    expect(moved).toMatchObject({ action: 'built', layer: 'mounted' });
    expect(moved.record.repository).toBe('kcr-moved/shop/deployment-redis-redis');
    expect(moved.record.digest).toBe(first.record.digest);
    expect(proxy.count('POST', new RegExp(`^/v2/kcr-moved/.*/blobs/uploads/\\?.*from=${encodeURIComponent(first.record.repository)}`))).toBeGreaterThanOrEqual(1);
    expect(proxy.count('PUT', BLOB_UPLOAD)).toBe(putsBefore);
  });

  it.skipIf(!skopeo)('is readable by skopeo inspect and skopeo copy', async () => {
    const { record } = await handlerFor().build(fixture.data, ctx);
    const ref = `docker://${registry.host}/${record.repository}@${record.digest}`;
    const { stdout } = await run(skopeo as string, ['inspect', '--tls-verify=false', ref]);
    const inspected = JSON.parse(stdout) as { Digest: string; Layers: string[]; Architecture: string; Os: string; Labels: Record<string, string> };
    // skopeo reports the digest it was given (the index) and the platform manifest's contents.
    expect(inspected.Digest).toBe(record.indexDigest);
    expect(inspected.Layers).toEqual([record.layer.digest]);
    expect(inspected).toMatchObject({ Architecture: 'amd64', Os: 'linux' });
    expect(inspected.Labels[Annotations.checkpointId]).toBe(fixture.data.id);

    const raw = await run(skopeo as string, ['inspect', '--raw', '--tls-verify=false', ref]);
    expect(JSON.parse(raw.stdout)).toMatchObject({ mediaType: MediaTypes.index, annotations: { [Annotations.criOCheckpointName]: 'redis' } });

    const dir = await mkdtemp(join(tmpdir(), 'kcr-skopeo-'));
    try {
      // --all keeps the index, --preserve-digests keeps the layer as pushed (skopeo would gzip it for oci:).
      await run(skopeo as string, ['copy', '--all', '--preserve-digests', '--src-tls-verify=false', ref, `oci:${dir}:copied`]);
      const layout = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
      expect(layout.manifests.map((m) => m.digest)).toEqual([record.indexDigest]);
      const layer = await readFile(join(dir, 'blobs', 'sha256', record.layer.digest.slice('sha256:'.length)));
      expect(layer.equals(fixture.archive)).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('pushes a gzip layer whose contents are the archive, and reuses it on a rebuild', async () => {
    const handler = handlerFor({ compression: 'gzip', prefix: 'kcr-gz' });
    const first = await handler.build(fixture.data, ctx);
    expect(first.record.layer.mediaType).toBe(MediaTypes.layerTarGzip);
    expect(first.record.layer.size).toBeLessThan(fixture.archive.length);
    const res = await fetch(`${registry.url}/v2/${first.record.repository}/blobs/${first.record.layer.digest}`);
    const entries = await tarEntries(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream).pipe(createGunzip()));
    expect(entries).toEqual(fixture.entries);

    await client().deleteManifest(first.record.repository, first.record.indexDigest);
    const rebuilt = await handler.build(fixture.data, ctx);
    expect(rebuilt).toMatchObject({ action: 'built', layer: 'exists' });
    expect(rebuilt.record.digest).toBe(first.record.digest);
  });

  it('fails the checkpoint (stage build) when manifest.json is gone', async () => {
    await store.remove(keyOf(fixture, 'manifest'));
    const [event] = await handlerFor().handle(storedEvent(fixture.data), ctx);
    expect(event?.type).toBe(EventTypes.checkpointFailed);
    expect(event?.data).toMatchObject({ id: fixture.data.id, stage: 'build', reason: expect.stringMatching(/manifest\.json does not exist/) });
    expect(await store.stat(keyOf(fixture, 'image'))).toBeUndefined();
  });

  it('fails the checkpoint when the archive does not match its recorded sha256, and commits nothing', async () => {
    const corrupt = Buffer.from(fixture.archive);
    corrupt.writeUInt8(corrupt.readUInt8(corrupt.length - 2000) ^ 0xff, corrupt.length - 2000);
    store.objects.set(keyOf(fixture, 'archive'), corrupt);
    for (const compression of ['gzip', 'none'] as const) {
      const [event] = await handlerFor({ compression, prefix: `kcr-corrupt-${compression}` }).handle(storedEvent(fixture.data), ctx);
      expect(event?.type).toBe(EventTypes.checkpointFailed);
      expect((event?.data as { reason: string }).reason).toMatch(compression === 'none' ? /DIGEST_INVALID/ : /stored as \d+ bytes with sha256/);
      expect(await client().hasBlob(`kcr-corrupt-${compression}/shop/deployment-redis-redis`, `sha256:${fixture.data.artifact.sha256}`)).toBe(false);
    }
    expect(await store.stat(keyOf(fixture, 'image'))).toBeUndefined();
  });

  it('answers an unreachable registry with a TransientError (the broker retries)', async () => {
    const gone = new RegistryClient({ baseUrl: `http://127.0.0.1:${await closedPort()}`, timeoutMs: 2000 });
    const handler = createBuildImage({ store, target: gone, repoPrefix: 'kcr' });
    await expect(handler.handle(storedEvent(fixture.data), ctx)).rejects.toThrow(TransientError);
    expect(await store.stat(keyOf(fixture, 'image'))).toBeUndefined();
  });

  it('reports refused credentials as a permanent failure', async () => {
    const authed = await startRegistry(registryBinary as string, { basicAuth: { username: 'kcr', password: 'right' } });
    try {
      const target = new RegistryClient({ baseUrl: authed.url, credentials: { username: 'kcr', password: 'wrong' } });
      const [event] = await createBuildImage({ store, target, repoPrefix: 'kcr' }).handle(storedEvent(fixture.data), ctx);
      expect(event?.type).toBe(EventTypes.checkpointFailed);
      expect((event?.data as { reason: string }).reason).toMatch(/refused the credentials of "kcr" \(basic\): 401/);
    } finally {
      await authed.stop();
    }
  });
});
