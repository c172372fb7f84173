import { describe, expect, it } from 'vitest';
import {
  Annotations,
  archiveLayer,
  buildCheckpointImage,
  canonicalJson,
  isValidRepository,
  MediaTypes,
  parsePlatform,
  repositoryName,
  sha256Digest,
} from '../../functions/build-image/checkpoint-image.js';
import { makeFixture } from './fixtures.js';

const platform = { os: 'linux', architecture: 'amd64' };

describe('checkpoint image description', () => {
  it('is byte-identical when built twice from the same checkpoint', async () => {
    const f = await makeFixture();
    const facts = f.manifest.archive;
    const a = buildCheckpointImage({ data: f.data, facts, layer: archiveLayer(f.data), platform });
    const b = buildCheckpointImage({ data: structuredClone(f.data), facts: { ...facts }, layer: archiveLayer(f.data), platform });
    expect(b.index.bytes.equals(a.index.bytes)).toBe(true);
    expect(b.index.descriptor.digest).toBe(a.index.descriptor.digest);
    expect(a.index.descriptor.digest).toBe(sha256Digest(a.index.bytes));
  });

  it('changes digest when the checkpoint changes', async () => {
    const f1 = await makeFixture();
    const f2 = await makeFixture({ checkpointedAt: '2026-11-23T18:20:00Z' });
    const a = buildCheckpointImage({ data: f1.data, facts: {}, layer: archiveLayer(f1.data), platform });
    const b = buildCheckpointImage({ data: f2.data, facts: {}, layer: archiveLayer(f2.data), platform });
    expect(b.index.descriptor.digest).not.toBe(a.index.descriptor.digest);
  });

  it('puts the layer, config and annotations where CRI-O and containerd look', async () => {
    const f = await makeFixture();
    const image = buildCheckpointImage({ data: f.data, facts: f.manifest.archive, layer: archiveLayer(f.data), platform });
    const manifest = JSON.parse(image.manifest.bytes.toString()) as Record<string, unknown> & { annotations: Record<string, string>; layers: unknown[]; config: unknown };
    const index = JSON.parse(image.index.bytes.toString()) as { annotations: Record<string, string>; manifests: Record<string, unknown>[]; mediaType: string };
    const config = JSON.parse(image.config.bytes.toString()) as Record<string, unknown> & { rootfs: { diff_ids: string[] } };

    expect(manifest).toMatchObject({ schemaVersion: 2, mediaType: MediaTypes.manifest, config: image.config.descriptor });
    expect(manifest.layers).toEqual([{ mediaType: MediaTypes.layerTar, digest: `sha256:${f.data.artifact.sha256}`, size: f.archive.length }]);
    expect(config).toMatchObject({ architecture: 'amd64', os: 'linux', created: '2026-11-23T18:15:04Z' });
    expect(config.rootfs.diff_ids).toEqual([`sha256:${f.data.artifact.sha256}`]);
    expect(index.mediaType).toBe(MediaTypes.index);
    expect(index.manifests).toEqual([expect.objectContaining({ digest: image.manifest.descriptor.digest, size: image.manifest.bytes.length, platform })]);

    const expected = {
      [Annotations.criOCheckpointName]: 'redis',
      [Annotations.containerName]: 'redis',
      [Annotations.podName]: f.data.pod,
      [Annotations.podNamespace]: 'shop',
      [Annotations.rootfsImageName]: 'docker.io/library/redis:7',
      [Annotations.created]: '2026-11-23T18:15:04Z',
      [Annotations.checkpointId]: f.data.id,
      [Annotations.archiveSha256]: f.data.artifact.sha256,
    };
    expect(manifest.annotations).toMatchObject(expected);
    expect(index.annotations).toMatchObject(expected);
  });

  it('leaves out the rootfs image annotation when the manifest does not know it', async () => {
    const f = await makeFixture();
    const { rootfsImageName: _unknown, ...facts } = f.manifest.archive;
    const image = buildCheckpointImage({ data: f.data, facts, layer: archiveLayer(f.data), platform });
    expect(image.annotations).not.toHaveProperty(Annotations.rootfsImageName);
    expect(image.annotations).toMatchObject({ [Annotations.runtime]: 'runc' });
  });

  it('serializes JSON canonically: sorted keys, no whitespace, undefined dropped', () => {
    expect(canonicalJson({ b: 1, a: { d: [2, { z: 1, y: 2 }], c: undefined } })).toBe('{"a":{"d":[2,{"y":2,"z":1}]},"b":1}');
  });

  it('names repositories validly per the distribution spec', async () => {
    const f = await makeFixture({ workloadName: 'web.frontend' });
    expect(repositoryName(f.data, 'kcr')).toBe('kcr/shop/deployment-web.frontend-redis');
    expect(repositoryName(f.data, '/team/kcr/')).toBe('team/kcr/shop/deployment-web.frontend-redis');
    expect(repositoryName(f.data, '')).toBe('shop/deployment-web.frontend-redis');
    expect(() => repositoryName(f.data, 'Bad_Prefix!')).toThrow(/not valid per the distribution spec/);
    expect(isValidRepository('a/b--c/d__e')).toBe(true);
    expect(isValidRepository('a//b')).toBe(false);
    expect(isValidRepository('-a')).toBe(false);
  });

  it('parses platforms', () => {
    expect(parsePlatform('linux/arm64/v8')).toEqual({ os: 'linux', architecture: 'arm64', variant: 'v8' });
    expect(() => parsePlatform('amd64')).toThrow(/os\/arch/);
  });
});
