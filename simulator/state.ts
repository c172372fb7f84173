// The state of a simulated container and its serialisation into checkpoint/pages-1.img.
//
// pages-1.img format (CRIU keeps raw memory pages here, with no header of its own, so the
// simulator stores its "memory" in a small self-describing layout):
//   bytes 0..7    ASCII magic "KCRSIM01"
//   bytes 8..11   uint32 little-endian N = length of the JSON header
//   bytes 12..    N bytes of UTF-8 JSON: PagesHeader (below)
//   then          header.dataLength bytes: the container's data block
//   then          zero padding to a multiple of 4096 (the page size)

import { createHash } from 'node:crypto';

export const PAGES_MAGIC = 'KCRSIM01';
export const PAGE_SIZE = 4096;

export type FlagValue = string | number | boolean;

export interface ContainerState {
  counter: number;
  data: Buffer;
  flags: Record<string, FlagValue>;
  /** A container restored from a checkpoint carrying this flag exits 1 right after starting. */
  crashOnRestore: boolean;
}

interface PagesHeader {
  version: 1;
  namespace: string;
  pod: string;
  container: string;
  counter: number;
  flags: Record<string, FlagValue>;
  crashOnRestore: boolean;
  dataLength: number;
  dataSha256: string;
  checkpointedAt: string;
}

/** Deterministic bytes from a seed (xorshift32), so fresh containers are reproducible. */
export function seededBytes(seed: string, size: number): Buffer {
  const h = createHash('sha256').update(seed).digest();
  let x = h.readUInt32LE(0) || 0x9e3779b9;
  const out = Buffer.alloc(size);
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    const rem = Math.min(4, size - i);
    for (let j = 0; j < rem; j++) out[i + j] = (x >>> (8 * j)) & 0xff;
  }
  return out;
}

/** One tick of a running container: the counter goes up and is stamped into the data block. */
export function tick(state: ContainerState): void {
  state.counter += 1;
  if (state.data.length >= 4) {
    const off = ((state.counter * 4) % state.data.length) & ~3;
    if (off + 4 <= state.data.length) state.data.writeUInt32LE(state.counter >>> 0, off);
  }
}

export function encodePages(state: ContainerState, ids: { namespace: string; pod: string; container: string; checkpointedAt: string }): Buffer {
  const header: PagesHeader = {
    version: 1,
    ...ids,
    counter: state.counter,
    flags: state.flags,
    crashOnRestore: state.crashOnRestore,
    dataLength: state.data.length,
    dataSha256: createHash('sha256').update(state.data).digest('hex'),
  };
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32LE(json.length);
  const body = Buffer.concat([Buffer.from(PAGES_MAGIC, 'ascii'), len, json, state.data]);
  const padded = Math.ceil(body.length / PAGE_SIZE) * PAGE_SIZE;
  return Buffer.concat([body, Buffer.alloc(padded - body.length)]);
}

export function decodePages(buf: Buffer): { header: PagesHeader; state: ContainerState } {
  if (buf.length < 12 || buf.subarray(0, 8).toString('ascii') !== PAGES_MAGIC) {
    throw new Error(`pages image: bad magic (expected ${PAGES_MAGIC})`);
  }
  const n = buf.readUInt32LE(8);
  if (12 + n > buf.length) throw new Error(`pages image: header length ${n} exceeds image size ${buf.length}`);
  const header = JSON.parse(buf.subarray(12, 12 + n).toString('utf8')) as PagesHeader;
  if (header.version !== 1) throw new Error(`pages image: unsupported version ${String(header.version)}`);
  const start = 12 + n;
  const data = Buffer.from(buf.subarray(start, start + header.dataLength));
  if (data.length !== header.dataLength) throw new Error(`pages image: truncated data (${data.length}/${header.dataLength} bytes)`);
  const sha = createHash('sha256').update(data).digest('hex');
  if (sha !== header.dataSha256) throw new Error(`pages image: data sha256 mismatch (${sha} != ${header.dataSha256})`);
  return {
    header,
    state: { counter: header.counter, data, flags: header.flags ?? {}, crashOnRestore: header.crashOnRestore === true },
  };
}
