// Just enough of CRIU's image format to read a checkpoint's process tree and
// memory without CRIU: an image is a magic pair (criu/include/magic.h) then
// entries of `<u32 little-endian size><protobuf message>` (criu/images/*.proto);
// pstree.img holds pstree_entry, core-<pid>.img core_entry (task_core_entry
// comm at tc=3/6), pagemap-<pid>.img a pagemap_head then pagemap_entry
// {vaddr, nr_pages}. What checkpointctl reads through go-criu's crit.

export const PAGE_SIZE = 4096;

type Value = bigint | Buffer;
/** Field number → every value it had (varints as bigint, length-delimited as bytes). */
export type Message = Map<number, Value[]>;

export function decodeMessage(buf: Buffer): Message {
  const out: Message = new Map();
  let pos = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (pos >= buf.length) throw new Error('truncated protobuf varint');
      const b = buf[pos++]!;
      result |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return result;
      shift += 7n;
    }
  };
  while (pos < buf.length) {
    const key = varint();
    const field = Number(key >> 3n);
    const wire = Number(key & 7n);
    let value: Value;
    if (wire === 0) value = varint();
    else if (wire === 2) {
      const len = Number(varint());
      value = buf.subarray(pos, pos + len);
      pos += len;
    } else if (wire === 1) {
      value = buf.subarray(pos, pos + 8);
      pos += 8;
    } else if (wire === 5) {
      value = buf.subarray(pos, pos + 4);
      pos += 4;
    } else throw new Error(`unsupported protobuf wire type ${wire}`);
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
    if (pos + size > image.length) throw new Error('truncated CRIU image entry');
    out.push(decodeMessage(image.subarray(pos, pos + size)));
    pos += size;
  }
  return out;
}

const num = (m: Message, field: number): number => Number((m.get(field)?.[0] as bigint | undefined) ?? 0n);

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
  return imageEntries(image)
    .slice(1)
    .reduce((n, m) => n + num(m, 2) * PAGE_SIZE, 0);
}
