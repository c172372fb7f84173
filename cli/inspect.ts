// `kcr inspect ID`: forensics from S3, no node access: what `checkpointctl
// inspect --all` shows (container, sizes, CRIU dump statistics, mounts, process
// tree with command lines and environments, open files, sockets), plus each
// process's memory and the files the container changed, in checkpointctl's JSON
// shape with kcr's additions under `kcr`. Only the entries it needs are read, by
// range reads at the offsets store-artifact indexed in manifest.json (or found
// by walking the tar headers, for an archive stored without an index): of the
// memory pages only the bytes holding each process's argv and environ.
import type { Command } from 'commander';
import { artifactKey } from '../functions/core/storage/layout.js';
import type { ObjectStore } from '../functions/core/storage/object-store.js';
import { padded, parsePax, parseTarHeader, TAR_BLOCK, type TarIndexEntry } from '../functions/core/storage/tar-index.js';
import { addKubeFlags } from './kube.js';
import { addSettingsFlags, commandContext, fromS3, type CommandContext } from './context.js';
import { findCheckpoint } from './inventory.js';
import { NotFound } from './get.js';
import { examples, humanBytes, printOne, table } from './output.js';
import {
  cmdline,
  environment,
  filePath,
  pagemapBytes,
  pagesRanges,
  readComm,
  readFdinfo,
  readFiles,
  readFilesId,
  readFs,
  readMm,
  readPagemap,
  readPstree,
  type FileEntry,
  type SocketEntry,
} from '../functions/core/criu/image.js';
import type { CliIo } from './io.js';

const EXAMPLES = `
Examples:
  # processes, command lines, open files, sockets, memory, mounts, changed files and CRIU statistics
  %s inspect 20250131T120000Z-0123456789ab

  # the same as JSON (checkpointctl inspect's fields, kcr's under "kcr")
  %s inspect 20250131T120000Z-0123456789ab -o json`;

/** Entries over this size are never read whole (the pages; a big rootfs-diff.tar is walked by its headers). */
const MAX_READ = 4 * 1024 * 1024;
/** Files listed of rootfs-diff.tar at most. */
const MAX_ROOTFS_FILES = 1000;
/** Bytes of a process's argv or environ read from its pages at most (Linux caps both at ARG_MAX-ish sizes). */
const MAX_PROC_STRINGS = 256 * 1024;

export function addInspectCommand(program: Command, io: CliIo): void {
  const cmd = program
    .command('inspect')
    .description('forensics of a checkpoint from S3: processes, command lines, open files, sockets, memory, mounts, changed files, CRIU statistics (range reads, never the memory pages)')
    .argument('<id>', 'the checkpoint id')
    .addHelpText('after', examples(io, EXAMPLES))
    .action(async (id: string, _opts: object, c: Command) => inspect(commandContext(io, c), id));
  addSettingsFlags(addKubeFlags(cmd, { allNamespaces: true, output: true }));
}

/** Range reads of one object, counted. */
class Reader {
  requests = 0;
  bytes = 0;
  constructor(
    private readonly store: ObjectStore,
    readonly key: string,
  ) {}
  async read(offset: number, length: number): Promise<Buffer> {
    this.requests++;
    const buf = await this.store.getRange(this.key, offset, length);
    this.bytes += buf.length;
    return buf;
  }
}

/** The tar's regular files by walking its headers with range reads (one per entry); `base` for a tar inside another. */
async function walkTar(reader: Reader, base: number, end: number, limit = Infinity): Promise<TarIndexEntry[]> {
  const out: TarIndexEntry[] = [];
  let pos = base;
  let pending: { name?: string; size?: number } = {};
  while (pos + TAR_BLOCK <= end && out.length < limit) {
    const h = parseTarHeader(await reader.read(pos, TAR_BLOCK));
    if (!h) break;
    const size = pending.size ?? h.size;
    if (h.type === 'x' || h.type === 'L') {
      const data = await reader.read(pos + TAR_BLOCK, Math.min(h.size, 64 * 1024));
      if (h.type === 'x') {
        const pax = parsePax(data);
        pending = { ...(pax.path !== undefined ? { name: pax.path } : {}), ...(pax.size !== undefined ? { size: Number(pax.size) } : {}) };
      } else pending = { name: data.toString('utf8').replace(/\0.*$/s, '') };
      pos += TAR_BLOCK + padded(h.size);
      continue;
    }
    const name = (pending.name ?? h.name).replace(/^(\.\/)+/, '');
    if (h.type === '0' || h.type === '7') out.push({ name, offset: pos + TAR_BLOCK - base, size });
    else if (h.type === '5') out.push({ name: name.endsWith('/') ? name : `${name}/`, offset: pos + TAR_BLOCK - base, size: 0 });
    pending = {};
    pos += TAR_BLOCK + (h.type === '5' || h.type === '2' || h.type === '1' ? 0 : padded(size));
  }
  return out;
}

interface Process {
  pid: number;
  ppid: number;
  command: string;
  memoryBytes?: number;
  cmdline?: string;
  env?: Record<string, string>;
}

interface TreeNode {
  pid: number;
  command: string;
  cmdline?: string;
  environment_variables?: Record<string, string>;
  children?: TreeNode[];
}

/** checkpointctl's file_descriptors entry of one process. */
interface FdNode {
  pid: number;
  open_files?: { type: string; fd: string; path: string }[];
}

/** checkpointctl's sockets entry of one process. */
interface SkNode {
  pid: number;
  open_sockets?: { protocol?: string; data: Record<string, string | number> }[];
}

function tree(processes: Process[]): TreeNode | undefined {
  const node = (p: Process): TreeNode => {
    const children = processes.filter((c) => c.ppid === p.pid && c.pid !== p.pid).map(node);
    return {
      pid: p.pid,
      command: p.command,
      ...(p.cmdline !== undefined ? { cmdline: p.cmdline } : {}),
      ...(p.env && Object.keys(p.env).length ? { environment_variables: p.env } : {}),
      ...(children.length ? { children } : {}),
    };
  };
  const root = processes.find((p) => p.ppid === 0) ?? processes[0];
  return root && node(root);
}

/** A socket as checkpointctl prints it (internal/json.go: the fields it keeps per socket kind, empty ones left out). */
function socketNode(s: SocketEntry): { protocol?: string; data: Record<string, string | number> } {
  const set = (o: Record<string, string | number | undefined>) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== '' && v !== 0)) as Record<string, string | number>;
  const data =
    s.fdType === 'UNIXSK'
      ? set({ type: 'UNIX', address: s.srcAddr })
      : s.fdType === 'INETSK'
        ? set({ type: s.protocol, state: s.state, src: s.srcAddr, src_port: s.srcPort, dst: s.dstAddr, dst_port: s.dstPort, send_buf: s.sendBuf, recv_buf: s.recvBuf })
        : set({ send_buf: s.sendBuf, recv_buf: s.recvBuf });
  return { ...(s.protocol ? { protocol: s.protocol } : {}), data };
}

/**
 * A unix socket name for a terminal: CRIU keeps sun_path's bytes, with the terminating
 * NUL of a path and the leading NUL of an abstract name (shown as `@`, as ss does).
 */
function printable(name: string): string {
  return name.replace(/^\0/, '@').replace(/\0+$/, '').replace(/\0/g, '\\0');
}

/** One line of a socket for the table view. */
function socketLine(s: { protocol?: string; data: Record<string, string | number> }): string {
  const d = s.data;
  if (d.type === 'UNIX') return `UNIX ${printable(String(d.address ?? '')) || '(unnamed)'}`;
  const ep = (a: unknown, p: unknown) => `${String(a ?? '*')}:${String(p ?? '*')}`;
  return `${s.protocol ?? '?'} ${ep(d.src, d.src_port)} -> ${ep(d.dst, d.dst_port)}${d.state ? ` ${String(d.state)}` : ''}`;
}

const CHECKPOINTCTL_STATS = ['freezing_time', 'frozen_time', 'memdump_time', 'memwrite_time', 'pages_scanned', 'pages_written'];

/** A time as Go's time.Format(time.RFC3339) prints it (whole seconds); '' for none or Go's zero time. */
function rfc3339(value: unknown): string {
  if (typeof value !== 'string' || !value || value.startsWith('0001-01-01')) return '';
  return value.replace(/\.\d+(?=Z$|[+-]\d\d:\d\d$)/, '');
}

function nonZero(sizes: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(sizes).filter(([, v]) => v !== 0));
}

function json<T>(buf: Buffer | undefined, what: string): T | undefined {
  if (!buf) return undefined;
  try {
    return JSON.parse(buf.toString('utf8')) as T;
  } catch {
    throw new Error(`${what} in the archive is not JSON`);
  }
}

async function inspect(ctx: CommandContext, id: string): Promise<void> {
  const store = await ctx.store();
  const c = await fromS3(store, `looking up checkpoint ${id}`, () => findCheckpoint(store, id, ctx.namespace));
  if (!c) throw new NotFound(`checkpoint "${id}" not found${ctx.namespace ? ` in namespace ${ctx.namespace} (-A searches all)` : ''}`);
  const reader = new Reader(store, artifactKey(c.loc, 'archive'));
  const indexed = c.manifest.archive.index;
  const entries = indexed ?? (await fromS3(store, 'walking the archive', () => walkTar(reader, 0, c.size)));
  const byName = new Map(entries.map((e) => [e.name, e]));
  const get = async (name: string): Promise<Buffer | undefined> => {
    const e = byName.get(name);
    if (!e || e.size > MAX_READ) return undefined;
    return fromS3(store, `reading ${name}`, () => reader.read(e.offset, e.size));
  };

  const [config, spec] = await Promise.all([get('config.dump'), get('spec.dump')]);
  const cfg = json<Record<string, unknown>>(config, 'config.dump') ?? {};
  const oci = json<{ mounts?: { destination: string; type?: string; source?: string }[]; annotations?: Record<string, string>; process?: { args?: string[] } }>(spec, 'spec.dump') ?? {};
  const ann = oci.annotations ?? {};

  /** Bytes [start, end) of a task's memory, by range reads of its pages image only there. */
  const memory = async (pagemapImage: Buffer, start: bigint, end: bigint): Promise<Buffer | undefined> => {
    if (end <= start || end - start > BigInt(MAX_PROC_STRINGS)) return undefined;
    const pagemap = readPagemap(pagemapImage);
    const pages = byName.get(`checkpoint/pages-${pagemap.pagesId}.img`);
    const ranges = pages && pagesRanges(pagemap, start, end);
    if (!pages || !ranges || ranges.some((r) => r.offset + r.length > pages.size)) return undefined;
    const parts = await Promise.all(ranges.map((r) => fromS3(store, `reading ${pages.name}`, () => reader.read(pages.offset + r.offset, r.length))));
    return Buffer.concat(parts);
  };

  const processes: Process[] = [];
  const fds: FdNode[] = [];
  const sockets: SkNode[] = [];
  const pstree = await get('checkpoint/pstree.img');
  const filesImage = await get('checkpoint/files.img');
  const files = filesImage ? readFiles(filesImage) : new Map<number, FileEntry>();
  if (pstree) {
    for (const p of readPstree(pstree)) {
      const [core, pagemap, mmImage, idsImage, fsImage] = await Promise.all(['core', 'pagemap', 'mm', 'ids', 'fs'].map((kind) => get(`checkpoint/${kind}-${p.pid}.img`)));
      const mm = mmImage && readMm(mmImage);
      const [argv, environ] = pagemap && mm ? await Promise.all([memory(pagemap, mm.argStart, mm.argEnd), memory(pagemap, mm.envStart, mm.envEnd)]) : [];
      processes.push({
        pid: p.pid,
        ppid: p.ppid,
        command: (core && readComm(core)) ?? '?',
        ...(pagemap ? { memoryBytes: pagemapBytes(pagemap) } : {}),
        ...(argv ? { cmdline: cmdline(argv) } : {}),
        ...(environ ? { env: environment(environ) } : {}),
      });
      // go-criu's ExploreFds/ExploreSk: the task's descriptors from fdinfo-<files_id>.img, then its cwd and root.
      const filesId = idsImage && readFilesId(idsImage);
      const fdinfo = filesId !== undefined ? await get(`checkpoint/fdinfo-${filesId}.img`) : undefined;
      if (!fdinfo) continue;
      const descriptors = readFdinfo(fdinfo);
      const open = descriptors.map((d) => ({ type: d.type, fd: `${d.type} ${d.fd}`, path: filePath(files, d.id, d.type) }));
      const fs = fsImage && readFs(fsImage);
      if (fs) open.push({ type: '', fd: 'cwd', path: filePath(files, fs.cwdId, 'REG') }, { type: '', fd: 'root', path: filePath(files, fs.rootId, 'REG') });
      fds.push({ pid: p.pid, ...(open.length ? { open_files: open } : {}) });
      const socks = descriptors.flatMap((d) => {
        const s = files.get(d.id)?.socket;
        return s && s.fdType === d.type ? [socketNode(s)] : [];
      });
      if (socks.length) sockets.push({ pid: p.pid, open_sockets: socks });
    }
  }
  const checkpointDir = entries.filter((e) => e.name.startsWith('checkpoint/'));
  const rootfs = byName.get('rootfs-diff.tar');
  const rootfsFiles = rootfs ? await fromS3(store, 'walking rootfs-diff.tar', () => walkTar(reader, rootfs.offset, rootfs.offset + rootfs.size, MAX_ROOTFS_FILES)) : [];
  const deleted = await get('deleted.files');
  const deletedFiles = json<string[]>(deleted, 'deleted.files') ?? [];
  const stats = c.manifest.archive.criuDumpStats;
  const allStatistics = stats?.decoded ? Object.fromEntries(Object.entries(stats.dump).filter(([, v]) => v !== 0)) : undefined;
  // checkpointctl shows these six (internal/json.go StatsNode, empty ones left out); kcr lists all under kcr.statistics.
  const statistics = allStatistics && Object.fromEntries(Object.entries(allStatistics).filter(([k]) => CHECKPOINTCTL_STATS.includes(k)));
  const crio = ann['io.container.manager'] === 'cri-o';
  const metadataName = crio ? json<{ name?: string }>(Buffer.from(ann['io.kubernetes.cri-o.Metadata'] ?? '{}'), 'io.kubernetes.cri-o.Metadata')?.name : undefined;
  const engine = ann['io.container.manager'] === 'cri-o' ? 'CRI-O' : ann['io.container.manager'] === 'libpod' ? 'Podman' : (ann['io.container.manager'] ?? 'unknown');

  const report = {
    // As checkpointctl names them: CRI-O's container metadata and creation annotation, podman's config.dump.
    container_name: (crio ? metadataName : undefined) ?? String(cfg.name ?? ''),
    image: String(cfg.rootfsImageName ?? ''),
    id: String(cfg.id ?? ''),
    runtime: String(cfg.runtime ?? ''),
    created: crio ? (ann['io.kubernetes.cri-o.Created'] ?? '') : rfc3339(cfg.createdTime),
    ...(rfc3339(cfg.checkpointedTime) ? { checkpointed: rfc3339(cfg.checkpointedTime) } : {}),
    engine,
    ...(ann['io.kubernetes.cri-o.IP.0'] ? { ip: ann['io.kubernetes.cri-o.IP.0'] } : {}),
    checkpoint_size: nonZero({
      total_size: checkpointDir.reduce((n, e) => n + e.size, 0),
      memory_pages_size: checkpointDir.filter((e) => /^checkpoint\/pages-\d+\.img$/.test(e.name)).reduce((n, e) => n + e.size, 0),
      root_fs_diff_size: rootfs?.size ?? 0,
    }),
    ...(statistics ? { statistics } : {}),
    mounts: (oci.mounts ?? []).map((m) => ({ destination: m.destination, type: m.type ?? '', source: m.source ?? '' })),
    ...(processes.length ? { process_tree: tree(processes) } : {}),
    ...(fds.length ? { file_descriptors: fds } : {}),
    ...(sockets.length ? { sockets } : {}),
    kcr: {
      checkpoint: { id: c.loc.id, namespace: c.loc.namespace, workload: c.loc.workload, container: c.loc.container, pod: c.manifest.data.pod, node: c.manifest.data.node },
      command: oci.process?.args ?? [],
      processes,
      ...(allStatistics ? { statistics: allStatistics } : {}),
      rootfsChanges: rootfsFiles.map((f) => ({ path: f.name, size: f.size })),
      deletedFiles,
      reads: { index: indexed ? 'manifest.json' : 'tar headers', requests: reader.requests, bytes: reader.bytes, archiveBytes: c.size },
    },
  };
  const format = ctx.flags.output;
  if (format === 'json' || format === 'yaml') {
    ctx.io.stdout.write(printOne(report, format));
    return;
  }
  if (format === 'name') {
    ctx.io.stdout.write(`checkpoint/${c.loc.id}\n`);
    return;
  }
  let out = table(
    ['', ''],
    [
      ['Checkpoint:', `${c.loc.id} (${c.loc.namespace}/${c.loc.workload.kind.toLowerCase()}/${c.loc.workload.name}, pod ${c.manifest.data.pod} on ${c.manifest.data.node})`],
      ['Container:', `${report.container_name} (${report.id}), ${report.engine}/${report.runtime}, image ${report.image}`],
      ['Created:', report.created],
      ['Checkpointed:', report.checkpointed ?? rfc3339(c.manifest.data.checkpointedAt)],
      ['Command:', report.kcr.command.join(' ')],
      [
        'Sizes:',
        `checkpoint ${humanBytes(report.checkpoint_size.total_size ?? 0)}, memory pages ${humanBytes(report.checkpoint_size.memory_pages_size ?? 0)}, rootfs diff ${humanBytes(report.checkpoint_size.root_fs_diff_size ?? 0)}`,
      ],
    ],
  )
    .split('\n')
    .slice(1)
    .join('\n');
  out +=
    'Processes:\n' +
    (processes.length
      ? table(
          ['  PID', 'PPID', 'COMMAND', 'MEMORY', 'CMDLINE'],
          processes.map((p) => [`  ${p.pid}`, String(p.ppid), p.command, p.memoryBytes !== undefined ? humanBytes(p.memoryBytes) : '?', p.cmdline?.trimEnd() ?? '?']),
        )
      : '  <no pstree.img>\n');
  out +=
    'Open files:\n' +
    (fds.some((f) => f.open_files?.length)
      ? table(
          ['  PID', 'FD', 'PATH'],
          fds.flatMap((f) => (f.open_files ?? []).map((o) => [`  ${f.pid}`, o.fd, o.path.replace(/\0/g, '')])),
        )
      : '  <none in the archive>\n');
  out +=
    'Sockets:\n' +
    (sockets.length
      ? table(
          ['  PID', 'SOCKET'],
          sockets.flatMap((s) => (s.open_sockets ?? []).map((o) => [`  ${s.pid}`, socketLine(o)])),
        )
      : '  <none in the archive>\n');
  out +=
    'Mounts:\n' +
    (report.mounts.length
      ? table(
          ['  DESTINATION', 'TYPE', 'SOURCE'],
          report.mounts.map((m) => [`  ${m.destination}`, m.type, m.source]),
        )
      : '  <none>\n');
  out +=
    `Rootfs changes (${rootfsFiles.length}${rootfsFiles.length >= MAX_ROOTFS_FILES ? '+' : ''}):\n` +
    (rootfsFiles.length ? rootfsFiles.map((f) => `  ${f.name}${f.name.endsWith('/') ? '' : ` (${humanBytes(f.size)})`}\n`).join('') : '  <none>\n');
  if (deletedFiles.length) out += `Deleted files:\n${deletedFiles.map((f) => `  ${f}\n`).join('')}`;
  out +=
    'CRIU dump statistics:\n' +
    (statistics
      ? table(
          ['  NAME', 'VALUE'],
          Object.entries(statistics).map(([k, v]) => [`  ${k}`, String(v)]),
        )
      : '  <none>\n');
  out += `Read ${humanBytes(reader.bytes)} of ${humanBytes(c.size)} in ${reader.requests} range requests (index: ${report.kcr.reads.index}).\n`;
  ctx.io.stdout.write(out);
}
