// The OCI image layout target: what build-image writes without a registry.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OciLayout, REF_NAME_ANNOTATION } from '../../functions/build-image/oci-layout.js';
import { BlobMismatchError } from '../../functions/build-image/image-target.js';
import { createBuildImage } from '../../functions/build-image/handler.js';
import { ImageRecord } from '../../functions/core/storage/records.js';
import { Annotations, MediaTypes } from '../../functions/build-image/checkpoint-image.js';
import { EventTypes } from '../../functions/core/contract/events.js';
import { optionalBinary } from '../support/binaries.js';
import { MemoryStore } from '../support/memory-store.js';
import { keyOf, makeFixture, seed, storedEvent, tarEntries, testContext } from './fixtures.js';

const run = promisify(execFile);
const skopeo = optionalBinary('skopeo');
const ctx = testContext();

describe('OCI image layout', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kcr-layout-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('creates oci-layout and an empty index.json', async () => {
    const layout = new OciLayout(dir, 'kcr.local');
    await layout.init();
    expect(JSON.parse(await readFile(join(dir, 'oci-layout'), 'utf8'))).toEqual({ imageLayoutVersion: '1.0.0' });
    expect((await layout.readIndex()).manifests).toEqual([]);
  });

  it('stores blobs by digest, once, and refuses bytes that do not match', async () => {
    const layout = new OciLayout(dir, 'kcr.local');
    const bytes = Buffer.from('some layer bytes');
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    expect(await layout.uploadBlob('r', Readable.from([bytes]), { digest, size: bytes.length })).toEqual({ digest, size: bytes.length });
    expect(await layout.uploadBlob('r', Readable.from([bytes]))).toEqual({ digest, size: bytes.length });
    expect(await readdir(join(dir, 'blobs', 'sha256'))).toEqual([digest.slice(7)]);
    await expect(layout.uploadBlob('r', Readable.from([Buffer.from('other')]), { digest, size: bytes.length })).rejects.toThrow(BlobMismatchError);
    expect(await readdir(join(dir, '.kcr-tmp'))).toEqual([]);
  });

  it('keeps every tag when many writers update index.json at once', async () => {
    const writers = Array.from({ length: 4 }, () => new OciLayout(dir, 'kcr.local'));
    await Promise.all(
      Array.from({ length: 24 }, (_, i) => {
        const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.index, manifests: [], n: i }));
        return (writers[i % writers.length] as OciLayout).putManifest(`repo${i % 3}`, `t${i}`, MediaTypes.index, body);
      }),
    );
    const index = await new OciLayout(dir, 'kcr.local').readIndex();
    expect(index.manifests.map((m) => m.annotations?.[REF_NAME_ANNOTATION]).sort()).toEqual(Array.from({ length: 24 }, (_, i) => `repo${i % 3}:t${i}`).sort());
  });

  it('is where build-image writes without a registry: image.json names kcr.local/<repo>@<index digest>', async () => {
    const store = new MemoryStore();
    const fixture = await makeFixture();
    seed(store, fixture);
    const layout = new OciLayout(dir, 'kcr.local');
    const handler = createBuildImage({ store, target: layout, repoPrefix: 'kcr' });

    const [event] = await handler.handle(storedEvent(fixture.data), ctx);
    expect(event?.type).toBe(EventTypes.imageBuilt);
    const record = ImageRecord.parse(await store.getJson(keyOf(fixture, 'image')));
    expect(record.reference).toBe(`kcr.local/kcr/shop/deployment-redis-redis@${record.indexDigest}`);
    expect(record.target).toBe('oci-layout');

    const entry = await layout.resolve(record.repository, fixture.data.id);
    expect(entry).toMatchObject({ digest: record.indexDigest, mediaType: MediaTypes.index });
    expect(await tarEntries(layout.openBlob(record.layer.digest))).toEqual(fixture.entries);

    // Redelivery: the image is there, nothing is written; untagged, it is rebuilt to the same digest.
    expect((await handler.build(fixture.data, ctx)).action).toBe('reused');
    expect(await layout.untag(record.repository, record.indexDigest)).toBe(1);
    const rebuilt = await handler.build(fixture.data, ctx);
    expect(rebuilt).toMatchObject({ action: 'built', layer: 'exists' });
    expect(rebuilt.record).toEqual(record);
  });

  it.skipIf(!skopeo)('is readable by skopeo inspect oci:<dir>:<repo>:<tag>', async () => {
    const store = new MemoryStore();
    const fixture = await makeFixture();
    seed(store, fixture);
    const { record } = await createBuildImage({ store, target: new OciLayout(dir, 'kcr.local'), repoPrefix: 'kcr' }).build(fixture.data, ctx);
    const ref = `oci:${dir}:${record.repository}:${fixture.data.id}`;
    const { stdout } = await run(skopeo as string, ['inspect', ref]);
    const inspected = JSON.parse(stdout) as { Layers: string[]; Labels: Record<string, string>; Architecture: string };
    expect(inspected.Layers).toEqual([record.layer.digest]);
    expect(inspected.Labels[Annotations.criOCheckpointName]).toBe('redis');
    const raw = JSON.parse((await run(skopeo as string, ['inspect', '--raw', ref])).stdout) as { mediaType: string; annotations: Record<string, string> };
    expect(raw).toMatchObject({ mediaType: MediaTypes.index, annotations: { [Annotations.checkpointId]: fixture.data.id } });
  });
});
