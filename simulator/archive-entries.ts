// The entries of a checkpoint archive in CRI-O's layout, built in one place for
// the simulated kubelet (archive.ts) and the test and benchmark writer
// (archive-writer.ts): config.dump, spec.dump with the Kubernetes identity
// annotations, checkpoint/ (CRIU images), rootfs-diff.tar, stats-dump and
// dump.log; and the one tar writer both pack them with.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { coreImage, fdinfoImage, filesImage, fsImage, idsImage, inventoryImage, mmImage, pagemapImage, pstreeImage, statsDumpImage, type DumpStats } from './criu.js';
import { PAGE_SIZE } from './state.js';

/** Bytes produced chunk by chunk while the tar is read, so a 1 GiB entry costs no memory; the chunks add up to `size`. */
export interface StreamedContent {
  size: number;
  chunks: () => Iterable<Buffer>;
}

export type TarEntry = { name: string; dir: true } | { name: string; data: Buffer | StreamedContent } | { name: string; symlink: string };

/** The checkpointed container, as CRI-O records it. */
export interface CheckpointedContainer {
  namespace: string;
  pod: string;
  podUid: string;
  container: string;
  containerId: string;
  /** The image the container's root filesystem comes from: the spec image, or after a restore the checkpoint's base image (never the checkpoint image). */
  image: string;
  /** That image's reference with digest (`repo@sha256:…`), or its bare ID. */
  imageRef: string;
  podIP: string;
  sandboxId: string;
  restartCount: number;
  createdAt: string;
  checkpointedAt: string;
}

export interface CheckpointContent extends CheckpointedContainer {
  runtime: string;
  /** The container's command (spec.dump's process.args). */
  args: string[];
  /** checkpoint/pages-1.img. */
  pages: Buffer | StreamedContent;
  /** What rootfs-diff.tar holds: the files the container changed. */
  rootfsDiff: TarEntry[];
  /** stats-dump: CRIU's statistics, raw bytes in their place, or no stats-dump. */
  stats: DumpStats | Buffer | undefined;
  /**
   * Only what kcr's inspection and checkpointctl read (the test archives, whose tests count
   * entries); otherwise also checkpoint/pstree.img, CRIU's checkpoint/dump.log, deleted.files
   * and bind.mounts, as CRI-O writes them.
   */
  minimal?: boolean;
}

function configDump(c: CheckpointContent, crioName: string): Record<string, unknown> {
  return {
    id: c.containerId,
    name: crioName,
    rootfsImage: c.image,
    rootfsImageRef: imageId(c.imageRef),
    rootfsImageName: c.image,
    runtime: c.runtime,
    createdTime: c.createdAt,
    checkpointedTime: c.checkpointedAt,
    restoredTime: '0001-01-01T00:00:00Z',
    restored: false,
  };
}

/** `repo@sha256:…` → `sha256:…`; a bare ID stays as it is. */
function imageId(imageRef: string): string {
  return imageRef.includes('@') ? imageRef.split('@')[1]! : imageRef;
}

/** The OCI runtime spec, with the annotations CRI-O adds (checkpointctl keys on `io.container.manager` and the `io.kubernetes.cri-o.*` ones, kcr on `io.kubernetes.*`). */
function specDump(c: CheckpointContent, crioName: string): Record<string, unknown> {
  const annotations: Record<string, string> = {
    'io.container.manager': 'cri-o',
    'io.kubernetes.container.hash': randomBytes(4).toString('hex'),
    'io.kubernetes.container.name': c.container,
    'io.kubernetes.container.restartCount': String(c.restartCount),
    'io.kubernetes.container.terminationMessagePath': '/dev/termination-log',
    'io.kubernetes.container.terminationMessagePolicy': 'File',
    'io.kubernetes.cri-o.Annotations': JSON.stringify({
      'io.kubernetes.container.hash': '0',
      'io.kubernetes.container.restartCount': String(c.restartCount),
    }),
    'io.kubernetes.cri-o.ContainerID': c.containerId,
    'io.kubernetes.cri-o.ContainerType': 'container',
    'io.kubernetes.cri-o.Created': c.createdAt,
    'io.kubernetes.cri-o.IP.0': c.podIP,
    'io.kubernetes.cri-o.Image': imageId(c.imageRef),
    'io.kubernetes.cri-o.ImageName': c.image,
    'io.kubernetes.cri-o.ImageRef': c.imageRef,
    'io.kubernetes.cri-o.Labels': JSON.stringify({
      'io.kubernetes.container.name': c.container,
      'io.kubernetes.pod.name': c.pod,
      'io.kubernetes.pod.namespace': c.namespace,
      'io.kubernetes.pod.uid': c.podUid,
    }),
    'io.kubernetes.cri-o.LogPath': `/var/log/pods/${c.namespace}_${c.pod}_${c.podUid}/${c.container}/${c.restartCount}.log`,
    'io.kubernetes.cri-o.Metadata': JSON.stringify({ name: c.container, attempt: c.restartCount }),
    'io.kubernetes.cri-o.MountPoint': `/var/lib/containers/storage/overlay/${c.containerId}/merged`,
    'io.kubernetes.cri-o.Name': crioName,
    'io.kubernetes.cri-o.ResolvPath': `/run/containers/storage/overlay-containers/${c.sandboxId}/userdata/resolv.conf`,
    'io.kubernetes.cri-o.SandboxID': c.sandboxId,
    'io.kubernetes.cri-o.SandboxName': `k8s_${c.pod}_${c.namespace}_${c.podUid}_0`,
    'io.kubernetes.cri-o.SeccompProfilePath': '',
    'io.kubernetes.cri-o.Stdin': 'false',
    'io.kubernetes.cri-o.StdinOnce': 'false',
    'io.kubernetes.cri-o.TTY': 'false',
    'io.kubernetes.cri-o.Volumes': '[]',
    'io.kubernetes.pod.name': c.pod,
    'io.kubernetes.pod.namespace': c.namespace,
    'io.kubernetes.pod.terminationGracePeriod': '30',
    'io.kubernetes.pod.uid': c.podUid,
  };
  return {
    ociVersion: '1.0.2-dev',
    process: {
      user: { uid: 0, gid: 0 },
      args: c.args,
      env: specEnv(c),
      cwd: '/',
      capabilities: { bounding: ['CAP_CHOWN', 'CAP_KILL'], effective: ['CAP_CHOWN', 'CAP_KILL'], permitted: ['CAP_CHOWN', 'CAP_KILL'] },
      oomScoreAdj: 1000,
    },
    root: { path: `/var/lib/containers/storage/overlay/${c.containerId}/merged` },
    hostname: c.pod,
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    ],
    annotations,
    linux: {
      namespaces: [{ type: 'pid' }, { type: 'network', path: `/var/run/netns/${c.sandboxId}` }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
      cgroupsPath: `kubepods-besteffort-pod${c.podUid.replace(/-/g, '_')}.slice:crio:${c.containerId}`,
    },
  };
}

function dumpLog(c: CheckpointContent, nrPages: number): Buffer {
  return Buffer.from(
    [
      `(00.000000) Version: 3.19 (gitid 0)`,
      `(00.000100) Running on ${c.pod} Linux 6.1.0-28-amd64`,
      `(00.000200) Dumping processes (pid: 1 comm: ${c.container})`,
      `(00.001000) Dumping pages of pid 1: ${nrPages} pages`,
      `(00.002000) Dumping finished successfully`,
      '',
    ].join('\n'),
  );
}

const PAGES_VADDR = 0x7f0000000000n;

/**
 * The process's command line and environment as they sit in its memory (NUL-separated), in
 * one page after the state's pages: checkpointctl's --ps-tree-cmd/--ps-tree-env read them
 * there through mm-1.img's addresses and pagemap-1.img.
 */
function procPage(c: CheckpointContent, vaddr: bigint): { page: Buffer; at: ReturnType<typeof procAddresses> } {
  const argv = Buffer.from(`${c.args.join('\0')}\0`);
  const env = Buffer.from(`${specEnv(c).join('\0')}\0`);
  const page = Buffer.alloc(PAGE_SIZE);
  argv.copy(page, 0);
  env.copy(page, argv.length);
  return { page, at: procAddresses(vaddr, argv.length, env.length) };
}

function procAddresses(vaddr: bigint, argvBytes: number, envBytes: number) {
  const argStart = vaddr;
  const argEnd = argStart + BigInt(argvBytes);
  return { argStart, argEnd, envStart: argEnd, envEnd: argEnd + BigInt(envBytes) };
}

function specEnv(c: CheckpointContent): string[] {
  return ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', `HOSTNAME=${c.pod}`];
}

/** The state's pages and, after them, the page holding argv and environ. */
function withProcPage(pages: Buffer | StreamedContent, page: Buffer): Buffer | StreamedContent {
  if (Buffer.isBuffer(pages)) return Buffer.concat([pages, page]);
  return {
    size: pages.size + page.length,
    *chunks() {
      yield* pages.chunks();
      yield page;
    },
  };
}

/** The archive's entries, in the order CRI-O writes them. */
export async function checkpointEntries(c: CheckpointContent): Promise<TarEntry[]> {
  const crioName = `k8s_${c.container}_${c.pod}_${c.namespace}_${c.podUid}_${c.restartCount}`;
  const pagesSize = Buffer.isBuffer(c.pages) ? c.pages.length : c.pages.size;
  const nrPages = Math.ceil(pagesSize / PAGE_SIZE);
  const log = dumpLog(c, nrPages);
  const full = !c.minimal;
  // A full archive carries what checkpointctl inspect --all reads: the task's mm, ids, open
  // files, fs, and its argv/environ in a page of its own (after the state's pages, which
  // the simulated runtime reads back alone).
  const proc = procPage(c, PAGES_VADDR + BigInt(nrPages * PAGE_SIZE));
  const files = [
    { path: '/dev/null', mode: 0o20666 },
    { path: '/', mode: 0o40755 },
    { path: c.args[0] ?? '/', mode: 0o100755 },
  ];
  const entries: (TarEntry | false)[] = [
    { name: 'config.dump', data: Buffer.from(JSON.stringify(configDump(c, crioName), null, 2)) },
    { name: 'spec.dump', data: Buffer.from(JSON.stringify(specDump(c, crioName), null, 2)) },
    // CRI-O's tar has the directory entry itself before the CRIU images (checkpointctl looks for it).
    { name: 'checkpoint/', dir: true },
    { name: 'checkpoint/inventory.img', data: inventoryImage(Date.now() * 1000) },
    full && { name: 'checkpoint/pstree.img', data: pstreeImage() },
    { name: 'checkpoint/core-1.img', data: coreImage(c.container) },
    full && { name: 'checkpoint/mm-1.img', data: mmImage(proc.at, 3) },
    full && { name: 'checkpoint/ids-1.img', data: idsImage(1) },
    full && { name: 'checkpoint/files.img', data: filesImage(files) },
    full && {
      name: 'checkpoint/fdinfo-1.img',
      data: fdinfoImage([
        { fd: 0, fileId: 1 },
        { fd: 1, fileId: 1 },
        { fd: 2, fileId: 1 },
      ]),
    },
    full && { name: 'checkpoint/fs-1.img', data: fsImage(2, 2) },
    { name: 'checkpoint/pagemap-1.img', data: pagemapImage(PAGES_VADDR, full ? nrPages + 1 : nrPages) },
    { name: 'checkpoint/pages-1.img', data: full ? withProcPage(c.pages, proc.page) : c.pages },
    full && { name: 'checkpoint/dump.log', data: log },
    { name: 'rootfs-diff.tar', data: await tarBuffer(c.rootfsDiff, new Date(c.checkpointedAt)) },
    full && { name: 'deleted.files', data: Buffer.from('[]') },
    full && { name: 'bind.mounts', data: Buffer.from('[]') },
    c.stats !== undefined && { name: 'stats-dump', data: Buffer.isBuffer(c.stats) ? c.stats : statsDumpImage(c.stats) },
    { name: 'dump.log', data: log },
  ];
  return entries.filter((e) => e !== false);
}

async function writeStreamed(pack: tar.Pack, name: string, mtime: Date, content: StreamedContent): Promise<void> {
  const entry = pack.entry({ name, mode: 0o600, mtime, size: content.size });
  const done = new Promise<void>((resolve, reject) => {
    entry.on('finish', resolve);
    entry.on('error', reject);
  });
  // streamx's end() takes the last chunk; the loop keeps one back for it.
  let last: Buffer | undefined;
  for (const chunk of content.chunks()) {
    if (last && !entry.write(last)) await new Promise<void>((r) => entry.once('drain', () => r()));
    last = chunk;
  }
  entry.end(last ?? Buffer.alloc(0));
  await done;
}

/** Writes the entries into a tar-stream pack (without finalizing it), waiting for each to be taken. */
export async function packEntries(pack: tar.Pack, entries: TarEntry[], mtime: Date): Promise<void> {
  for (const e of entries) {
    if ('dir' in e) pack.entry({ name: e.name, type: 'directory', mode: 0o700, mtime });
    else if ('symlink' in e) pack.entry({ name: e.name, type: 'symlink', linkname: e.symlink, mtime });
    else if (Buffer.isBuffer(e.data)) {
      const data = e.data;
      await new Promise<void>((resolve, reject) => pack.entry({ name: e.name, mode: 0o600, mtime, size: data.length }, data, (err) => (err ? reject(err) : resolve())));
    } else await writeStreamed(pack, e.name, mtime, e.data);
  }
}

/** The entries as a tar read lazily (streamed ones are generated as the reader asks); failing to build them fails the stream. */
export function tarStream(entries: TarEntry[] | Promise<TarEntry[]>, mtime: Date): Readable {
  const pack = tar.pack();
  Promise.resolve(entries)
    .then((list) => packEntries(pack, list, mtime))
    .then(
      () => pack.finalize(),
      (err: unknown) => pack.destroy(err instanceof Error ? err : new Error(String(err))),
    );
  return Readable.from(pack);
}

/** The entries as one uncompressed tar in memory. */
export async function tarBuffer(entries: TarEntry[], mtime: Date): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of tarStream(entries, mtime)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
