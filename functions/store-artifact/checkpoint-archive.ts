// Streaming inspection of a kubelet checkpoint archive (CRI-O layout): checks
// that it is a tar with config.dump, spec.dump and files under checkpoint/,
// and reads those dumps and CRIU's stats-dump while the bytes go by. Only the
// small dumps are kept (capped); every other entry is drained, so memory does
// not depend on the archive's size. Archives come from nodes, so they are
// treated as hostile: absolute or `..` paths, escaping links, duplicate or
// oversized dumps are rejected.
import tar from 'tar-stream';
import { z } from 'zod';
import { decodeMessage, imageEntries } from '../core/criu/image.js';

const DEFAULT_MAX_DUMP_BYTES = 1024 * 1024;
const DUMP_FILES = ['config.dump', 'spec.dump', 'stats-dump'] as const;
type DumpFile = (typeof DUMP_FILES)[number];

/** The archive is not a usable checkpoint: a permanent failure, retrying cannot help. */
export class ArchiveInvalidError extends Error {
  override readonly name = 'ArchiveInvalidError';
}

const ConfigDump = z
  .object({
    id: z.string().optional(),
    name: z.string().optional(),
    rootfsImage: z.string().optional(),
    rootfsImageRef: z.string().optional(),
    rootfsImageName: z.string().optional(),
    /** podman's name for rootfsImageRef (its config.dump is libpod's container config). */
    rootfsImageID: z.string().optional(),
    runtime: z.string().optional(),
    createdTime: z.string().optional(),
    checkpointedTime: z.string().optional(),
  })
  .loose();
export type ConfigDump = z.infer<typeof ConfigDump>;

const SpecDump = z.object({ annotations: z.record(z.string(), z.string()).optional() }).loose();

export interface ArchiveContainer {
  pod?: string;
  namespace?: string;
  podUid?: string;
  container?: string;
}

/** CRIU's dump_stats_entry (criu/images/stats.proto): times in microseconds, counts in pages. */
export type CriuDumpStats = Record<string, number>;
export type StatsResult = { decoded: true; dump: CriuDumpStats } | { decoded: false; reason: string; bytes: number };

export interface CheckpointArchiveInfo {
  config: ConfigDump;
  /** From spec.dump's annotations (io.kubernetes.*). */
  container: ArchiveContainer;
  /** Absent when the archive has no stats-dump. */
  stats?: StatsResult;
  entries: number;
  checkpointFiles: number;
  /** Top-level names (files and directories), sorted: what the archive holds, for forensics. */
  topLevel: string[];
}

export interface ArchiveInspector {
  /** Feeds the next bytes; resolves when the parser has taken them (backpressure), rejects with ArchiveInvalidError. */
  write(chunk: Buffer): Promise<void>;
  /** Signals the end of the bytes; resolves with what was found, or rejects with ArchiveInvalidError. */
  end(): Promise<CheckpointArchiveInfo>;
  /** Stops parsing (the bytes will not all come); pending and later calls reject. */
  destroy(err?: Error): void;
}

/** `./a/b` → `a/b`; throws for absolute paths and `..` segments. */
function normalizeEntryName(raw: string): string {
  if (raw.startsWith('/')) throw new ArchiveInvalidError(`archive entry ${JSON.stringify(raw)} has an absolute path`);
  let name = raw;
  while (name.startsWith('./')) name = name.slice(2);
  if (name.split('/').includes('..')) throw new ArchiveInvalidError(`archive entry ${JSON.stringify(raw)} has a '..' path segment`);
  return name;
}

function checkLink(entry: string, linkname: string | null | undefined): void {
  if (!linkname) return;
  if (linkname.startsWith('/') || linkname.split('/').includes('..')) {
    throw new ArchiveInvalidError(`archive entry ${JSON.stringify(entry)} links outside the archive (${JSON.stringify(linkname)})`);
  }
}

export function createArchiveInspector(options: { maxDumpBytes?: number } = {}): ArchiveInspector {
  const maxDump = options.maxDumpBytes ?? DEFAULT_MAX_DUMP_BYTES;
  const extract = tar.extract();
  const dumps = new Map<DumpFile, Buffer>();
  const topLevel = new Set<string>();
  let entries = 0;
  let checkpointFiles = 0;
  let failure: Error | undefined;
  let finished = false;

  const fail = (err: unknown) => {
    if (failure) return;
    failure = toArchiveError(err, entries);
    extract.destroy(failure);
  };

  extract.on('entry', (header, stream, next) => {
    // The extract's own error is what counts; an entry stream torn down with it has nothing to add.
    stream.on('error', () => {});
    try {
      entries++;
      const name = normalizeEntryName(header.name);
      if (name === '') return void stream.on('end', () => next()).resume();
      topLevel.add(name.split('/')[0] + (name.includes('/') || header.type === 'directory' ? '/' : ''));
      if (header.type === 'symlink' || header.type === 'link') checkLink(name, header.linkname);
      if (name.startsWith('checkpoint/') && name !== 'checkpoint/' && header.type !== 'directory') checkpointFiles++;
      const dump = (DUMP_FILES as readonly string[]).includes(name) ? (name as DumpFile) : undefined;
      if (!dump) return void stream.on('end', () => next()).resume();
      if (header.type !== 'file') throw new ArchiveInvalidError(`${name} is a ${header.type}, not a regular file`);
      if (dumps.has(dump)) throw new ArchiveInvalidError(`${name} appears twice in the archive`);
      if ((header.size ?? 0) > maxDump) throw new ArchiveInvalidError(`${name} is ${header.size} bytes, over the ${maxDump}-byte cap for dump files`);
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => void chunks.push(c as Buffer));
      stream.on('end', () => {
        dumps.set(dump, Buffer.concat(chunks));
        next();
      });
    } catch (err) {
      fail(err);
    }
  });
  const done = new Promise<void>((resolve, reject) => {
    extract.on('finish', () => {
      finished = true;
      resolve();
    });
    extract.on('error', (err: Error) => {
      failure ??= toArchiveError(err, entries);
      reject(failure);
    });
    extract.on('close', () => {
      if (!finished) reject(failure ?? new ArchiveInvalidError('archive parsing stopped before the end'));
    });
  });
  done.catch(() => {}); // observed through write() and end()

  return {
    write(chunk) {
      if (failure) return Promise.reject(failure);
      if (extract.write(chunk)) return Promise.resolve();
      // Either the parser drains, or it failed (done rejects, even if the error was already emitted).
      let onDrain = () => {};
      const drained = new Promise<void>((resolve) => {
        onDrain = () => resolve();
        extract.once('drain', onDrain);
      });
      return Promise.race([drained, done]).finally(() => extract.off('drain', onDrain));
    },
    async end() {
      if (failure) throw failure;
      extract.end(undefined); // streamx's end() takes an optional last chunk; its types make it required
      await done;
      return summarize(dumps, { entries, checkpointFiles, topLevel: [...topLevel].sort() });
    },
    destroy(err) {
      fail(err ?? new ArchiveInvalidError('archive inspection was stopped'));
    },
  };
}

function toArchiveError(err: unknown, entries: number): Error {
  if (err instanceof ArchiveInvalidError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (/Unexpected end of data/i.test(message)) return new ArchiveInvalidError(entries === 0 ? 'not a tar archive (too short)' : `truncated tar archive (ended inside entry ${entries})`);
  if (/Invalid tar header/i.test(message)) return new ArchiveInvalidError(entries === 0 ? 'not a tar archive' : `corrupt tar archive (bad header after ${entries} entries)`);
  if (err instanceof Error) return err;
  return new Error(message);
}

function parseJsonDump(name: string, bytes: Buffer | undefined): unknown {
  if (!bytes) throw new ArchiveInvalidError(`missing ${name}`);
  try {
    return JSON.parse(bytes.toString('utf8')) as unknown;
  } catch (err) {
    throw new ArchiveInvalidError(`${name} is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function summarize(dumps: Map<DumpFile, Buffer>, counts: { entries: number; checkpointFiles: number; topLevel: string[] }): CheckpointArchiveInfo {
  if (counts.entries === 0) throw new ArchiveInvalidError('not a tar archive (no entries)');
  const config = ConfigDump.safeParse(parseJsonDump('config.dump', dumps.get('config.dump')));
  if (!config.success) throw new ArchiveInvalidError(`config.dump has unexpected fields: ${config.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const spec = SpecDump.safeParse(parseJsonDump('spec.dump', dumps.get('spec.dump')));
  if (!spec.success) throw new ArchiveInvalidError(`spec.dump is not an OCI runtime spec: ${spec.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  if (counts.checkpointFiles === 0) throw new ArchiveInvalidError('missing checkpoint/ (no CRIU images in the archive)');
  const a = spec.data.annotations ?? {};
  // CRI-O writes io.kubernetes.*; containerd's CRI plugin io.kubernetes.cri.*.
  const pick = (...keys: string[]) => keys.map((k) => a[k]).find((v) => v !== undefined && v !== '');
  const found = {
    pod: pick('io.kubernetes.pod.name', 'io.kubernetes.cri.sandbox-name'),
    namespace: pick('io.kubernetes.pod.namespace', 'io.kubernetes.cri.sandbox-namespace'),
    podUid: pick('io.kubernetes.pod.uid', 'io.kubernetes.cri.sandbox-uid'),
    container: pick('io.kubernetes.container.name', 'io.kubernetes.cri.container-name'),
  };
  const container = Object.fromEntries(Object.entries(found).filter(([, v]) => v !== undefined)) as ArchiveContainer;
  const statsBytes = dumps.get('stats-dump');
  return {
    config: config.data,
    container,
    ...(statsBytes ? { stats: decodeStatsDump(statsBytes) } : {}),
    ...counts,
  };
}

// criu/include/magic.h: service images (stats, irmap cache) start with these.
const IMG_SERVICE_MAGIC = 0x55105940;
const STATS_MAGIC = 0x57093306;
// criu/images/stats.proto, message dump_stats_entry.
const DUMP_STATS_FIELDS: Record<number, string> = {
  1: 'freezing_time',
  2: 'frozen_time',
  3: 'memdump_time',
  4: 'memwrite_time',
  5: 'pages_scanned',
  6: 'pages_skipped_parent',
  7: 'pages_written',
  8: 'irmap_resolve',
  9: 'pages_lazy',
  10: 'page_pipes',
  11: 'page_pipe_bufs',
  12: 'shpages_scanned',
  13: 'shpages_skipped_parent',
  14: 'shpages_written',
};

/** Decodes CRIU's stats-dump (magics, then stats_entry { dump = 1 }) with kcr's CRIU image codec; anything unexpected is reported, not thrown. */
export function decodeStatsDump(bytes: Buffer): StatsResult {
  const undecoded = (reason: string): StatsResult => ({ decoded: false, reason, bytes: bytes.length });
  if (bytes.length < 12) return undecoded('shorter than a CRIU image header');
  if (bytes.readUInt32LE(0) !== IMG_SERVICE_MAGIC || bytes.readUInt32LE(4) !== STATS_MAGIC) return undecoded('not a CRIU stats image (magic mismatch)');
  let entry;
  try {
    entry = imageEntries(bytes)[0];
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return undecoded(message.startsWith('entry of') ? message : `malformed protobuf: ${message}`);
  }
  try {
    const dumpBytes = entry?.get(1)?.find((v): v is Buffer => Buffer.isBuffer(v));
    if (!dumpBytes) return undecoded('no dump statistics in the stats entry');
    const dump: CriuDumpStats = {};
    for (const [field, values] of decodeMessage(dumpBytes)) {
      const name = DUMP_STATS_FIELDS[field];
      const value = values.at(-1);
      if (!name || typeof value !== 'bigint') continue;
      if (value > BigInt(Number.MAX_SAFE_INTEGER)) return undecoded(`${name} is beyond exact JSON numbers`);
      dump[name] = Number(value);
    }
    return { decoded: true, dump };
  } catch (err) {
    return undecoded(`malformed protobuf: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** Inspects a whole archive from a stream (the upload path feeds an inspector chunk by chunk instead). */
export async function inspectCheckpointArchive(source: AsyncIterable<Buffer | Uint8Array>, options: { maxDumpBytes?: number } = {}): Promise<CheckpointArchiveInfo> {
  const inspector = createArchiveInspector(options);
  try {
    for await (const chunk of source) await inspector.write(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  } catch (err) {
    inspector.destroy(err instanceof Error ? err : new Error(String(err)));
    throw err;
  }
  return inspector.end();
}
