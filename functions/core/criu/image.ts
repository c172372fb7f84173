// kcr's one decoder of CRIU images (the CLI's inspect and store-artifact's
// stats-dump read through it): an image is a magic pair (criu/include/magic.h)
// then entries of `<u32 little-endian size><protobuf message>`
// (criu/images/*.proto). pstree.img holds pstree_entry, core-<pid>.img
// core_entry (task_core_entry comm at tc=3/6), pagemap-<pid>.img a pagemap_head
// then pagemap_entry {vaddr, nr_pages, flags}, mm-<pid>.img mm_entry (where
// argv and environ sit), ids-<pid>.img the task's files_id, fdinfo-<files_id>.img
// one fdinfo_entry per descriptor, files.img one file_entry per open file (the
// socket images are inside it since CRIU 3.x), fs-<pid>.img cwd and root.
// What checkpointctl reads through go-criu's crit (crit/explore.go, utils.go).

export const PAGE_SIZE = 4096;

type Value = bigint | Buffer;
/** Field number → every value it had (varints as bigint, length-delimited as bytes). */
export type Message = Map<number, Value[]>;

export function decodeMessage(buf: Buffer): Message {
  const out: Message = new Map();
  let pos = 0;
  const varint = (): bigint => {
    let result = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (pos >= buf.length) throw new Error('varint runs past the end');
      const b = buf[pos++]!;
      result |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return result;
    }
    throw new Error('varint longer than 10 bytes');
  };
  const take = (n: number): Buffer => {
    if (pos + n > buf.length) throw new Error('field runs past the end');
    const out = buf.subarray(pos, pos + n);
    pos += n;
    return out;
  };
  while (pos < buf.length) {
    const key = varint();
    const field = Number(key >> 3n);
    const wire = Number(key & 7n);
    let value: Value;
    if (wire === 0) value = varint();
    else if (wire === 2) value = take(Number(varint()));
    else if (wire === 1) value = take(8);
    else if (wire === 5) value = take(4);
    else throw new Error(`unsupported wire type ${wire}`);
    const list = out.get(field) ?? [];
    list.push(value);
    out.set(field, list);
  }
  return out;
}

/** The entries of a CRIU image (after its two magic words). */
export function imageEntries(image: Buffer): Message[] {
  if (image.length < 8) throw new Error('shorter than a CRIU image header');
  const out: Message[] = [];
  let pos = 8;
  while (pos + 4 <= image.length) {
    const size = image.readUInt32LE(pos);
    pos += 4;
    if (pos + size > image.length) throw new Error(`entry of ${size} bytes runs past the end of the file`);
    out.push(decodeMessage(image.subarray(pos, pos + size)));
    pos += size;
  }
  return out;
}

const num = (m: Message, field: number): number => {
  const v = m.get(field)?.[0];
  return typeof v === 'bigint' ? Number(v) : 0;
};
const big = (m: Message, field: number): bigint => {
  const v = m.get(field)?.[0];
  return typeof v === 'bigint' ? v : 0n;
};
const sub = (m: Message, field: number): Message | undefined => {
  const v = m.get(field)?.[0];
  return v instanceof Buffer ? decodeMessage(v) : undefined;
};
const bytes = (m: Message, field: number): Buffer | undefined => {
  const v = m.get(field)?.[0];
  return v instanceof Buffer ? v : undefined;
};
/** A repeated uint32, packed or not. */
function repeated(m: Message, field: number): number[] {
  const out: number[] = [];
  for (const v of m.get(field) ?? []) {
    if (typeof v === 'bigint') out.push(Number(v));
    else for (const [, vals] of decodeMessage(Buffer.concat([Buffer.from([0x08]), v]))) for (const x of vals) out.push(Number(x as bigint));
  }
  return out;
}

export interface PstreeEntry {
  pid: number;
  ppid: number;
  pgid: number;
  sid: number;
  threads: number[];
}

export function readPstree(image: Buffer): PstreeEntry[] {
  return imageEntries(image).map((m) => ({ pid: num(m, 1), ppid: num(m, 2), pgid: num(m, 3), sid: num(m, 4), threads: (m.get(5) ?? []).map((v) => Number(v as bigint)) }));
}

/** task_core_entry.comm of core-<pid>.img. */
export function readComm(image: Buffer): string | undefined {
  const core = imageEntries(image)[0];
  const tc = core?.get(3)?.[0];
  if (!(tc instanceof Buffer)) return undefined;
  const comm = decodeMessage(tc).get(6)?.[0];
  return comm instanceof Buffer ? comm.toString('utf8') : undefined;
}

/** Bytes of memory pagemap-<pid>.img maps (its entries' nr_pages after the head). */
export function pagemapBytes(image: Buffer): number {
  return readPagemap(image).entries.reduce((n, e) => n + e.nrPages * PAGE_SIZE, 0);
}

/**
 * pagemap_entry.flags (criu/include/pagemap.h): PE_PRESENT pages are in pages-<id>.img,
 * PE_LAZY ones too unless dumped for lazy migration (CRIU marks anonymous memory lazy
 * and still writes it), PE_PARENT ones only in the parent checkpoint.
 */
const PE_PARENT = 1;
const PE_PRESENT = 4;

export interface Pagemap {
  pagesId: number;
  entries: { vaddr: bigint; nrPages: number; flags: number }[];
}

export function readPagemap(image: Buffer): Pagemap {
  const [head, ...rest] = imageEntries(image);
  return {
    pagesId: head ? num(head, 1) : 0,
    // Before flags (CRIU < 3.x) in_parent (3) said whether the pages were elsewhere.
    entries: rest.map((m) => ({ vaddr: big(m, 1), nrPages: num(m, 2), flags: m.has(4) ? num(m, 4) : num(m, 3) ? PE_PARENT : PE_PRESENT })),
  };
}

/**
 * Where [start, end) of the task's memory sits in pages-<pagesId>.img: one range per
 * mapped run, in order (so a string spanning two entries is read as two ranges), or
 * undefined when a byte of it is not in this image (in a parent image, or unmapped).
 */
export function pagesRanges(pagemap: Pagemap, start: bigint, end: bigint): { offset: number; length: number }[] | undefined {
  const out: { offset: number; length: number }[] = [];
  let offset = 0;
  let at = start;
  for (const e of pagemap.entries) {
    const present = (e.flags & PE_PRESENT) !== 0;
    const eEnd = e.vaddr + BigInt(e.nrPages * PAGE_SIZE);
    if (present && at < end && at >= e.vaddr && at < eEnd) {
      const to = end < eEnd ? end : eEnd;
      out.push({ offset: offset + Number(at - e.vaddr), length: Number(to - at) });
      at = to;
    }
    if (present) offset += e.nrPages * PAGE_SIZE;
  }
  return at >= end ? out : undefined;
}

/** mm_entry's mm_arg_* and mm_env_* (criu/images/mm.proto): where argv and environ sit. */
export interface ProcAddresses {
  argStart: bigint;
  argEnd: bigint;
  envStart: bigint;
  envEnd: bigint;
}

export function readMm(image: Buffer): ProcAddresses | undefined {
  const mm = imageEntries(image)[0];
  return mm && { argStart: big(mm, 8), argEnd: big(mm, 9), envStart: big(mm, 10), envEnd: big(mm, 11) };
}

/** argv as checkpointctl prints it: each argument followed by a space. */
export function cmdline(argv: Buffer): string {
  return argv.toString('utf8').replace(/\0/g, ' ');
}

/** environ as NAME → value (checkpointctl's environment_variables). */
export function environment(environ: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of environ.toString('utf8').split('\0')) {
    const i = v.indexOf('=');
    if (i > 0) out[v.slice(0, i)] = v.slice(i + 1);
  }
  return out;
}

/** task_kobj_ids_entry.files_id of ids-<pid>.img: which fdinfo-<id>.img holds the task's descriptors. */
export function readFilesId(image: Buffer): number | undefined {
  const ids = imageEntries(image)[0];
  return ids?.has(2) ? num(ids, 2) : undefined;
}

/** fd_types (criu/images/fdinfo.proto). */
const FD_TYPES = [
  'UND',
  'REG',
  'PIPE',
  'FIFO',
  'INETSK',
  'UNIXSK',
  'EVENTFD',
  'EVENTPOLL',
  'INOTIFY',
  'SIGNALFD',
  'PACKETSK',
  'TTY',
  'FANOTIFY',
  'NETLINKSK',
  'NS',
  'TUNF',
  'EXT',
  'TIMERFD',
  'MEMFD',
  'BPFMAP',
];
const fdType = (n: number): string => FD_TYPES[n] ?? String(n);

export interface Fdinfo {
  fd: number;
  /** The file_entry id in files.img. */
  id: number;
  type: string;
}

export function readFdinfo(image: Buffer): Fdinfo[] {
  return imageEntries(image).map((m) => ({ id: num(m, 1), type: fdType(num(m, 3)), fd: num(m, 4) }));
}

/** fs_entry of fs-<pid>.img: the file ids of the task's cwd and root. */
export function readFs(image: Buffer): { cwdId: number; rootId: number } | undefined {
  const fs = imageEntries(image)[0];
  return fs && { cwdId: num(fs, 1), rootId: num(fs, 2) };
}

/** One file_entry of files.img, the parts checkpointctl shows. */
export interface FileEntry {
  type: string;
  id: number;
  /** reg_file_entry.name. */
  path?: string;
  /** pipe_entry.pipe_id. */
  pipeId?: number;
  socket?: SocketEntry;
}

/** A socket as go-criu's ExploreSk describes it (crit/explore.go). */
export interface SocketEntry {
  fdType: 'INETSK' | 'UNIXSK' | 'PACKETSK' | 'NETLINKSK';
  family?: string;
  protocol?: string;
  type?: string;
  state?: string;
  srcAddr?: string;
  srcPort?: number;
  dstAddr?: string;
  dstPort?: number;
  sendBuf?: string;
  recvBuf?: string;
  /** unix_sk_entry's ino and peer (its path in the open files list). */
  ino?: number;
  peer?: number;
}

// Linux's tcp_states.h, socket families, types and IP protocols, named as go-criu names them.
const TCP_STATES = ['', 'ESTABLISHED', 'SYN_SENT', 'SYN_RECEIVED', 'FIN_WAIT_1', 'FIN_WAIT_2', 'TIME_WAIT', 'CLOSE', 'CLOSE_WAIT', 'LAST_ACK', 'LISTEN', 'CLOSING', 'NEW_SYN_RECV'];
const FAMILIES: Record<number, string> = { 1: 'UNIX', 16: 'NETLINK', 7: 'BRIDGE', 15: 'KEY', 17: 'PACKET', 2: 'IPV4', 10: 'IPV6' };
const SOCK_TYPES: Record<number, string> = { 1: 'STREAM', 2: 'DGRAM', 5: 'SEQPACKET', 3: 'RAW', 4: 'RDM', 10: 'PACKET' };
const PROTOCOLS: Record<number, string> = { 1: 'ICMP', 58: 'ICMPV6', 2: 'IGMP', 255: 'RAW', 6: 'TCP', 17: 'UDP', 136: 'UDPLITE' };

/** Bytes as go-criu's countBytes prints them ("212.0 KB"). */
export function countBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  let div = 1024;
  let exp = 0;
  for (let i = Math.floor(n / 1024); i >= 1024; i = Math.floor(i / 1024)) {
    div *= 1024;
    exp++;
  }
  return `${(n / div).toFixed(1)} ${'KMGTPE'[exp]}B`;
}

/** inet_sk_entry's address words (network order bytes, read as little-endian u32s) as text. */
function ipAddress(words: number[]): string {
  const buf = Buffer.alloc(words.length * 4);
  words.forEach((w, i) => buf.writeUInt32LE(w >>> 0, i * 4));
  if (words.length === 1) return [...buf].join('.');
  if (words.length !== 4) return '';
  const groups = Array.from({ length: 8 }, (_, i) => buf.readUInt16BE(i * 2).toString(16));
  // The longest run of zero groups (two or more) becomes "::", as Go's net.IP prints it.
  let best = [-1, 0];
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > best[1]! && j - i >= 2) best = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  if (best[0]! < 0) return groups.join(':');
  return `${groups.slice(0, best[0]).join(':')}::${groups.slice(best[0]! + best[1]!).join(':')}`;
}

function skOpts(m: Message, field: number): { sendBuf?: string; recvBuf?: string } {
  const opts = sub(m, field);
  return opts ? { sendBuf: countBytes(num(opts, 1)), recvBuf: countBytes(num(opts, 2)) } : {};
}

/** files.img: every open file of the checkpointed tasks by its id. */
export function readFiles(image: Buffer): Map<number, FileEntry> {
  const out = new Map<number, FileEntry>();
  for (const m of imageEntries(image)) {
    const type = fdType(num(m, 1));
    const id = num(m, 2);
    const e: FileEntry = { type, id };
    const reg = sub(m, 3);
    if (reg) e.path = bytes(reg, 6)?.toString('utf8') ?? '';
    const pipe = sub(m, 18);
    if (pipe) e.pipeId = num(pipe, 2);
    const isk = sub(m, 4);
    if (isk)
      e.socket = {
        fdType: 'INETSK',
        state: TCP_STATES[num(isk, 6)] ?? '',
        family: FAMILIES[num(isk, 3)] ?? '',
        protocol: PROTOCOLS[num(isk, 5)] ?? '',
        type: SOCK_TYPES[num(isk, 4)] ?? '',
        srcAddr: ipAddress(repeated(isk, 11)),
        srcPort: num(isk, 7),
        dstAddr: ipAddress(repeated(isk, 12)),
        dstPort: num(isk, 8),
        ...skOpts(isk, 14),
      };
    const usk = sub(m, 16);
    if (usk)
      e.socket = {
        fdType: 'UNIXSK',
        state: TCP_STATES[num(usk, 4)] ?? '',
        type: SOCK_TYPES[num(usk, 3)] ?? '',
        srcAddr: bytes(usk, 11)?.toString('utf8') ?? '',
        ino: num(usk, 2),
        peer: num(usk, 8),
        ...skOpts(usk, 10),
      };
    // packet_sock_entry { id, type, protocol, flags, ifindex, fown, opts = 7 }; netlink_sk_entry { id, ino, protocol = 3, state = 4, ..., opts = 12 }.
    const psk = sub(m, 6);
    if (psk) e.socket = { fdType: 'PACKETSK', type: SOCK_TYPES[num(psk, 3)] ?? '', protocol: PROTOCOLS[num(psk, 3)] ?? '', ...skOpts(psk, 7) };
    const nlsk = sub(m, 7);
    if (nlsk) e.socket = { fdType: 'NETLINKSK', state: TCP_STATES[num(nlsk, 4)] ?? '', protocol: PROTOCOLS[num(nlsk, 3)] ?? '', type: SOCK_TYPES[num(nlsk, 3)] ?? '', ...skOpts(nlsk, 12) };
    out.set(id, e);
  }
  return out;
}

/** What go-criu shows as a descriptor's path: a file's name, pipe[id], unix[ino (peer) name], or TYPE.id. */
export function filePath(files: Map<number, FileEntry>, id: number, type: string): string {
  const f = files.get(id);
  if (type === 'REG') return f?.path ?? 'Unknown path';
  if (type === 'PIPE') return f?.pipeId !== undefined ? `pipe[${f.pipeId}]` : 'pipe[?]';
  if (type === 'UNIXSK') return f?.socket ? `unix[${f.socket.ino} (${f.socket.peer}) ${f.socket.srcAddr}]` : 'unix[?]';
  return `${type}.${id}`;
}
