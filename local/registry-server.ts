// Debian's docker-registry (distribution 2.8) on 127.0.0.1 with a free port:
// the real registry of the local mode, the tests and the benchmarks.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stopChild } from './child-process.js';

export interface RegistryServer {
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** `127.0.0.1:<port>`, as image references spell it. */
  host: string;
  storageDir: string;
  /** The registry's log so far (access log included). */
  log(): Promise<string>;
  stop(): Promise<void>;
}

export interface RegistryServerOptions {
  /** The docker-registry binary (Debian puts it at /usr/bin/docker-registry). */
  binary: string;
  /** An htpasswd file (bcrypt hashes) to require basic auth. */
  htpasswdPath?: string;
}

export async function startRegistryServer(options: RegistryServerOptions): Promise<RegistryServer> {
  const dir = await mkdtemp(join(tmpdir(), 'kcr-registry-'));
  const storageDir = join(dir, 'storage');
  const logPath = join(dir, 'registry.log');
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const auth = options.htpasswdPath ? `auth:\n  htpasswd:\n    realm: kcr\n    path: ${options.htpasswdPath}\n` : '';
    const config = [
      'version: 0.1',
      'log:',
      '  level: info',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${storageDir}`,
      // Deleting manifests is how tests and `kcr events replay` demos make an image disappear.
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      `  secret: ${randomBytes(16).toString('hex')}`,
      auth,
    ].join('\n');
    const configPath = join(dir, 'config.yml');
    await writeFile(configPath, config);
    const logStream = createWriteStream(logPath, { flags: 'a' });
    const child = spawn(options.binary, ['serve', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
    // Two sources into one file: neither may end it; stop() does, once the process closed both.
    child.stdout?.pipe(logStream, { end: false });
    child.stderr?.pipe(logStream, { end: false });
    const url = `http://127.0.0.1:${port}`;
    const up = await waitUntilUp(url, child);
    if (!up) {
      await stopChild(child, closed);
      logStream.end();
      if (attempt < 3) continue; // the free port was taken meanwhile
      const log = await readFile(logPath, 'utf8').catch(() => '');
      throw new Error(`docker-registry did not start on ${url}: ${log.slice(-2000)}`);
    }
    return {
      url,
      host: `127.0.0.1:${port}`,
      storageDir,
      log: () => readFile(logPath, 'utf8'),
      stop: async () => {
        await stopChild(child, closed);
        logStream.end();
        await rm(dir, { recursive: true, force: true });
      },
    };
  }
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
