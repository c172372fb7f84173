// Just enough of the CRIU image format and protobuf wire encoding to write images that
// CRIU tooling (crit, go-criu, checkpointctl) recognises: every image starts with a magic
// pair, then entries of `<u32 little-endian size><protobuf message>`. pages-*.img is raw
// page data without a header, so the simulator keeps its container state there.

/** Magic numbers from criu/include/magic.h. */
const MAGIC = {
  common: 0x54564319,
  service: 0x55105940,
  inventory: 0x58313116,
  stats: 0x57093306,
  pstree: 0x50273030,
  core: 0x55053847,
  pagemap: 0x56084025,
  mm: 0x57492820,
  ids: 0x54432030,
  files: 0x56303138,
  fdinfo: 0x56213732,
  fs: 0x51403912,
} as const;

type Field = { n: number; varint: number | bigint | boolean } | { n: number; bytes: Buffer | string } | { n: number; message: Field[] };

function varint(v: number | bigint): Buffer {
  let x = BigInt(v);
  const out: number[] = [];
  do {
    let b = Number(x & 0x7fn);
    x >>= 7n;
    if (x > 0n) b |= 0x80;
    out.push(b);
  } while (x > 0n);
  return Buffer.from(out);
}

/** Encodes a protobuf message from (field number, value) pairs, in order. */
function encodeMessage(fields: Field[]): Buffer {
  const parts: Buffer[] = [];
  for (const f of fields) {
    if ('varint' in f) {
      parts.push(varint(f.n << 3), varint(typeof f.varint === 'boolean' ? (f.varint ? 1 : 0) : f.varint));
    } else {
      const body = 'message' in f ? encodeMessage(f.message) : Buffer.isBuffer(f.bytes) ? f.bytes : Buffer.from(f.bytes, 'utf8');
      parts.push(varint((f.n << 3) | 2), varint(body.length), body);
    }
  }
  return Buffer.concat(parts);
}

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return b;
}

/** A CRIU image: magic pair, then size-prefixed protobuf entries. */
function criuImage(kind: 'common' | 'service', magic: number, entries: Field[][]): Buffer {
  const parts: Buffer[] = [u32(kind === 'common' ? MAGIC.common : MAGIC.service), u32(magic)];
  for (const e of entries) {
    const msg = encodeMessage(e);
    parts.push(u32(msg.length), msg);
  }
  return Buffer.concat(parts);
}

/**
 * CRIU's dump_stats_entry (criu/images/stats.proto), with its field names: times in
 * microseconds, counts in pages. The one shape every simulated stats-dump is written from.
 */
export interface DumpStats {
  freezing_time: number;
  frozen_time: number;
  memdump_time: number;
  memwrite_time: number;
  pages_scanned: number;
  pages_skipped_parent: number;
  pages_written: number;
  pages_lazy: number;
}

/** `stats-dump`: stats_entry { dump_stats_entry dump = 1 } (criu/images/stats.proto). */
export function statsDumpImage(s: DumpStats): Buffer {
  const dump: Field[] = [
    { n: 1, varint: s.freezing_time },
    { n: 2, varint: s.frozen_time },
    { n: 3, varint: s.memdump_time },
    { n: 4, varint: s.memwrite_time },
    { n: 5, varint: s.pages_scanned },
    { n: 6, varint: s.pages_skipped_parent },
    { n: 7, varint: s.pages_written },
    { n: 9, varint: s.pages_lazy },
  ];
  return criuImage('service', MAGIC.stats, [[{ n: 1, message: dump }]]);
}

/** inventory.img: inventory_entry { img_version = 2, fdinfo_per_id, ns_per_id, dump_uptime }. */
export function inventoryImage(uptimeUs: number): Buffer {
  return criuImage('service', MAGIC.inventory, [
    [
      { n: 1, varint: 2 },
      { n: 2, varint: true },
      { n: 4, varint: true },
      { n: 5, varint: 1 },
      { n: 8, varint: uptimeUs },
    ],
  ]);
}

/** pstree.img: one task, pid 1. */
export function pstreeImage(): Buffer {
  return criuImage('common', MAGIC.pstree, [
    [
      { n: 1, varint: 1 },
      { n: 2, varint: 0 },
      { n: 3, varint: 1 },
      { n: 4, varint: 1 },
      { n: 5, varint: 1 },
    ],
  ]);
}

/** core-1.img: core_entry { mtype = X86_64, tc = task_core_entry { alive, comm } }. */
export function coreImage(comm: string): Buffer {
  return criuImage('common', MAGIC.core, [
    [
      { n: 1, varint: 1 },
      {
        n: 3,
        message: [
          { n: 1, varint: 1 },
          { n: 2, varint: 0 },
          { n: 3, varint: 0 },
          { n: 4, varint: 0 },
          { n: 5, varint: 0 },
          { n: 6, bytes: comm.slice(0, 15) },
        ],
      },
    ],
  ]);
}

/** pagemap-1.img: pagemap_head { pages_id = 1 } then one pagemap_entry covering pages-1.img. */
export function pagemapImage(vaddr: bigint, nrPages: number): Buffer {
  return criuImage('common', MAGIC.pagemap, [
    [{ n: 1, varint: 1 }],
    [
      { n: 1, varint: vaddr },
      { n: 2, varint: nrPages },
      { n: 4, varint: 4 },
    ],
  ]);
}

/** Where a task's command line and environment sit in its memory (mm_entry's mm_arg_* and mm_env_*). */
export interface ProcStrings {
  argStart: bigint;
  argEnd: bigint;
  envStart: bigint;
  envEnd: bigint;
}

/** mm-1.img: mm_entry with the addresses checkpointctl reads argv and environ from (through pagemap and pages), and the exe's file id. */
export function mmImage(p: ProcStrings, exeFileId: number): Buffer {
  const stack = p.envEnd;
  return criuImage('common', MAGIC.mm, [
    [
      { n: 1, varint: 0x400000 },
      { n: 2, varint: 0x401000 },
      { n: 3, varint: 0x600000 },
      { n: 4, varint: 0x601000 },
      { n: 5, varint: stack },
      { n: 6, varint: 0x602000 },
      { n: 7, varint: 0x602000 },
      { n: 8, varint: p.argStart },
      { n: 9, varint: p.argEnd },
      { n: 10, varint: p.envStart },
      { n: 11, varint: p.envEnd },
      { n: 12, varint: exeFileId },
    ],
  ]);
}

/** ids-1.img: task_kobj_ids_entry (vm, files, fs, sighand ids); files_id names fdinfo-<id>.img. */
export function idsImage(filesId: number): Buffer {
  return criuImage('common', MAGIC.ids, [
    [
      { n: 1, varint: 1 },
      { n: 2, varint: filesId },
      { n: 3, varint: 1 },
      { n: 4, varint: 1 },
    ],
  ]);
}

/** files.img: one file_entry of type REG (1) per path, ids from 1 in order (reg_file_entry: id, flags, pos, fown, name, mode). */
export function filesImage(files: { path: string; mode: number }[]): Buffer {
  const fown: Field[] = [1, 2, 3, 4, 5].map((n) => ({ n, varint: 0 }));
  return criuImage(
    'common',
    MAGIC.files,
    files.map((f, i) => [
      { n: 1, varint: 1 },
      { n: 2, varint: i + 1 },
      {
        n: 3,
        message: [
          { n: 1, varint: i + 1 },
          { n: 2, varint: 0 },
          { n: 3, varint: 0 },
          { n: 5, message: fown },
          { n: 6, bytes: f.path },
          { n: 10, varint: f.mode },
        ],
      },
    ]),
  );
}

/** fdinfo-<files_id>.img: fdinfo_entry { id (the file's), flags, type REG, fd } per open descriptor. */
export function fdinfoImage(fds: { fd: number; fileId: number }[]): Buffer {
  return criuImage(
    'common',
    MAGIC.fdinfo,
    fds.map((d) => [
      { n: 1, varint: d.fileId },
      { n: 2, varint: 0 },
      { n: 3, varint: 1 },
      { n: 4, varint: d.fd },
    ]),
  );
}

/** fs-1.img: fs_entry { cwd_id, root_id, umask } (file ids of files.img). */
export function fsImage(cwdId: number, rootId: number): Buffer {
  return criuImage('common', MAGIC.fs, [
    [
      { n: 1, varint: cwdId },
      { n: 2, varint: rootId },
      { n: 3, varint: 0o22 },
    ],
  ]);
}
