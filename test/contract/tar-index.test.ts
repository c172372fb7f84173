// The tar index store-artifact records while streaming: each regular file's
// data offset and size, whatever the chunking, through pax and GNU long names;
// checked by reading the bytes at those offsets back.
import { describe, expect, it } from 'vitest';
import tar from 'tar-stream';
import { TarIndexer, parseTarHeader } from '../../functions/core/storage/tar-index.js';

async function pack(files: { name: string; content?: Buffer; type?: 'directory' | 'symlink' }[]): Promise<Buffer> {
  const p = tar.pack();
  for (const f of files) {
    if (f.type === 'directory') p.entry({ name: f.name, type: 'directory' });
    else if (f.type === 'symlink') p.entry({ name: f.name, type: 'symlink', linkname: 'target' });
    else p.entry({ name: f.name, size: f.content!.length }, f.content!);
  }
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const c of p) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('TarIndexer', () => {
  const long = `${'deep/'.repeat(30)}file.txt`;
  const files = [
    { name: 'config.dump', content: Buffer.from('{"id":"x"}') },
    { name: 'checkpoint/', type: 'directory' as const },
    { name: 'checkpoint/pages-1.img', content: Buffer.alloc(5000, 7) },
    { name: 'link', type: 'symlink' as const },
    { name: long, content: Buffer.from('long name') },
    { name: 'empty', content: Buffer.alloc(0) },
    { name: 'stats-dump', content: Buffer.from('stats') },
  ];

  it.each([1, 7, 512, 513, 65536])('indexes every regular file at its data offset, fed %d bytes at a time', async (step) => {
    const archive = await pack(files);
    const indexer = new TarIndexer();
    for (let i = 0; i < archive.length; i += step) indexer.push(archive.subarray(i, i + step));
    expect(indexer.entries.map((e) => e.name)).toEqual(['config.dump', 'checkpoint/pages-1.img', long, 'empty', 'stats-dump']);
    for (const e of indexer.entries) {
      const expected = files.find((f) => f.name === e.name)!.content!;
      expect(archive.subarray(e.offset, e.offset + e.size)).toEqual(expected);
    }
  });

  it('refuses a block that is not a tar header', () => {
    expect(() => parseTarHeader(Buffer.alloc(512, 1))).toThrow(/checksum/);
    expect(parseTarHeader(Buffer.alloc(512))).toBeUndefined();
  });
});
