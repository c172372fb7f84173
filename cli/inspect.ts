// `kcr inspect ID`: forensics from S3, no node access: what `checkpointctl
// inspect` shows (container, sizes, CRIU dump statistics, mounts, process
// tree), plus each process's memory and the files the container changed, in
// checkpointctl's JSON shape with kcr's additions under `kcr`. Only the
// entries it needs are read, by range reads at the offsets store-artifact
// indexed in manifest.json (or found by walking the tar headers, for an
// archive stored without an index): never the memory pages.
import type { Command } from 'commander';
import { artifactKey } from '../functions/core/storage/layout.js';
import type { ObjectStore } from '../functions/core/storage/object-store.js';
import { padded, parsePax, parseTarHeader, TAR_BLOCK, type TarIndexEntry } from '../functions/core/storage/tar-index.js';
import { addKubeFlags } from './kube.js';
import { addSettingsFlags, commandContext, fromS3, type CommandContext } from './context.js';
import { findCheckpoint } from './inventory.js';
import { NotFound } from './get.js';
import { examples, humanBytes, printOne, table } from './output.js';
import { pagemapBytes, readComm, readPstree } from './criu-image.js';
import type { CliIo } from './io.js';

const EXAMPLES = `
Examples:
  # processes, memory, mounts, changed files and CRIU statistics of a checkpoint
  %s inspect 20250131T120000Z-0123456789ab

  # the same as JSON (checkpointctl inspect's fields, kcr's under "kcr")
  %s inspect 20250131T120000Z-0123456789ab -o json`;

/** Entries over this size are never read whole (the pages; a big rootfs-diff.tar is walked by its headers). */
const MAX_READ = 4 * 1024 * 1024;
/** Files listed of rootfs-diff.tar at most. */
const MAX_ROOTFS_FILES = 1000;

export function addInspectCommand(program: Command, io: CliIo): void {
  const cmd = program
    .command('inspect')
    .description('forensics of a checkpoint from S3: processes, memory, mounts, changed files, CRIU statistics (range reads, never the memory pages)')
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
}

interface TreeNode {
  pid: number;
  command: string;
  children?: TreeNode[];
}

function tree(processes: Process[]): TreeNode | undefined {
  const node = (p: Process): TreeNode => {
    const children = processes.filter((c) => c.ppid === p.pid && c.pid !== p.pid).map(node);
    return { pid: p.pid, command: p.command, ...(children.length ? { children } : {}) };
  };
  const root = processes.find((p) => p.ppid === 0) ?? processes[0];
  return root && node(root);
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

  const processes: Process[] = [];
  const pstree = await get('checkpoint/pstree.img');
  if (pstree) {
    for (const p of readPstree(pstree)) {
      const [core, pagemap] = await Promise.all([get(`checkpoint/core-${p.pid}.img`), get(`checkpoint/pagemap-${p.pid}.img`)]);
      processes.push({ pid: p.pid, ppid: p.ppid, command: (core && readComm(core)) ?? '?', ...(pagemap ? { memoryBytes: pagemapBytes(pagemap) } : {}) });
    }
  }
  const checkpointDir = entries.filter((e) => e.name.startsWith('checkpoint/'));
  const rootfs = byName.get('rootfs-diff.tar');
  const rootfsFiles = rootfs ? await fromS3(store, 'walking rootfs-diff.tar', () => walkTar(reader, rootfs.offset, rootfs.offset + rootfs.size, MAX_ROOTFS_FILES)) : [];
  const deleted = await get('deleted.files');
  const deletedFiles = json<string[]>(deleted, 'deleted.files') ?? [];
  const stats = c.manifest.archive.criuDumpStats;
  const statistics = stats?.decoded ? Object.fromEntries(Object.entries(stats.dump).filter(([, v]) => v !== 0)) : undefined;
  const engine = ann['io.container.manager'] === 'cri-o' ? 'CRI-O' : ann['io.container.manager'] === 'libpod' ? 'Podman' : (ann['io.container.manager'] ?? 'unknown');
  const has = (prefix: string) => entries.some((e) => e.name.startsWith(`checkpoint/${prefix}`));

  const report = {
    container_name: ann['io.kubernetes.container.name'] ?? String(cfg.name ?? ''),
    image: String(cfg.rootfsImageName ?? ''),
    id: String(cfg.id ?? ''),
    runtime: String(cfg.runtime ?? ''),
    created: String(cfg.createdTime ?? ''),
    checkpointed: String(cfg.checkpointedTime ?? ''),
    engine,
    ...(ann['io.kubernetes.cri-o.IP.0'] ? { ip: ann['io.kubernetes.cri-o.IP.0'] } : {}),
    checkpoint_size: {
      total_size: checkpointDir.reduce((n, e) => n + e.size, 0),
      memory_pages_size: checkpointDir.filter((e) => /^checkpoint\/pages-\d+\.img$/.test(e.name)).reduce((n, e) => n + e.size, 0),
      root_fs_diff_size: rootfs?.size ?? 0,
    },
    ...(statistics ? { statistics } : {}),
    mounts: (oci.mounts ?? []).map((m) => ({ destination: m.destination, type: m.type ?? '', source: m.source ?? '' })),
    ...(processes.length ? { process_tree: tree(processes) } : {}),
    kcr: {
      checkpoint: { id: c.loc.id, namespace: c.loc.namespace, workload: c.loc.workload, container: c.loc.container, pod: c.manifest.data.pod, node: c.manifest.data.node },
      command: oci.process?.args ?? [],
      processes,
      rootfsChanges: rootfsFiles.map((f) => ({ path: f.name, size: f.size })),
      deletedFiles,
      // CRIU writes these only for what the process had: their absence is itself an answer.
      openFiles: has('files.img') || has('fdinfo-') ? 'present (not decoded by kcr; use checkpointctl inspect --files)' : 'none in the archive',
      sockets: has('inetsk') || has('unixsk') ? 'present (not decoded by kcr; use checkpointctl inspect --sockets)' : 'none in the archive',
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
      ['Checkpointed:', report.checkpointed],
      ['Command:', report.kcr.command.join(' ')],
      [
        'Sizes:',
        `checkpoint ${humanBytes(report.checkpoint_size.total_size)}, memory pages ${humanBytes(report.checkpoint_size.memory_pages_size)}, rootfs diff ${humanBytes(report.checkpoint_size.root_fs_diff_size)}`,
      ],
      ['Open files:', report.kcr.openFiles],
      ['Sockets:', report.kcr.sockets],
    ],
  )
    .split('\n')
    .slice(1)
    .join('\n');
  out +=
    'Processes:\n' +
    (processes.length
      ? table(
          ['  PID', 'PPID', 'COMMAND', 'MEMORY'],
          processes.map((p) => [`  ${p.pid}`, String(p.ppid), p.command, p.memoryBytes !== undefined ? humanBytes(p.memoryBytes) : '?']),
        )
      : '  <no pstree.img>\n');
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
