// Writes kubelet-style CRI-O checkpoint archives for tests and benchmarks, with
// the entries the simulated kubelet writes (archive-entries.ts) less CRI-O's
// extras, and options to size, leave out or spoil them. The page data is
// generated while streaming, so a 1 GiB archive costs no memory.
import { createWriteStream } from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { checkpointEntries, tarStream, type StreamedContent, type TarEntry } from './archive-entries.js';
import type { DumpStats } from './criu.js';

export { statsDumpImage as encodeStatsDump } from './criu.js';

export interface ArchiveSpec {
  pod: string;
  namespace: string;
  podUid: string;
  container: string;
  /** Bytes of pages-1.img; the archive is that plus a few KiB. */
  pagesBytes?: number;
  rootfsImageName?: string;
  rootfsImageRef?: string;
  runtime?: string;
  checkpointedTime?: string;
  /** The CRIU dump statistics to encode in stats-dump; `false` leaves the file out. */
  stats?: DumpStats | false;
  /** Raw bytes for stats-dump instead of a valid encoding. */
  rawStats?: Buffer;
  /** Entries to leave out, e.g. `config.dump`; `checkpoint/` also leaves out pages-1.img. */
  omit?: string[];
  /** Replaces an entry's content, e.g. `{ 'config.dump': 'not json' }`. */
  override?: Record<string, string | Buffer>;
  /** Entries added as they are (names not checked), e.g. hostile paths. */
  extra?: { name: string; content: string | Buffer; type?: 'file' | 'symlink'; linkname?: string }[];
}

export const SAMPLE_STATS: DumpStats = {
  freezing_time: 1234,
  frozen_time: 56789,
  memdump_time: 23456,
  memwrite_time: 34567,
  pages_scanned: 300_000,
  pages_skipped_parent: 0,
  pages_written: 262_144,
  pages_lazy: 0,
};

const PAGE_BLOCK = randomBytes(1 << 20);

/** Incompressible-ish page data: one random MiB, each repeat stamped with its index. */
function pages(size: number): StreamedContent {
  return {
    size,
    *chunks() {
      for (let i = 0, offset = 0; offset < size; i++, offset += PAGE_BLOCK.length) {
        const block = Buffer.from(PAGE_BLOCK.subarray(0, Math.min(PAGE_BLOCK.length, size - offset)));
        if (block.length >= 4) block.writeUInt32LE(i, 0);
        yield block;
      }
    },
  };
}

/** The archive as a stream, written lazily as it is read. */
export function checkpointArchiveStream(spec: ArchiveSpec): Readable {
  const omit = new Set(spec.omit ?? []);
  const checkpointedAt = spec.checkpointedTime ?? '2026-11-23T18:15:04.123456789Z';
  const image = spec.rootfsImageName ?? 'docker.io/library/redis:7';
  const left = (e: TarEntry) => !omit.has(e.name) && !(e.name === 'checkpoint/pages-1.img' && omit.has('checkpoint/'));
  const fill = async () => {
    const entries = await checkpointEntries({
      namespace: spec.namespace,
      pod: spec.pod,
      podUid: spec.podUid,
      container: spec.container,
      containerId: 'b3b1a4d2c5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2',
      image,
      imageRef: spec.rootfsImageRef ?? 'sha256:6f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8',
      podIP: '10.244.0.10',
      sandboxId: '9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d',
      restartCount: 0,
      createdAt: '2026-11-23T18:00:00.000000000Z',
      checkpointedAt,
      runtime: spec.runtime ?? 'runc',
      args: ['redis-server'],
      pages: pages(spec.pagesBytes ?? 64 * 1024),
      rootfsDiff: [],
      // Raw bytes are written even where stats-dump is left out: they stand for a spoiled file, not a missing one.
      stats: spec.rawStats ?? (spec.stats === false || omit.has('stats-dump') ? undefined : (spec.stats ?? SAMPLE_STATS)),
      minimal: true,
    });
    const chosen = entries.filter((e) => e.name === 'stats-dump' || left(e));
    const replaced = chosen.map((e): TarEntry => {
      const content = spec.override?.[e.name];
      return content === undefined || 'dir' in e ? e : { name: e.name, data: Buffer.from(content) };
    });
    const extra = (spec.extra ?? []).map((e): TarEntry => (e.type === 'symlink' ? { name: e.name, symlink: e.linkname ?? '/etc/passwd' } : { name: e.name, data: Buffer.from(e.content) }));
    return [...replaced, ...extra];
  };
  return tarStream(fill(), new Date(checkpointedAt));
}

export async function writeCheckpointArchive(path: string, spec: ArchiveSpec): Promise<void> {
  await pipeline(checkpointArchiveStream(spec), createWriteStream(path, { mode: 0o600 }));
}
