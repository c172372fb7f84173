// The `podman` container runtime: every container of a pod bound to the node is a real
// podman container (runc, --network none: TCP sockets cannot be checkpointed on this
// kernel, REAL-BACKENDS.md), created with the Kubernetes identity annotations CRI-O sets
// so they land in the checkpoint's spec.dump. A checkpoint is `podman container checkpoint
// --export --compress=none --leave-running` (real CRIU images); a restore is `podman
// container restore --import`, after the checks CRI-O makes. Exits come from `podman wait`,
// log lines from `podman logs -f`; the counter workload's `counter=N` lines are its state.
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { readTar } from '../archive.js';
import { ImagePullError } from '../images.js';
import type { PodmanEngine } from '../podman/engine.js';
import { isRecord, type KubeObject } from '../types.js';
import type { ContainerRuntime, ContainerRuntimeFactory, PulledCheckpoint, RuntimeCallbacks, StartedContainer } from './container-runtime.js';
import { CreateContainerError } from './restore.js';
import type { NodeRuntime, RuntimeContainer, RuntimePod } from './runtime.js';

/** The last `counter=N` a log holds (a k8s-file log such as a checkpoint's ctr.log, or plain lines). */
export function lastCounter(log: string): number | undefined {
  const all = [...log.matchAll(/(?:^|\s)counter=(\d+)\s*$/gm)];
  const last = all.at(-1);
  return last ? Number(last[1]) : undefined;
}

/** The identity annotations CRI-O puts on a container's spec (the ones kcr and checkpointctl read). */
function identity(p: RuntimePod, c: RuntimeContainer): Record<string, string> {
  return {
    'io.kubernetes.pod.name': p.name,
    'io.kubernetes.pod.namespace': p.namespace,
    'io.kubernetes.pod.uid': p.uid,
    'io.kubernetes.container.name': c.name,
    'io.kubernetes.container.restartCount': String(c.restartCount),
    'io.kubernetes.cri-o.ContainerType': 'container',
    'io.kubernetes.cri-o.SandboxID': p.sandboxId,
    'io.kubernetes.cri-o.SandboxName': `k8s_${p.name}_${p.namespace}_${p.uid}_0`,
  };
}

/**
 * Copies a podman export to `file` with spec.dump's identity annotations set to the pod's:
 * a restored container keeps the annotations of the pod it was checkpointed in (podman
 * cannot change them on restore), while CRI-O writes the current pod's into every archive.
 */
async function withIdentity(source: string, file: string, annotations: Record<string, string>): Promise<void> {
  const extract = tar.extract();
  const pack = tar.pack();
  extract.on('entry', (header, stream, next) => {
    if (header.name.replace(/^\.\//, '') !== 'spec.dump') {
      stream.pipe(pack.entry(header, next));
      return;
    }
    const chunks: Buffer[] = [];
    stream.on('data', (b: unknown) => void chunks.push(b as Buffer));
    stream.on('end', () => {
      try {
        const spec: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        if (!isRecord(spec)) throw new Error('spec.dump is not a JSON object');
        spec.annotations = { ...(isRecord(spec.annotations) ? spec.annotations : {}), ...annotations };
        const data = Buffer.from(JSON.stringify(spec));
        pack.entry({ ...header, size: data.length }, data, next);
      } catch (err) {
        next(err instanceof Error ? err : new Error(String(err)));
      }
    });
  });
  extract.on('finish', () => pack.finalize());
  await Promise.all([pipeline(createReadStream(source), extract), pipeline(pack, createWriteStream(file, { mode: 0o600 }))]);
}

// Mounts the runtime sets up itself for every container, skipped by the check below as
// CRI-O skips them (cri-o server/container_restore.go, ignoreMounts; /etc/hosts is podman's).
const RUNTIME_MOUNTS = new Set([
  '/proc',
  '/dev',
  '/dev/pts',
  '/dev/mqueue',
  '/sys',
  '/sys/fs/cgroup',
  '/dev/shm',
  '/etc/resolv.conf',
  '/etc/hostname',
  '/etc/hosts',
  '/etc/passwd',
  '/etc/group',
  '/run/secrets',
  '/run/.containerenv',
]);

/** The bind mounts spec.dump records that are missing on this node: CRI-O refuses to restore without them. */
function missingBindMounts(spec: unknown): string[] {
  const mounts = isRecord(spec) && Array.isArray(spec.mounts) ? spec.mounts.filter(isRecord) : [];
  return mounts
    .filter((m) => m.type === 'bind' && typeof m.source === 'string' && !RUNTIME_MOUNTS.has(String(m.destination)))
    .filter((m) => !existsSync(String(m.source)))
    .map((m) => `${String(m.source)} → ${String(m.destination)}`);
}

/**
 * What of the pod's container spec becomes podman flags: command (the entrypoint), args,
 * env values, and volumeMounts of hostPath volumes as bind mounts. Other volume kinds have
 * no node-side storage in the simulator and are refused rather than silently dropped.
 */
export function containerFlags(pod: KubeObject | undefined, container: string): { flags: string[]; args: string[] } {
  const spec = isRecord(pod?.spec) ? pod.spec : {};
  const containers = Array.isArray(spec.containers) ? spec.containers.filter(isRecord) : [];
  const c = containers.find((x) => x.name === container) ?? {};
  const volumes = new Map((Array.isArray(spec.volumes) ? spec.volumes.filter(isRecord) : []).map((v) => [String(v.name), v]));
  const flags: string[] = [];
  const strings = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : []);
  const command = strings(c.command);
  if (command.length) flags.push('--entrypoint', JSON.stringify(command));
  for (const e of Array.isArray(c.env) ? c.env.filter(isRecord) : []) if (typeof e.value === 'string') flags.push('--env', `${String(e.name)}=${e.value}`);
  for (const m of Array.isArray(c.volumeMounts) ? c.volumeMounts.filter(isRecord) : []) {
    const v = volumes.get(String(m.name));
    const hostPath = isRecord(v?.hostPath) ? v.hostPath.path : undefined;
    if (typeof hostPath !== 'string') throw new CreateContainerError(`volume "${String(m.name)}" of container ${container}: only hostPath volumes are backed on the simulated nodes`);
    flags.push('--volume', `${hostPath}:${String(m.mountPath)}${m.readOnly === true ? ':ro' : ''}`);
  }
  return { flags, args: strings(c.args) };
}

export function podmanRuntimeFactory(engine: PodmanEngine): ContainerRuntimeFactory {
  return (rt, callbacks) => podmanRuntime(engine, rt, callbacks);
}

function podmanRuntime(engine: PodmanEngine, rt: NodeRuntime, callbacks: RuntimeCallbacks): ContainerRuntime {
  /** Containers this kubelet created and has not removed yet (an exited one too, until the kubelet lets it go). */
  const live = new Set<string>();
  /** Why a container was killed by a hook, so its exit reports that reason (OOMKilled) rather than Error. */
  const killReasons = new Map<string, string>();
  const removing = new Set<Promise<unknown>>();
  /** Per container, the podman command last queued (pause, unpause, rm): each waits for the one before. */
  const queue = new Map<string, Promise<unknown>>();
  const enqueue = (id: string, args: string[]): Promise<unknown> => {
    const next = (queue.get(id) ?? Promise.resolve()).then(() => engine.run(args)).catch(() => undefined);
    queue.set(id, next);
    void next.finally(() => {
      if (queue.get(id) === next) queue.delete(id);
    });
    return next;
  };

  const nameOf = (p: RuntimePod, c: RuntimeContainer): string => `k8s_${c.name}_${p.name}_${p.namespace}_${p.uid}_${c.attempt}`;

  /** Follows the container's log lines and waits for its exit, reporting both to the kubelet. */
  function watch(p: RuntimePod, c: RuntimeContainer, id: string, attempt: number, since: string): void {
    const logs = engine.spawn(['logs', '--follow', '--since', since, id]);
    let buffered = '';
    const onData = (b: Buffer) => {
      buffered += b.toString('utf8');
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        if (c.attempt !== attempt) return;
        const n = lastCounter(line);
        if (n !== undefined) c.state.counter = n;
        callbacks.log(p, c, line);
      }
    };
    logs.stdout?.on('data', onData);
    logs.stderr?.on('data', onData);
    const wait = engine.spawn(['wait', id]);
    let out = '';
    wait.stdout?.on('data', (b: Buffer) => (out += b.toString('utf8')));
    wait.once('exit', (code) => {
      const exitCode = Number(out.trim());
      if (code !== 0 || !Number.isInteger(exitCode)) return; // removed, or the engine closed
      const reason = killReasons.get(id) ?? (exitCode === 0 ? 'Completed' : 'Error');
      killReasons.delete(id);
      // Let the log follower deliver the last lines before the kubelet rotates the logs.
      setTimeout(() => callbacks.exited(p, c, attempt, exitCode, reason), 50).unref();
    });
  }

  return {
    kind: 'podman',
    async create(p, c, image): Promise<StartedContainer> {
      const imageId = await engine.imageId(image);
      if (!imageId) throw new ImagePullError(`image "${image}" is not on this node (the podman runtime pulls only checkpoint images; kcr builds its demo images locally)`);
      const annotations = Object.entries(identity(p, c)).flatMap(([k, v]) => ['--annotation', `${k}=${v}`]);
      const { flags, args } = containerFlags(rt.currentPod(p), c.name);
      const since = new Date().toISOString();
      let id: string;
      try {
        id = (
          await engine.run([
            'run',
            '--detach',
            '--name',
            nameOf(p, c),
            '--network',
            'none',
            '--log-driver',
            'k8s-file',
            '--env',
            `KCR_STATE_BYTES=${rt.opts.dataSize}`,
            '--env',
            `KCR_TICK=${(rt.opts.tickMs / 1000).toFixed(3)}`,
            ...annotations,
            ...flags,
            image,
            ...args,
          ])
        ).trim();
      } catch (err) {
        throw new CreateContainerError(err instanceof Error ? err.message : String(err));
      }
      live.add(id);
      watch(p, c, id, c.attempt, since);
      return { id, imageID: `sha256:${imageId.replace(/^sha256:/, '')}`, state: { counter: 0, data: Buffer.alloc(0), flags: {}, crashOnRestore: false } };
    },

    async restore(p, c, checkpoint: PulledCheckpoint, image): Promise<StartedContainer> {
      const files = await readTar(checkpoint.archive, new Set(['spec.dump', 'config.dump', 'ctr.log']));
      let spec: unknown;
      let config: unknown;
      try {
        spec = JSON.parse(files.get('spec.dump')?.toString('utf8') ?? 'null');
        config = JSON.parse(files.get('config.dump')?.toString('utf8') ?? 'null');
      } catch (err) {
        throw new CreateContainerError(`checkpoint image ${image}: bad spec.dump or config.dump: ${err instanceof Error ? err.message : String(err)}`);
      }
      const missing = missingBindMounts(spec);
      if (missing.length) throw new CreateContainerError(`checkpoint image ${image}: bind mounts recorded in spec.dump are missing on this node: ${missing.join(', ')}`);
      const archive = join(engine.dir, 'tmp', `restore-${randomBytes(8).toString('hex')}.tar`);
      const name = nameOf(p, c);
      const since = new Date().toISOString();
      let id: string;
      try {
        await writeFile(archive, checkpoint.archive, { mode: 0o600 });
        id = (await engine.run(['container', 'restore', '--import', archive, '--name', name])).trim();
      } catch (err) {
        // A failed restore can leave a Created container behind: it would block the retry's name.
        await engine.run(['rm', '--force', '--time', '0', name]).catch(() => undefined);
        throw new CreateContainerError(`restoring container ${c.name} from ${image}: ${err instanceof Error ? err.message : String(err)}`);
      } finally {
        await rm(archive, { force: true });
      }
      live.add(id);
      watch(p, c, id, c.attempt, since);
      const cfg = isRecord(config) ? config : {};
      const counter = lastCounter(files.get('ctr.log')?.toString('utf8') ?? '') ?? 0;
      return {
        id,
        ...(typeof cfg.rootfsImageID === 'string' ? { imageID: `sha256:${cfg.rootfsImageID}` } : {}),
        state: { counter, data: Buffer.alloc(0), flags: {}, crashOnRestore: false },
        restored: {
          ref: image,
          checkpointedAt: checkpoint.annotations['org.opencontainers.image.created'] ?? 'an unknown time',
          rootfs: { name: String(cfg.rootfsImageName ?? ''), ref: `sha256:${String(cfg.rootfsImageID ?? '')}` },
        },
      };
    },

    async checkpoint(p, c, file): Promise<void> {
      const exported = join(engine.dir, 'tmp', `checkpoint-${randomBytes(8).toString('hex')}.tar`);
      try {
        await engine.run(['container', 'checkpoint', '--export', exported, '--compress', 'none', '--leave-running', c.id]);
        if (c.restoredFrom) await withIdentity(exported, file, identity(p, c));
        else await rename(exported, file);
      } finally {
        await rm(exported, { force: true });
      }
    },

    kill(_p, c, _exitCode, reason): void {
      killReasons.set(c.id, reason);
      // SIGKILL, as the OOM killer or a crash would; the real exit code comes from `podman wait`.
      void engine.run(['kill', '--signal', 'KILL', c.id]).catch((err: unknown) => console.error(`podman runtime: kill ${c.id}:`, err));
    },

    nodeDown(down): void {
      // A node that cannot be reached runs nothing anyone sees: its containers are frozen (cgroup freezer) until it is back.
      for (const id of live) void enqueue(id, [down ? 'pause' : 'unpause', id]);
    },

    remove(c): void {
      if (!c.id || !live.has(c.id)) return;
      live.delete(c.id);
      const removed = enqueue(c.id, ['rm', '--force', '--time', '0', c.id]);
      removing.add(removed);
      void removed.finally(() => removing.delete(removed));
    },

    async close(): Promise<void> {
      const ids = [...live];
      live.clear();
      await Promise.all([...removing, ...ids.map((id) => enqueue(id, ['rm', '--force', '--time', '0', id]))]);
    },
  };
}
