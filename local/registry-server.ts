// Debian's docker-registry (distribution 2.8) on 127.0.0.1 with a free port:
// the real registry of the local mode, the tests and the benchmarks; and its
// garbage collection. Deleting a manifest frees no disk space: only
// `garbage-collect` deletes the blobs no manifest references any more, and it
// needs the registry stopped (or read-only), so a collection stops it,
// collects, and starts it again on the same port. Clients see connections
// refused meanwhile, which build-image answers with 503, and the broker retries.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stopChild } from './child-process.js';

export interface RegistryServer {
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** `127.0.0.1:<port>`, as image references spell it. */
  host: string;
  storageDir: string;
  /** The registry's log so far (access log and garbage collections included). */
  log(): Promise<string>;
  /**
   * Stops the registry, runs `garbage-collect`, and starts it again on the same
   * port. One at a time; it is started again even when the collection failed.
   */
  collectGarbage(): Promise<void>;
  stop(): Promise<void>;
}

interface RegistryServerOptions {
  /** The docker-registry binary (Debian puts it at /usr/bin/docker-registry). */
  binary: string;
  /** An htpasswd file (bcrypt hashes) to require basic auth. */
  htpasswdPath?: string;
  /** Holds the storage, config and log, and is kept on stop (the local mode's state directory); default a temporary directory, removed on stop. */
  dir?: string;
}

/** Starts on the same port after a collection: a few tries, in case the port is briefly still held. */
const RESTART_ATTEMPTS = 5;
const RESTART_PAUSE_MS = 200;

export async function startRegistryServer(options: RegistryServerOptions): Promise<RegistryServer> {
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'kcr-registry-')));
  await mkdir(dir, { recursive: true });
  const storageDir = join(dir, 'storage');
  const logPath = join(dir, 'registry.log');
  const configPath = join(dir, 'config.yml');
  const secret = randomBytes(16).toString('hex');
  // One log for every run of the registry and every collection: stop() ends it.
  const logStream = createWriteStream(logPath, { flags: 'a' });

  const launch = async (port: number): Promise<Running | undefined> => {
    const auth = options.htpasswdPath ? `auth:\n  htpasswd:\n    realm: kcr\n    path: ${options.htpasswdPath}\n` : '';
    const config = [
      'version: 0.1',
      'log:',
      '  level: info',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${storageDir}`,
      // Retention deletes manifests; tests and `kcr events replay` demos make an image disappear.
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      `  secret: ${secret}`,
      auth,
    ].join('\n');
    await writeFile(configPath, config);
    const child = spawn(options.binary, ['serve', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
    pipeInto(child, logStream);
    if (await waitUntilUp(`http://127.0.0.1:${port}`, child)) return { child, closed };
    await stopChild(child, closed);
    return undefined;
  };

  let current: Running | undefined;
  let port = 0;
  for (let attempt = 0; !current; attempt++) {
    port = await freePort();
    current = await launch(port);
    // The free port was taken meanwhile: another one.
    if (!current && attempt >= 3) {
      logStream.end();
      throw new Error(`docker-registry did not start on 127.0.0.1:${port}: ${await logTail(logPath)}`);
    }
  }
  const url = `http://127.0.0.1:${port}`;
  let stopped = false;
  // Collections and the final stop, in order: a stop waits for a collection in flight.
  let queue: Promise<unknown> = Promise.resolve();
  const serially = <T>(work: () => Promise<T>): Promise<T> => {
    const next = queue.then(work);
    queue = next.catch(() => undefined);
    return next;
  };

  const collect = async (): Promise<void> => {
    if (stopped) throw new Error(`docker-registry on ${url} is stopped: no garbage collection`);
    if (current) await stopChild(current.child, current.closed);
    current = undefined;
    let failure: Error | undefined;
    try {
      const repositories = join(storageDir, 'docker', 'registry', 'v2', 'repositories');
      // Nothing pushed yet: nothing to collect (garbage-collect fails without that directory).
      if (await isDirectory(repositories)) {
        await removeUploads(repositories);
        await runGarbageCollect(options.binary, configPath, logStream);
      }
    } catch (err) {
      failure = err instanceof Error ? err : new Error(String(err));
    }
    for (let attempt = 1; !current; attempt++) {
      current = await launch(port);
      if (!current && attempt >= RESTART_ATTEMPTS) throw new Error(`docker-registry did not start again on ${url} after garbage collection: ${await logTail(logPath)}`, { cause: failure });
      if (!current) await sleep(RESTART_PAUSE_MS);
    }
    if (failure) throw new Error(`garbage collection of docker-registry on ${url} failed (the registry serves again): ${failure.message}`, { cause: failure });
  };

  return {
    url,
    host: `127.0.0.1:${port}`,
    storageDir,
    log: () => readFile(logPath, 'utf8'),
    collectGarbage: () => serially(collect),
    stop: () =>
      serially(async () => {
        if (stopped) return;
        stopped = true;
        if (current) await stopChild(current.child, current.closed);
        await new Promise((resolve) => logStream.end(resolve));
        if (!options.dir) await rm(dir, { recursive: true, force: true });
      }),
  };
}

interface Running {
  child: ChildProcess;
  closed: Promise<void>;
}

/**
 * `docker-registry garbage-collect <config>`: deletes the blobs that no
 * manifest references. Without --delete-untagged: distribution 2.8 would
 * then also delete the platform manifest of every checkpoint image (only the
 * index is tagged) and its layer, making every checkpoint unpullable
 * (distribution/distribution#3004). Retention deletes the manifests itself.
 */
async function runGarbageCollect(binary: string, configPath: string, log: WriteStream): Promise<void> {
  log.write(`--- garbage-collect ${new Date().toISOString()}\n`);
  const child = spawn(binary, ['garbage-collect', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let tail = '';
  const keepTail = (chunk: Buffer) => (tail = (tail + chunk.toString('utf8')).slice(-2000));
  child.stdout?.on('data', keepTail);
  child.stderr?.on('data', keepTail);
  pipeInto(child, log);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  if (code !== 0) throw new Error(`${binary} garbage-collect ${configPath} exited with ${code}: ${tail.trim()}`);
}

/**
 * Uploads the stop cut off: build-image never resumes one (a retry pushes
 * anew), and garbage-collect leaves them, so their partial data would pile up
 * with every collection.
 */
async function removeUploads(repositories: string): Promise<void> {
  const paths = await readdir(repositories, { recursive: true });
  for (const path of paths.filter((p) => basename(p) === '_uploads')) await rm(join(repositories, path), { recursive: true, force: true });
}

async function isDirectory(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isDirectory() ?? false;
}

/** Two sources into one file: neither may end it. */
function pipeInto(child: ChildProcess, log: WriteStream): void {
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
}

async function logTail(logPath: string): Promise<string> {
  return (await readFile(logPath, 'utf8').catch(() => '')).slice(-2000);
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function waitUntilUp(url: string, child: ChildProcess): Promise<boolean> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) return false;
    try {
      const res = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status === 200 || res.status === 401) return true;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}
