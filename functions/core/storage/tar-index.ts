// Where each file of a tar archive lies, from its headers alone: the offset
// of its data and its size. store-artifact computes it while the archive
// streams to S3 (TarIndexer: nothing buffered but headers) and records it in
// manifest.json, so forensics (`kcr inspect`) reads just the entries it needs
// with range reads. parseTarHeader also serves a header walk by range reads
// for archives stored without an index. Formats as POSIX.1-2001 (pax, `x`
// headers with path= and size=), ustar (prefix + name) and GNU (`L` long
// names, base-256 sizes) write them.

export interface TarIndexEntry {
  name: string;
  /** Byte offset of the entry's data in the archive. */
  offset: number;
  size: number;
}

export const TAR_BLOCK = 512;

export interface TarHeader {
  name: string;
  size: number;
  /** `0`/NUL regular file, `5` directory, `2` symlink, `x` pax, `L` GNU long name, … */
  type: string;
}

function text(block: Buffer, start: number, length: number): string {
  const field = block.subarray(start, start + length);
  const end = field.indexOf(0);
  return field.subarray(0, end < 0 ? field.length : end).toString('utf8');
}

function numeric(block: Buffer, start: number, length: number): number {
  const field = block.subarray(start, start + length);
  if ((field[0] ?? 0) & 0x80) {
    // GNU base-256: big-endian, the top bit of the first byte a marker.
    let n = field[0]! & 0x7f;
    for (let i = 1; i < field.length; i++) n = n * 256 + field[i]!;
    return n;
  }
  const digits = text(block, start, length).trim();
  return digits === '' ? 0 : parseInt(digits, 8);
}

/** The header in a 512-byte block; undefined for an all-zero block (the end of the archive). */
export function parseTarHeader(block: Buffer): TarHeader | undefined {
  if (block.length < TAR_BLOCK) throw new Error(`a tar header is ${TAR_BLOCK} bytes, got ${block.length}`);
  if (block.every((b) => b === 0)) return undefined;
  const stored = numeric(block, 148, 8);
  let sum = 0;
  for (let i = 0; i < TAR_BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : block[i]!;
  if (sum !== stored) throw new Error('not a tar header (checksum mismatch)');
  const name = text(block, 0, 100);
  const prefix = text(block, 257, 6).startsWith('ustar') ? text(block, 345, 155) : '';
  return { name: prefix ? `${prefix}/${name}` : name, size: numeric(block, 124, 12), type: text(block, 156, 1) || '0' };
}

/** The records of a pax extended header (`<len> key=value\n`). */
export function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let pos = 0;
  while (pos < data.length) {
    const space = data.indexOf(0x20, pos);
    if (space < 0) break;
    const len = Number(data.subarray(pos, space).toString('ascii'));
    if (!Number.isInteger(len) || len <= 0) break;
    const record = data.subarray(space + 1, pos + len - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    pos += len;
  }
  return out;
}

export const padded = (size: number) => Math.ceil(size / TAR_BLOCK) * TAR_BLOCK;

/** The next entry's name and size as pax or GNU headers override them. */
interface Pending {
  name?: string;
  size?: number;
}

/** Applies a metadata header (pax `x`, GNU `L`) to what follows; true when `type` was one. */
function applyMeta(type: string, data: Buffer, pending: Pending): boolean {
  if (type === 'x') {
    const pax = parsePax(data);
    if (pax.path !== undefined) pending.name = pax.path;
    if (pax.size !== undefined) pending.size = Number(pax.size);
    return true;
  }
  if (type === 'L') {
    pending.name = text(data, 0, data.length);
    return true;
  }
  // A pax global header or GNU long link name: nothing kcr indexes.
  return type === 'g' || type === 'K';
}

const normalize = (name: string) => name.replace(/^(\.\/)+/, '');

/**
 * Fed the archive's bytes in order, indexes its regular files. Memory: one
 * header and any pax or long-name data (capped), never file contents.
 */
export class TarIndexer {
  private pos = 0;
  private header = Buffer.alloc(0);
  /** Bytes of the current entry's data (and padding) still to pass. */
  private skip = 0;
  private meta: { type: string; size: number; chunks: Buffer[]; got: number } | undefined;
  private pending: Pending = {};
  private ended = false;
  readonly entries: TarIndexEntry[] = [];

  constructor(private readonly maxMetaBytes = 64 * 1024) {}

  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length && !this.ended) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - at);
        if (this.meta && this.meta.got < this.meta.size) {
          const take = Math.min(n, this.meta.size - this.meta.got);
          this.meta.chunks.push(chunk.subarray(at, at + take));
          this.meta.got += take;
        }
        this.skip -= n;
        this.pos += n;
        at += n;
        if (this.skip === 0 && this.meta) {
          applyMeta(this.meta.type, Buffer.concat(this.meta.chunks), this.pending);
          this.meta = undefined;
        }
        continue;
      }
      const n = Math.min(TAR_BLOCK - this.header.length, chunk.length - at);
      this.header = Buffer.concat([this.header, chunk.subarray(at, at + n)]);
      at += n;
      this.pos += n;
      if (this.header.length < TAR_BLOCK) continue;
      const h = parseTarHeader(this.header);
      this.header = Buffer.alloc(0);
      if (!h) {
        this.ended = true;
        break;
      }
      const size = this.pending.size ?? h.size;
      if (h.type === 'x' || h.type === 'L' || h.type === 'g' || h.type === 'K') {
        if (h.size > this.maxMetaBytes) throw new Error(`a ${h.type} header of ${h.size} bytes is over the ${this.maxMetaBytes}-byte cap`);
        this.meta = { type: h.type, size: h.size, chunks: [], got: 0 };
        this.skip = padded(h.size);
        if (this.skip === 0) {
          applyMeta(h.type, Buffer.alloc(0), this.pending);
          this.meta = undefined;
        }
        continue;
      }
      if (h.type === '0' || h.type === '7') this.entries.push({ name: normalize(this.pending.name ?? h.name), offset: this.pos, size });
      this.pending = {};
      this.skip = padded(h.type === '0' || h.type === '7' ? size : h.type === '5' || h.type === '2' || h.type === '1' ? 0 : size);
    }
  }
}
