// The real container engine behind the simulated kubelets: podman with runc and CRIU,
// its storage private to kcr (--root/--runroot under one directory, cgroupfs, events in a
// file), shared by every simulated node so that an archive taken on one node restores on
// another (podman restores only onto the exact image ID it was taken from). Demo images
// are built locally (no pulls are possible) from Debian's busybox-static, once per storage
// directory, and reused: re-importing would give them new IDs and orphan older archives.
// Recipes and pitfalls: ../../../shared/design/REAL-BACKENDS.md (crun fails on cgroup v1
// hybrid, so runc; zstd is podman's default export, so --compress=none).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdirSync, realpathSync } from 'node:fs';
import { mkdtemp, rm, symlink, writeFile, mkdir, copyFile, chmod, readdir, readFile } from 'node:fs/promises';
import { basename, delimiter, dirname, join } from 'node:path';

export type RuntimeKind = 'simulated' | 'podman';
export type RuntimeChoice = RuntimeKind | 'auto';

/** The local image every demo counter runs, and the names pod specs use for it. */
// The tag changes with the image's content: an old storage keeps the old one for its archives.
export const COUNTER_IMAGE = 'localhost/kcr/counter:2';
export const REDIS_IMAGE = 'localhost/kcr/redis:8';
const REDIS_POD_IMAGE = 'quay.io/kcr/redis:8';

// Holds KCR_STATE_BYTES of random bytes in a shell variable (as base64: the process's own
// memory, nowhere on disk), prints a counter every KCR_TICK seconds, and on SIGUSR1 prints
// the sha256 of what it holds, so a test can compare it before a kill and after a restore.
// Its pid file is a change to its root filesystem (the archive's rootfs-diff.tar).
const COUNTER_SCRIPT = `#!/bin/sh
echo "$$" > /tmp/counter.pid
data=$(head -c "\${KCR_STATE_BYTES:-0}" /dev/urandom | base64)
trap 'echo "sha256=$(printf %s "$data" | sha256sum | cut -d" " -f1)"' USR1
echo "holding \${KCR_STATE_BYTES:-0} random bytes"
i=0
while :; do i=$((i+1)); echo "counter=$i"; sleep "\${KCR_TICK:-0.1}"; done
`;
const BUSYBOX_APPLETS = ['sh', 'sleep', 'echo', 'head', 'base64', 'sha256sum', 'cut', 'cat', 'printf', 'ls', 'true'];

export function findBinary(name: string, path = process.env.PATH ?? ''): string | undefined {
  for (const dir of [...path.split(delimiter), '/usr/sbin', '/sbin']) {
    if (!dir) continue;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The absolute paths of the shared libraries (and loader) a binary needs, as ldd lists them. */
function lddPaths(binary: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    execFile('ldd', [binary], (err, stdout, stderr) => {
      if (err) return reject(new Error(`ldd ${binary}: ${stderr || err.message}`));
      resolve([...stdout.matchAll(/(\/\S+\.so[.\d]*)\s/g)].map((m) => m[1]!));
    });
  });
}

export class PodmanError extends Error {
  constructor(
    readonly args: string[],
    readonly stderr: string,
    readonly exitCode: number | null,
  ) {
    super(
      `podman ${args.slice(0, 3).join(' ')}: ${
        stderr
          .trim()
          .split('\n')
          .filter((l) => l && !/RLIMIT_NOFILE|level=warning/.test(l))
          .join('; ') || `exit ${exitCode}`
      }`,
    );
    this.name = 'PodmanError';
  }
}

/** Why podman cannot run here, or undefined when podman, runc and criu are installed and `criu check` passes. */
export async function podmanUnavailable(): Promise<string | undefined> {
  const missing = ['podman', 'runc', 'criu', 'conmon', 'busybox'].filter((b) => !findBinary(b));
  if (missing.length) return `not installed: ${missing.join(', ')}`;
  return new Promise((resolve) => {
    execFile(findBinary('criu')!, ['check'], { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve(err ? `criu check failed: ${(stderr || stdout || err.message).trim().split('\n').slice(-1)[0]}` : undefined);
    });
  });
}

/** Picks the runtime: `auto` is podman when it can run here, else simulated; the reason says why. */
export async function chooseRuntime(choice: RuntimeChoice): Promise<{ kind: RuntimeKind; reason: string }> {
  if (choice === 'simulated') return { kind: 'simulated', reason: 'asked for' };
  const why = await podmanUnavailable();
  if (choice === 'podman') {
    if (why) throw new Error(`--runtime podman: ${why}`);
    return { kind: 'podman', reason: 'asked for' };
  }
  return why ? { kind: 'simulated', reason: `podman unavailable (${why})` } : { kind: 'podman', reason: 'podman, runc and criu found, criu check passed' };
}

export interface PodmanEngineOptions {
  /** Private storage: root/, run/, tmp/ and the image build cache live here; kept between runs. */
  dir: string;
  /** More names for the counter image (the images pod specs ask for); same image ID. */
  counterAliases?: readonly string[];
}

export class PodmanEngine {
  readonly dir: string;
  private readonly bin: string;
  private readonly children = new Set<ChildProcess>();
  private closed = false;

  private constructor(options: PodmanEngineOptions) {
    this.dir = options.dir;
    this.bin = findBinary('podman') ?? 'podman';
  }

  /** Opens the storage, removes containers a previous run left behind, and builds the demo images when missing. */
  static async open(options: PodmanEngineOptions): Promise<PodmanEngine> {
    mkdirSync(join(options.dir, 'tmp'), { recursive: true });
    const engine = new PodmanEngine(options);
    await engine.run(['rm', '--all', '--force', '--time', '0']);
    await engine.ensureCounterImage();
    for (const alias of options.counterAliases ?? []) await engine.run(['tag', COUNTER_IMAGE, alias]);
    return engine;
  }

  private env(): NodeJS.ProcessEnv {
    return { ...process.env, PODMAN_IGNORE_CGROUPSV1_WARNING: '1', TMPDIR: join(this.dir, 'tmp') };
  }

  private globalArgs(): string[] {
    return ['--root', join(this.dir, 'root'), '--runroot', join(this.dir, 'run'), '--cgroup-manager', 'cgroupfs', '--events-backend', 'file', '--runtime', 'runc'];
  }

  /** Runs one podman command; rejects with PodmanError carrying podman's own message. */
  run(args: string[], options: { timeoutMs?: number } = {}): Promise<string> {
    if (this.closed) return Promise.reject(new PodmanError(args, 'the podman engine is closed', null));
    return this.exec(args, options);
  }

  private exec(args: string[], options: { timeoutMs?: number } = {}): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile(this.bin, [...this.globalArgs(), ...args], { env: this.env(), maxBuffer: 64 * 1024 * 1024, timeout: options.timeoutMs ?? 300_000 }, (err, stdout, stderr) => {
        if (err) reject(new PodmanError(args, stderr || err.message, typeof err.code === 'number' ? err.code : null));
        else resolve(stdout);
      });
    });
  }

  /** A long-running podman command (logs -f, wait); killed on close(). */
  spawn(args: string[]): ChildProcess {
    const child = spawn(this.bin, [...this.globalArgs(), ...args], { env: this.env(), stdio: ['ignore', 'pipe', 'pipe'] });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  async imageId(ref: string): Promise<string | undefined> {
    try {
      return (await this.run(['image', 'inspect', '--format', '{{.Id}}', ref])).trim() || undefined;
    } catch {
      return undefined;
    }
  }

  /** The counter image, from busybox-static; built only when this storage has none. */
  private async ensureCounterImage(): Promise<void> {
    if (await this.imageId(COUNTER_IMAGE)) return;
    const busybox = findBinary('busybox');
    if (!busybox) throw new Error('building the counter image: busybox not found (Debian package busybox-static)');
    const root = await mkdtemp(join(this.dir, 'tmp', 'rootfs-'));
    try {
      for (const d of ['bin', 'tmp', 'proc', 'dev', 'sys', 'etc']) await mkdir(join(root, d));
      await copyFile(busybox, join(root, 'bin', 'busybox'));
      await chmod(join(root, 'bin', 'busybox'), 0o755);
      for (const a of BUSYBOX_APPLETS) await symlink('busybox', join(root, 'bin', a));
      await writeFile(join(root, 'bin', 'counter'), COUNTER_SCRIPT, { mode: 0o755 });
      await writeFile(join(root, 'etc', 'passwd'), 'root:x:0:0:root:/:/bin/sh\n');
      await writeFile(join(root, 'etc', 'group'), 'root:x:0:\n');
      await this.importRootfs(root, COUNTER_IMAGE, ['CMD ["/bin/counter"]', 'ENV PATH=/bin']);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  }

  /**
   * A Redis image from Debian's redis-server: the binary (a symlink, so copied with its
   * target's bytes), redis-cli, the libraries ldd lists and the loader. Built only when this
   * storage has none; its data lives only in memory (the demo runs it with persistence off).
   */
  async ensureRedisImage(): Promise<string> {
    if (!(await this.imageId(REDIS_IMAGE))) await this.buildRedisImage();
    // Pod specs name it as they would a registry's image (a localhost/ name is pulled over http, as the kubelet does).
    await this.run(['tag', REDIS_IMAGE, REDIS_POD_IMAGE]);
    return REDIS_POD_IMAGE;
  }

  private async buildRedisImage(): Promise<void> {
    const binaries = ['redis-server', 'redis-cli'].map((b) => {
      const path = findBinary(b);
      if (!path) throw new Error(`building the redis image: ${b} not found (Debian package redis-server)`);
      return path;
    });
    const root = await mkdtemp(join(this.dir, 'tmp', 'rootfs-'));
    try {
      for (const d of ['usr/bin', 'usr/lib/x86_64-linux-gnu', 'usr/lib64', 'tmp', 'data', 'sock', 'etc', 'proc', 'dev', 'sys']) await mkdir(join(root, d), { recursive: true });
      await symlink('usr/lib', join(root, 'lib'));
      await symlink('usr/lib64', join(root, 'lib64'));
      const libraries = new Set<string>();
      for (const b of binaries) {
        await copyFile(realpathSync(b), join(root, 'usr/bin', basename(b)));
        await chmod(join(root, 'usr/bin', basename(b)), 0o755);
        for (const lib of await lddPaths(b)) libraries.add(lib);
      }
      for (const lib of libraries) {
        const target = join(root, 'usr', lib.replace(/^\/(usr\/)?/, ''));
        await mkdir(dirname(target), { recursive: true });
        await copyFile(realpathSync(lib), target);
      }
      await writeFile(join(root, 'etc', 'passwd'), 'root:x:0:0:root:/data:/bin/false\n');
      await writeFile(join(root, 'etc', 'group'), 'root:x:0:\n');
      await this.importRootfs(root, REDIS_IMAGE, ['ENTRYPOINT ["/usr/bin/redis-server"]', 'WORKDIR /data']);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  }

  /** Tars `root` and imports it as one image (`podman import`: no registry, no pull). */
  async importRootfs(root: string, ref: string, changes: string[]): Promise<void> {
    const tarFile = `${root}.tar`;
    await new Promise<void>((resolve, reject) => {
      execFile('tar', ['-C', root, '-cf', tarFile, '.'], (err, _o, stderr) => (err ? reject(new Error(`tar of ${root}: ${stderr || err.message}`)) : resolve()));
    });
    try {
      await this.run(['import', ...changes.flatMap((c) => ['--change', c]), tarFile, ref]);
    } finally {
      await rm(tarFile, { force: true });
    }
  }

  /**
   * Stops the followers and waiters it spawned and removes every container left in its
   * storage (one created while the kubelets stopped, say), so nothing keeps the storage
   * mounted; later commands are refused.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const c of this.children) c.kill('SIGKILL');
    this.children.clear();
    await this.exec(['rm', '--all', '--force', '--time', '0']).catch(() => undefined);
    // conmon runs `podman container cleanup` when a container exits, after `rm` has returned;
    // it still writes to the storage. Then the overlay driver's own bind mount of root/overlay
    // stays behind (podman keeps it for the storage's lifetime): without releasing it the
    // directory cannot be removed, and a temporary one leaks a mount.
    await untilNoProcessUses(this.dir, 15_000);
    await new Promise<void>((done) => execFile('umount', [join(this.dir, 'root', 'overlay')], () => done()));
  }
}

/** Waits (up to timeoutMs) until no process has `dir` in its command line: podman's helpers for this storage have ended. */
async function untilNoProcessUses(dir: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const own = String(process.pid);
  for (;;) {
    const pids = await readdir('/proc').catch(() => [] as string[]);
    let busy = false;
    for (const pid of pids) {
      if (!/^\d+$/.test(pid) || pid === own) continue;
      const cmdline = await readFile(`/proc/${pid}/cmdline`, 'latin1').catch(() => '');
      if (cmdline.includes(dir)) {
        busy = true;
        break;
      }
    }
    if (!busy || Date.now() > deadline) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}
