// Writes kubelet-style CRI-O checkpoint archives for tests and benchmarks:
// config.dump, spec.dump, checkpoint/ (CRIU images, pages-1.img of any size),
// rootfs-diff.tar, stats-dump (a CRIU protobuf image) and dump.log. The page
// data is generated while streaming, so a 1 GiB archive costs no memory.
import { createWriteStream } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { criuImage, MAGIC } from './criu.js';

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
  /** Entries to leave out, e.g. `config.dump`. */
  omit?: string[];
  /** Replaces an entry's content, e.g. `{ 'config.dump': 'not json' }`. */
  override?: Record<string, string | Buffer>;
  /** Entries added as they are (names not checked), e.g. hostile paths. */
  extra?: { name: string; content: string | Buffer; type?: 'file' | 'symlink'; linkname?: string }[];
}

interface DumpStats {
  freezing_time: number;
  frozen_time: number;
  memdump_time: number;
  memwrite_time: number;
  pages_scanned: number;
  pages_skipped_parent: number;
  pages_written: number;
  pages_lazy: number;
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

/** A CRIU stats-dump image: StatsEntry{dump = 1: DumpStatsEntry}, encoded as the simulated kubelet encodes CRIU images. */
export function encodeStatsDump(stats: DumpStats): Buffer {
  const fields: [number, number][] = [
    [1, stats.freezing_time],
    [2, stats.frozen_time],
    [3, stats.memdump_time],
    [4, stats.memwrite_time],
    [5, stats.pages_scanned],
    [6, stats.pages_skipped_parent],
    [7, stats.pages_written],
    [9, stats.pages_lazy],
  ];
  return criuImage('service', MAGIC.stats, [[{ n: 1, message: fields.map(([n, varint]) => ({ n, varint })) }]]);
}

function configDump(spec: ArchiveSpec): Record<string, unknown> {
  return {
    id: 'b3b1a4d2c5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2',
    name: `k8s_${spec.container}_${spec.pod}_${spec.namespace}_${spec.podUid}_0`,
    rootfsImage: spec.rootfsImageName ?? 'docker.io/library/redis:7',
    rootfsImageRef: spec.rootfsImageRef ?? 'sha256:6f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8',
    rootfsImageName: spec.rootfsImageName ?? 'docker.io/library/redis:7',
    runtime: spec.runtime ?? 'runc',
    createdTime: '2026-11-23T18:00:00.000000000Z',
    checkpointedTime: spec.checkpointedTime ?? '2026-11-23T18:15:04.123456789Z',
  };
}

function specDump(spec: ArchiveSpec): Record<string, unknown> {
  return {
    ociVersion: '1.0.2-dev',
    process: { args: ['redis-server'], cwd: '/data' },
    root: { path: '/var/lib/containers/storage/overlay/abc/merged' },
    annotations: {
      'io.kubernetes.pod.name': spec.pod,
      'io.kubernetes.pod.namespace': spec.namespace,
      'io.kubernetes.pod.uid': spec.podUid,
      'io.kubernetes.container.name': spec.container,
      // What CRI-O itself adds; checkpointctl keys on these to show a CRI-O checkpoint.
      'io.container.manager': 'cri-o',
      'io.kubernetes.cri-o.ContainerType': 'container',
      'io.kubernetes.cri-o.Metadata': JSON.stringify({ name: spec.container }),
      'io.kubernetes.cri-o.Created': '2026-11-23T18:00:00.000000000Z',
    },
  };
}

const PAGE_BLOCK = randomBytes(1 << 20);

/** Incompressible-ish page data: one random MiB, each repeat stamped with its index. */
function pageBlock(index: number, size: number): Buffer {
  const block = Buffer.from(PAGE_BLOCK.subarray(0, size));
  if (size >= 4) block.writeUInt32LE(index, 0);
  return block;
}

async function writeEntry(pack: tar.Pack, name: string, content: string | Buffer): Promise<void> {
  await new Promise<void>((resolve, reject) => pack.entry({ name, mode: 0o600 }, content, (err) => (err ? reject(err) : resolve())));
}

async function writePages(pack: tar.Pack, name: string, size: number): Promise<void> {
  const entry = pack.entry({ name, size, mode: 0o600 });
  const done = new Promise<void>((resolve, reject) => {
    entry.on('finish', resolve);
    entry.on('error', reject);
  });
  // streamx's end() takes the last chunk; the loop keeps one back for it.
  let offset = 0;
  let i = 0;
  for (; size - offset > PAGE_BLOCK.length; i++, offset += PAGE_BLOCK.length) {
    if (!entry.write(pageBlock(i, PAGE_BLOCK.length))) await new Promise<void>((r) => entry.once('drain', () => r()));
  }
  entry.end(pageBlock(i, size - offset));
  await done;
}

/** The archive as a stream (tar-stream pack), written lazily as it is read. */
export function checkpointArchiveStream(spec: ArchiveSpec): Readable {
  const pack = tar.pack();
  const omit = new Set(spec.omit ?? []);
  const content = (name: string, dflt: string | Buffer) => spec.override?.[name] ?? dflt;
  const fill = async () => {
    const files: [string, string | Buffer][] = [
      ['config.dump', JSON.stringify(configDump(spec))],
      ['spec.dump', JSON.stringify(specDump(spec))],
      ['checkpoint/inventory.img', Buffer.from('inventory')],
      ['checkpoint/core-1.img', Buffer.from('core')],
      ['checkpoint/pagemap-1.img', Buffer.from('pagemap')],
    ];
    for (const [name, dflt] of files) {
      // CRI-O's tar has the directory entry itself before the CRIU images (checkpointctl looks for it).
      if (name === 'checkpoint/inventory.img' && !omit.has('checkpoint/')) pack.entry({ name: 'checkpoint/', type: 'directory', mode: 0o700 });
      if (!omit.has(name)) await writeEntry(pack, name, content(name, dflt));
    }
    if (!omit.has('checkpoint/pages-1.img') && !omit.has('checkpoint/')) await writePages(pack, 'checkpoint/pages-1.img', spec.pagesBytes ?? 64 * 1024);
    if (!omit.has('rootfs-diff.tar')) await writeEntry(pack, 'rootfs-diff.tar', Buffer.alloc(1024));
    if (spec.rawStats) await writeEntry(pack, 'stats-dump', spec.rawStats);
    else if (spec.stats !== false && !omit.has('stats-dump')) await writeEntry(pack, 'stats-dump', encodeStatsDump(spec.stats ?? SAMPLE_STATS));
    if (!omit.has('dump.log')) await writeEntry(pack, 'dump.log', 'Dumping finished successfully\n');
    for (const e of spec.extra ?? []) {
      if (e.type === 'symlink') pack.entry({ name: e.name, type: 'symlink', linkname: e.linkname ?? '/etc/passwd' });
      else await writeEntry(pack, e.name, e.content);
    }
    pack.finalize();
  };
  fill().catch((err: unknown) => pack.destroy(err instanceof Error ? err : new Error(String(err))));
  return Readable.from(pack);
}

export async function writeCheckpointArchive(path: string, spec: ArchiveSpec): Promise<void> {
  await pipeline(checkpointArchiveStream(spec), createWriteStream(path, { mode: 0o600 }));
}
