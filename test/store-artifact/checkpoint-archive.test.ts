import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ArchiveInvalidError, decodeStatsDump, inspectCheckpointArchive } from '../../functions/store-artifact/checkpoint-archive.js';
import { checkpointArchiveStream, encodeStatsDump, SAMPLE_STATS, type ArchiveSpec } from '../../simulator/archive-writer.js';

const base: ArchiveSpec = { pod: 'redis-0', namespace: 'shop', podUid: '5f0c-uid', container: 'redis' };

async function bytesOf(spec: ArchiveSpec): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of checkpointArchiveStream(spec)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Feeds the bytes in uneven chunks, as a network would. */
function chunked(buf: Buffer, size = 7001): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) parts.push(buf.subarray(i, i + size));
  return Readable.from(parts);
}

async function inspectionError(input: Buffer): Promise<string> {
  const err = await inspectCheckpointArchive(chunked(input)).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ArchiveInvalidError);
  return (err as Error).message;
}

describe('inspectCheckpointArchive', () => {
  it('reads config.dump, spec.dump annotations and the CRIU stats', async () => {
    const info = await inspectCheckpointArchive(chunked(await bytesOf({ ...base, pagesBytes: 3 << 20, rootfsImageName: 'docker.io/library/redis:7.2' })));
    expect(info.config.rootfsImageName).toBe('docker.io/library/redis:7.2');
    expect(info.config.runtime).toBe('runc');
    expect(info.config.checkpointedTime).toBe('2026-11-23T18:15:04.123456789Z');
    expect(info.container).toEqual({ pod: 'redis-0', namespace: 'shop', podUid: '5f0c-uid', container: 'redis' });
    expect(info.stats).toEqual({ decoded: true, dump: { ...SAMPLE_STATS } });
    expect(info.checkpointFiles).toBe(4);
    expect(info.topLevel).toEqual(['checkpoint/', 'config.dump', 'dump.log', 'rootfs-diff.tar', 'spec.dump', 'stats-dump']);
  });

  it('leaves stats out when there is no stats-dump, and records an undecodable one', async () => {
    expect((await inspectCheckpointArchive(chunked(await bytesOf({ ...base, stats: false })))).stats).toBeUndefined();
    const bad = await inspectCheckpointArchive(chunked(await bytesOf({ ...base, rawStats: Buffer.from('garbage that is not CRIU') })));
    expect(bad.stats).toEqual({ decoded: false, reason: 'not a CRIU stats image (magic mismatch)', bytes: 24 });
  });

  it.each([
    ['random bytes', () => randomBytes(20_000), 'not a tar archive'],
    ['an empty stream', () => Buffer.alloc(0), 'not a tar archive'],
    ['a gzip header', () => Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0]), randomBytes(2000)]), 'not a tar archive'],
  ])('rejects %s as not a tar archive', async (_what, make, message) => {
    expect(await inspectionError(make())).toMatch(new RegExp(`^${message}`));
  });

  it('rejects a truncated archive', async () => {
    const whole = await bytesOf({ ...base, pagesBytes: 1 << 20 });
    expect(await inspectionError(whole.subarray(0, Math.floor(whole.length / 2)))).toMatch(/^truncated tar archive/);
  });

  it.each([
    ['config.dump', 'missing config.dump'],
    ['spec.dump', 'missing spec.dump'],
    ['checkpoint/', 'missing checkpoint/'],
  ])('rejects an archive without %s', async (omitted, message) => {
    const omit = omitted === 'checkpoint/' ? ['checkpoint/', 'checkpoint/inventory.img', 'checkpoint/core-1.img', 'checkpoint/pagemap-1.img'] : [omitted];
    expect(await inspectionError(await bytesOf({ ...base, omit }))).toContain(message);
  });

  it('rejects dumps that are not JSON or over the size cap', async () => {
    expect(await inspectionError(await bytesOf({ ...base, override: { 'config.dump': '{not json' } }))).toMatch(/^config.dump is not valid JSON/);
    expect(await inspectionError(await bytesOf({ ...base, override: { 'spec.dump': JSON.stringify({ annotations: { a: 1 } }) } }))).toMatch(/^spec.dump is not an OCI runtime spec/);
    expect(await inspectionError(await bytesOf({ ...base, override: { 'config.dump': Buffer.alloc(2 << 20, 0x20) } }))).toMatch(/config.dump is 2097152 bytes, over the 1048576-byte cap/);
  });

  it.each([
    [{ name: '/etc/cron.d/evil', content: 'x' }, /absolute path/],
    [{ name: 'checkpoint/../../evil', content: 'x' }, /'\.\.' path segment/],
    [{ name: 'checkpoint/link', content: '', type: 'symlink' as const, linkname: '/etc/shadow' }, /links outside the archive/],
    [{ name: 'config.dump', content: '{}' }, /config.dump appears twice/],
  ])('rejects hostile entry %o', async (extra, message) => {
    expect(await inspectionError(await bytesOf({ ...base, extra: [extra] }))).toMatch(message);
  });
});

describe('decodeStatsDump', () => {
  it('decodes what CRIU writes and skips fields it does not know', () => {
    expect(decodeStatsDump(encodeStatsDump(SAMPLE_STATS))).toEqual({ decoded: true, dump: { ...SAMPLE_STATS } });
    // A newer CRIU field (number 15, varint) and a restore entry (field 2) are skipped.
    const img = encodeStatsDump(SAMPLE_STATS);
    const entry = img.subarray(12);
    const dumpLen = entry[1] as number;
    const extended = Buffer.concat([Buffer.from([0x0a, dumpLen + 2]), entry.subarray(2), Buffer.from([15 << 3, 7]), Buffer.from([0x12, 0])]);
    const head = Buffer.from(img.subarray(0, 12));
    head.writeUInt32LE(extended.length, 8);
    expect(decodeStatsDump(Buffer.concat([head, extended]))).toEqual({ decoded: true, dump: { ...SAMPLE_STATS } });
  });

  it('reports a truncated entry as undecoded', () => {
    const img = encodeStatsDump(SAMPLE_STATS);
    expect(decodeStatsDump(img.subarray(0, img.length - 3))).toMatchObject({ decoded: false, reason: expect.stringContaining('runs past the end') });
  });
});
