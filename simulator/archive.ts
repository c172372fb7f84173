// The kubelet checkpoint archive in CRI-O's layout (uncompressed tar), and reading one back.

import { gunzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { checkpointEntries, tarBuffer, type CheckpointedContainer } from './archive-entries.js';
import { encodePages, PAGE_SIZE, type ContainerState } from './state.js';

interface ArchiveInput extends CheckpointedContainer {
  state: ContainerState;
}

/** Builds the archive CRI-O writes for `crictl checkpoint` / the kubelet checkpoint API. */
export async function buildCheckpointArchive(a: ArchiveInput): Promise<Buffer> {
  const { state, ...container } = a;
  const pages = encodePages(state, { namespace: a.namespace, pod: a.pod, container: a.container, checkpointedAt: a.checkpointedAt });
  const nrPages = pages.length / PAGE_SIZE;
  const entries = await checkpointEntries({
    ...container,
    runtime: 'crun',
    args: ['/counter'],
    pages,
    rootfsDiff: [
      { name: 'tmp/', dir: true },
      { name: 'tmp/kcr-sim', data: Buffer.from(`counter=${state.counter}\n`) },
    ],
    stats: {
      freezing_time: 120,
      frozen_time: 4200,
      memdump_time: 900,
      memwrite_time: 700,
      pages_scanned: nrPages + 16,
      pages_skipped_parent: 0,
      pages_written: nrPages,
      pages_lazy: 0,
    },
  });
  return tarBuffer(entries, new Date(a.checkpointedAt));
}

/** Reads every regular file (or only those named in `only`) of a (possibly gzipped) tar into memory; names lose a leading `./`. */
export async function readTar(buf: Buffer, only?: ReadonlySet<string>): Promise<Map<string, Buffer>> {
  const data = buf.length > 2 && buf[0] === 0x1f && buf[1] === 0x8b ? gunzipSync(buf) : buf;
  const extract = tar.extract();
  const files = new Map<string, Buffer>();
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, stream, next) => {
      const chunks: Buffer[] = [];
      const keep = !only || only.has(header.name.replace(/^\.\//, ''));
      stream.on('data', (c: unknown) => {
        if (keep) chunks.push(c as Buffer);
      });
      stream.on('end', () => {
        const name = header.name.replace(/^\.\//, '');
        if (header.type === 'file' && (!only || only.has(name))) files.set(name, Buffer.concat(chunks));
        next();
      });
      stream.on('error', reject);
    });
    extract.on('finish', () => resolve());
    extract.on('error', reject);
  });
  extract.end(data);
  await done;
  return files;
}
