// The kubelet checkpoint archive in CRI-O's layout (uncompressed tar), and reading one back.

import { randomBytes } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { coreImage, inventoryImage, pagemapImage, pstreeImage, statsDumpImage } from './criu.js';
import { encodePages, PAGE_SIZE, type ContainerState } from './state.js';

interface ArchiveInput {
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
  state: ContainerState;
}

async function packTar(entries: { name: string; data?: Buffer; dir?: boolean }[], mtime: Date): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<Buffer>((resolve, reject) => {
    pack.on('data', (c: unknown) => {
      chunks.push(c as Buffer);
    });
    pack.on('end', () => resolve(Buffer.concat(chunks)));
    pack.on('error', reject);
  });
  for (const e of entries) {
    if (e.dir) pack.entry({ name: e.name, type: 'directory', mode: 0o700, mtime });
    else pack.entry({ name: e.name, mode: 0o600, mtime, size: e.data!.length }, e.data!);
  }
  pack.finalize();
  return done;
}

/** Builds the archive CRI-O writes for `crictl checkpoint` / the kubelet checkpoint API. */
export async function buildCheckpointArchive(a: ArchiveInput): Promise<Buffer> {
  const mtime = new Date(a.checkpointedAt);
  const crioName = `k8s_${a.container}_${a.pod}_${a.namespace}_${a.podUid}_${a.restartCount}`;
  const config = {
    id: a.containerId,
    name: crioName,
    rootfsImage: a.image,
    rootfsImageRef: a.imageRef.includes('@') ? a.imageRef.split('@')[1] : a.imageRef,
    rootfsImageName: a.image,
    runtime: 'crun',
    createdTime: a.createdAt,
    checkpointedTime: a.checkpointedAt,
    restoredTime: '0001-01-01T00:00:00Z',
    restored: false,
  };
  const annotations: Record<string, string> = {
    'io.container.manager': 'cri-o',
    'io.kubernetes.container.hash': randomBytes(4).toString('hex'),
    'io.kubernetes.container.name': a.container,
    'io.kubernetes.container.restartCount': String(a.restartCount),
    'io.kubernetes.container.terminationMessagePath': '/dev/termination-log',
    'io.kubernetes.container.terminationMessagePolicy': 'File',
    'io.kubernetes.cri-o.Annotations': JSON.stringify({
      'io.kubernetes.container.hash': '0',
      'io.kubernetes.container.restartCount': String(a.restartCount),
    }),
    'io.kubernetes.cri-o.ContainerID': a.containerId,
    'io.kubernetes.cri-o.ContainerType': 'container',
    'io.kubernetes.cri-o.Created': a.createdAt,
    'io.kubernetes.cri-o.IP.0': a.podIP,
    'io.kubernetes.cri-o.Image': a.imageRef.includes('@') ? a.imageRef.split('@')[1]! : a.imageRef,
    'io.kubernetes.cri-o.ImageName': a.image,
    'io.kubernetes.cri-o.ImageRef': a.imageRef,
    'io.kubernetes.cri-o.Labels': JSON.stringify({
      'io.kubernetes.container.name': a.container,
      'io.kubernetes.pod.name': a.pod,
      'io.kubernetes.pod.namespace': a.namespace,
      'io.kubernetes.pod.uid': a.podUid,
    }),
    'io.kubernetes.cri-o.LogPath': `/var/log/pods/${a.namespace}_${a.pod}_${a.podUid}/${a.container}/${a.restartCount}.log`,
    'io.kubernetes.cri-o.Metadata': JSON.stringify({ name: a.container, attempt: a.restartCount }),
    'io.kubernetes.cri-o.MountPoint': `/var/lib/containers/storage/overlay/${a.containerId}/merged`,
    'io.kubernetes.cri-o.Name': crioName,
    'io.kubernetes.cri-o.ResolvPath': `/run/containers/storage/overlay-containers/${a.sandboxId}/userdata/resolv.conf`,
    'io.kubernetes.cri-o.SandboxID': a.sandboxId,
    'io.kubernetes.cri-o.SandboxName': `k8s_${a.pod}_${a.namespace}_${a.podUid}_0`,
    'io.kubernetes.cri-o.SeccompProfilePath': '',
    'io.kubernetes.cri-o.Stdin': 'false',
    'io.kubernetes.cri-o.StdinOnce': 'false',
    'io.kubernetes.cri-o.TTY': 'false',
    'io.kubernetes.cri-o.Volumes': '[]',
    'io.kubernetes.pod.name': a.pod,
    'io.kubernetes.pod.namespace': a.namespace,
    'io.kubernetes.pod.terminationGracePeriod': '30',
    'io.kubernetes.pod.uid': a.podUid,
  };
  const spec = {
    ociVersion: '1.0.2-dev',
    process: {
      user: { uid: 0, gid: 0 },
      args: ['/counter'],
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', `HOSTNAME=${a.pod}`],
      cwd: '/',
      capabilities: { bounding: ['CAP_CHOWN', 'CAP_KILL'], effective: ['CAP_CHOWN', 'CAP_KILL'], permitted: ['CAP_CHOWN', 'CAP_KILL'] },
      oomScoreAdj: 1000,
    },
    root: { path: `/var/lib/containers/storage/overlay/${a.containerId}/merged` },
    hostname: a.pod,
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    ],
    annotations,
    linux: {
      namespaces: [{ type: 'pid' }, { type: 'network', path: `/var/run/netns/${a.sandboxId}` }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
      cgroupsPath: `kubepods-besteffort-pod${a.podUid.replace(/-/g, '_')}.slice:crio:${a.containerId}`,
    },
  };
  const pages = encodePages(a.state, { namespace: a.namespace, pod: a.pod, container: a.container, checkpointedAt: a.checkpointedAt });
  const nrPages = pages.length / PAGE_SIZE;
  const rootfsDiff = await packTar(
    [
      { name: 'tmp/', dir: true },
      { name: 'tmp/kcr-sim', data: Buffer.from(`counter=${a.state.counter}\n`) },
    ],
    mtime,
  );
  const dumpLog = [
    `(00.000000) Version: 3.19 (gitid 0)`,
    `(00.000100) Running on ${a.pod} Linux 6.1.0-28-amd64`,
    `(00.000200) Dumping processes (pid: 1 comm: ${a.container})`,
    `(00.001000) Dumping pages of pid 1: ${nrPages} pages`,
    `(00.002000) Dumping finished successfully`,
    '',
  ].join('\n');
  return packTar(
    [
      { name: 'config.dump', data: Buffer.from(JSON.stringify(config, null, 2)) },
      { name: 'spec.dump', data: Buffer.from(JSON.stringify(spec, null, 2)) },
      { name: 'checkpoint/', dir: true },
      { name: 'checkpoint/inventory.img', data: inventoryImage(Date.now() * 1000) },
      { name: 'checkpoint/pstree.img', data: pstreeImage() },
      { name: 'checkpoint/core-1.img', data: coreImage(a.container) },
      { name: 'checkpoint/pagemap-1.img', data: pagemapImage(0x7f0000000000n, nrPages) },
      { name: 'checkpoint/pages-1.img', data: pages },
      { name: 'checkpoint/dump.log', data: Buffer.from(dumpLog) },
      { name: 'rootfs-diff.tar', data: rootfsDiff },
      { name: 'deleted.files', data: Buffer.from('[]') },
      { name: 'bind.mounts', data: Buffer.from('[]') },
      {
        name: 'stats-dump',
        data: statsDumpImage({
          freezingTimeUs: 120,
          frozenTimeUs: 4200,
          memdumpTimeUs: 900,
          memwriteTimeUs: 700,
          pagesScanned: nrPages + 16,
          pagesWritten: nrPages,
        }),
      },
      { name: 'dump.log', data: Buffer.from(dumpLog) },
    ],
    mtime,
  );
}

/** Reads every regular file of a (possibly gzipped) tar into memory; names lose a leading `./`. */
export async function readTar(buf: Buffer): Promise<Map<string, Buffer>> {
  const data = buf.length > 2 && buf[0] === 0x1f && buf[1] === 0x8b ? gunzipSync(buf) : buf;
  const extract = tar.extract();
  const files = new Map<string, Buffer>();
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => {
        chunks.push(c as Buffer);
      });
      stream.on('end', () => {
        if (header.type === 'file') files.set(header.name.replace(/^\.\//, ''), Buffer.concat(chunks));
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
