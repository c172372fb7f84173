// The CRIU image codec's decisions: which bytes of pages-N.img hold an address
// (CRIU writes PE_LAZY anonymous memory too, criu/include/pagemap.h), and the
// sockets of files.img as go-criu names them (crit/explore.go, utils.go).
import { describe, expect, it } from 'vitest';
import { countBytes, filePath, pagesRanges, readFiles, type Pagemap } from '../../functions/core/criu/image.js';

const PAGE = 4096;

/** A protobuf message from [field, varint | bytes | nested fields] pairs. */
type F = [number, number | string | F[]];
function varint(v: number): number[] {
  const out: number[] = [];
  let x = v >>> 0;
  do {
    out.push((x & 0x7f) | (x > 0x7f ? 0x80 : 0));
    x >>>= 7;
  } while (x);
  return out;
}
function msg(fields: F[]): Buffer {
  const parts: number[] = [];
  for (const [n, v] of fields) {
    if (typeof v === 'number') parts.push(...varint(n << 3), ...varint(v));
    else {
      const body = typeof v === 'string' ? Buffer.from(v) : msg(v);
      parts.push(...varint((n << 3) | 2), ...varint(body.length), ...body);
    }
  }
  return Buffer.from(parts);
}
function image(entries: F[][]): Buffer {
  const head = Buffer.alloc(8);
  return Buffer.concat([
    head,
    ...entries.flatMap((e) => {
      const m = msg(e);
      const size = Buffer.alloc(4);
      size.writeUInt32LE(m.length);
      return [size, m];
    }),
  ]);
}

describe('pagesRanges', () => {
  const pagemap: Pagemap = {
    pagesId: 1,
    entries: [
      { vaddr: 0x1000n, nrPages: 2, flags: 4 },
      { vaddr: 0x10000n, nrPages: 1, flags: 1 }, // in the parent checkpoint only: not in this file
      { vaddr: 0x20000n, nrPages: 1, flags: 6 }, // PE_PRESENT | PE_LAZY: written all the same
      { vaddr: 0x21000n, nrPages: 1, flags: 4 },
    ],
  };
  it('finds bytes in present pages, lazy ones included, skipping what is in the parent', () => {
    expect(pagesRanges(pagemap, 0x1010n, 0x1020n)).toEqual([{ offset: 0x10, length: 0x10 }]);
    expect(pagesRanges(pagemap, 0x20008n, 0x20010n)).toEqual([{ offset: 2 * PAGE + 8, length: 8 }]);
  });
  it('reads a string across two entries as two ranges', () => {
    expect(pagesRanges(pagemap, 0x20ff0n, 0x21010n)).toEqual([
      { offset: 3 * PAGE - 0x10, length: 0x10 },
      { offset: 3 * PAGE, length: 0x10 },
    ]);
  });
  it('gives up on bytes that are not in this image', () => {
    expect(pagesRanges(pagemap, 0x10000n, 0x10010n)).toBeUndefined();
    expect(pagesRanges(pagemap, 0x5000n, 0x5010n)).toBeUndefined();
  });
});

describe('readFiles', () => {
  it('decodes inet and unix sockets, pipes and files as go-criu shows them', () => {
    const opts: F[] = [
      [1, 212992],
      [2, 131072],
    ];
    const files = readFiles(
      image([
        [
          [1, 1],
          [2, 1],
          [
            3,
            [
              [1, 1],
              [6, '/data/db'],
            ],
          ],
        ],
        [
          [1, 2],
          [2, 2],
          [
            18,
            [
              [1, 2],
              [2, 4242],
            ],
          ],
        ],
        // 127.0.0.1:6379 listening: addresses are network-order bytes read as a little-endian u32.
        [
          [1, 4],
          [2, 3],
          [
            4,
            [
              [1, 3],
              [2, 77],
              [3, 2],
              [4, 1],
              [5, 6],
              [6, 10],
              [7, 6379],
              [8, 0],
              [11, 0x0100007f],
              [12, 0],
              [14, opts],
            ],
          ],
        ],
        [
          [1, 5],
          [2, 4],
          [
            16,
            [
              [1, 4],
              [2, 88],
              [3, 1],
              [4, 10],
              [8, 0],
              [10, opts],
              [11, '/sock/s'],
            ],
          ],
        ],
      ]),
    );
    expect(filePath(files, 1, 'REG')).toBe('/data/db');
    expect(filePath(files, 2, 'PIPE')).toBe('pipe[4242]');
    expect(filePath(files, 4, 'UNIXSK')).toBe('unix[88 (0) /sock/s]');
    expect(filePath(files, 3, 'INETSK')).toBe('INETSK.3');
    expect(files.get(3)?.socket).toEqual({
      fdType: 'INETSK',
      state: 'LISTEN',
      family: 'IPV4',
      protocol: 'TCP',
      type: 'STREAM',
      srcAddr: '127.0.0.1',
      srcPort: 6379,
      dstAddr: '0.0.0.0',
      dstPort: 0,
      sendBuf: '208.0 KB',
      recvBuf: '128.0 KB',
    });
    expect(files.get(4)?.socket).toMatchObject({ fdType: 'UNIXSK', state: 'LISTEN', type: 'STREAM', srcAddr: '/sock/s' });
  });

  it('prints sizes as go-criu countBytes does', () => {
    expect([countBytes(512), countBytes(2048), countBytes(3 * 1024 * 1024)]).toEqual(['512 B', '2.0 KB', '3.0 MB']);
  });
});
