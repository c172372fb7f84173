// OpenStack Swift with its s3api middleware on loopback: a production object
// store for the local mode, the tests and the benchmarks (Debian trixie's
// swift-proxy, swift-account, swift-container, swift-object). Four servers,
// each in one process (workers = 0) with a private config under the given
// directory; the rings are built once with swift-ring-builder and reused while
// their ports are free. Each server runs under `setpriv --pdeathsig KILL`, so
// the kernel ends it should this process die without stopping it: Swift makes
// every server a session leader (setsid), out of reach of our process group.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, type WriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { findBinary } from './binaries.js';
import { stopChild } from './child-process.js';
import { sigV4Headers } from './sigv4.js';

const run = promisify(execFile);

/** What apt installs the servers from (trixie's Swift 2.35 also takes aws-chunked uploads). */
export const SWIFT_PACKAGES = ['swift-proxy', 'swift-account', 'swift-container', 'swift-object'] as const;
const SERVERS = ['account', 'container', 'object', 'proxy'] as const;
type Server = (typeof SERVERS)[number];
type RingServer = Exclude<Server, 'proxy'>;
const RING_SERVERS: readonly RingServer[] = ['account', 'container', 'object'];
const binaryOf = (server: Server) => `swift-${server}-server`;

/** tempauth's user `test:tester` with key `testing123`, an admin of its account (AUTH_test). */
export const SWIFT_S3_CREDENTIALS = { accessKey: 'test:tester', secretKey: 'testing123' } as const;
const REGION = 'us-east-1';
/** Opens each start's lines in a server's log. */
const START_MARK = '--- kcr starts this server';
/** Seconds of CPU for four Python servers; far longer on a loaded machine. */
const START_TIMEOUT_MS = 150_000;
/** Swift reads and writes in chunks of this size; its default 64 KiB costs CPU per request. */
const CHUNK = 1024 * 1024;

export interface SwiftS3Options {
  /** Config, devices and logs (default: a new temp directory, removed on stop); kept on stop. */
  dir?: string;
  /** Where the rings are built and kept for the next start (default: under `dir`); one Swift at a time per directory. */
  ringsDir?: string;
}

export interface SwiftS3 {
  endpoint: string;
  accessKey: string;
  secretKey: string;
  region: string;
  dir: string;
  /** The process ids of the four servers. */
  pids: number[];
  stop(): Promise<void>;
}

/** Whether the four servers and swift-ring-builder are on PATH. */
export function swiftInstalled(): boolean {
  return missingSwiftBinaries().length === 0;
}

function missingSwiftBinaries(): string[] {
  return [...SERVERS.map(binaryOf), 'swift-ring-builder', 'setpriv'].filter((b) => !findBinary(b));
}

export async function startSwiftS3(options: SwiftS3Options = {}): Promise<SwiftS3> {
  const missing = missingSwiftBinaries();
  if (missing.length > 0) {
    throw new Error(`Swift is not installed (missing ${missing.join(', ')}): apt-get install -y --no-install-recommends -t trixie ${SWIFT_PACKAGES.join(' ')}`);
  }
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'kcr-swift-')));
  const swiftDir = options.ringsDir ?? join(dir, 'rings');
  const configDir = join(dir, 'etc');
  const devices = join(dir, 'devices');
  const logDir = join(dir, 'logs');
  await Promise.all([swiftDir, configDir, join(devices, 'd1'), logDir].map((d) => mkdir(d, { recursive: true })));
  const user = userInfo().username;
  const configPath = (server: Server) => join(configDir, `${server}-server.conf`);
  const removeOwnDir = async () => {
    if (ownDir) await rm(dir, { recursive: true, force: true });
  };
  // A port of the kept rings taken between the check and the bind: new ports, rings built again.
  for (let attempt = 1; ; attempt++) {
    const ports = await ringPorts(swiftDir, attempt > 1);
    for (const server of SERVERS) await writeFile(configPath(server), serverConfig(server, { port: ports[server], user, swiftDir, devices }));
    const running: Running[] = [];
    const stopAll = () => Promise.all(running.map((r) => r.stop()));
    try {
      for (const server of SERVERS) running.push(launch(server, configPath(server), join(logDir, `${server}.log`)));
      const endpoint = `http://127.0.0.1:${ports.proxy}`;
      await waitUntilReady(endpoint, running, logDir);
      const stop = async () => {
        await stopAll();
        await removeOwnDir();
      };
      return { endpoint, ...SWIFT_S3_CREDENTIALS, region: REGION, dir, pids: running.map((r) => r.child.pid ?? 0), stop };
    } catch (err) {
      await stopAll();
      if (err instanceof PortTaken && attempt < 3) continue;
      await removeOwnDir();
      throw err;
    }
  }
}

class PortTaken extends Error {}

interface Running {
  server: Server;
  child: ChildProcess;
  stop(): Promise<void>;
}

function launch(server: Server, configPath: string, logPath: string): Running {
  const log = createWriteStream(logPath, { flags: 'a' });
  log.write(`${START_MARK} ${new Date().toISOString()}\n`);
  // -v: the servers log to stderr (and so to the log file) besides syslog, which may not exist here.
  const child = spawn('setpriv', ['--pdeathsig', 'KILL', binaryOf(server), configPath, '-v'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  child.once('error', (err) => log.write(`spawn failed: ${err.message}\n`));
  pipeInto(child, log);
  return {
    server,
    child,
    stop: async () => {
      await stopChild(child, closed);
      await new Promise((resolve) => log.end(resolve));
    },
  };
}

function pipeInto(child: ChildProcess, log: WriteStream): void {
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
}

interface ConfigValues {
  port: number;
  user: string;
  swiftDir: string;
  devices: string;
}

/** One server's paste config: the settings REAL-BACKENDS.md found to matter. */
export function serverConfig(server: Server, v: ConfigValues): string {
  const common = [
    '[DEFAULT]',
    'bind_ip = 127.0.0.1',
    `bind_port = ${v.port}`,
    // One process per server: nothing forked that could outlive a stop.
    'workers = 0',
    // Else Swift drops privileges to the user `swift` and fails with EACCES on our files.
    `user = ${v.user}`,
    `swift_dir = ${v.swiftDir}`,
    `devices = ${v.devices}`,
    'mount_check = false',
    // A port taken is an error at once (default: 30 s of retries), and the launcher picks new ones.
    'bind_timeout = 1',
    `log_name = ${server}-server`,
    'log_level = WARNING',
    '',
  ];
  if (server === 'proxy') {
    return [
      ...common,
      // Requests are served one at a time per greenthread; eventlet needs no more for loopback.
      '[pipeline:main]',
      'pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth copy slo dlo versioned_writes proxy-logging proxy-server',
      '',
      '[app:proxy-server]',
      'use = egg:swift#proxy',
      'account_autocreate = true',
      `object_chunk_size = ${CHUNK}`,
      `client_chunk_size = ${CHUNK}`,
      '',
      '[filter:s3api]',
      'use = egg:swift#s3api',
      `location = ${REGION}`,
      // S3 lists at most 1,000 keys a page, as kcr's paging expects.
      'max_bucket_listing = 1000',
      '',
      '[filter:tempauth]',
      'use = egg:swift#tempauth',
      `user_test_tester = ${SWIFT_S3_CREDENTIALS.secretKey} .admin`,
      '',
      // Deleting a multipart object deletes its segments now: no object-expirer runs here.
      '[filter:slo]',
      'use = egg:swift#slo',
      'allow_async_delete = false',
      '',
      ...['catch_errors', 'gatekeeper', 'healthcheck', 'proxy-logging', 'listing_formats', 'copy', 'dlo', 'versioned_writes'].flatMap((f) => [
        `[filter:${f}]`,
        `use = egg:swift#${f.replace('-', '_')}`,
        '',
      ]),
      // No memcached: the proxy only logs that it cannot reach one.
      '[filter:cache]',
      'use = egg:swift#memcache',
      'memcache_servers = 127.0.0.1:1',
      '',
    ].join('\n');
  }
  return [
    ...common,
    '[pipeline:main]',
    `pipeline = ${server}-server`,
    '',
    `[app:${server}-server]`,
    `use = egg:swift#${server}`,
    ...(server === 'object' ? [`disk_chunk_size = ${CHUNK}`, `network_chunk_size = ${CHUNK}`] : []),
    '',
    `[${server}-replicator]`,
    '',
    `[${server}-auditor]`,
    '',
  ].join('\n');
}

type Ports = Record<Server, number>;

/**
 * The rings name the ports of the account, container and object servers, so
 * they are kept with the ports they were built for: reused when those (and a
 * proxy port) are free, else built again (a few seconds of swift-ring-builder).
 */
async function ringPorts(swiftDir: string, fresh: boolean): Promise<Ports> {
  const portsPath = join(swiftDir, 'ports.json');
  const saved = await readFile(portsPath, 'utf8').then(
    (text) => JSON.parse(text) as Ports,
    () => undefined,
  );
  const ringsThere = RING_SERVERS.every((s) => existsSync(join(swiftDir, `${s}.ring.gz`)));
  if (!fresh && saved && ringsThere && (await allFree(SERVERS.map((s) => saved[s])))) return saved;
  const ports = await freePorts();
  await Promise.all(RING_SERVERS.map((server) => buildRing(swiftDir, server, ports[server])));
  await writeFile(portsPath, JSON.stringify(ports));
  return ports;
}

async function buildRing(swiftDir: string, server: RingServer, port: number): Promise<void> {
  const builder = join(swiftDir, `${server}.builder`);
  await rm(builder, { force: true });
  // 2^10 partitions, 1 replica, no min_part_hours: one device, one copy.
  for (const args of [['create', '10', '1', '1'], ['add', `r1z1-127.0.0.1:${port}/d1`, '1'], ['rebalance']]) {
    try {
      await run('swift-ring-builder', [builder, ...args]);
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message: string };
      throw new Error(`swift-ring-builder ${builder} ${args.join(' ')} failed: ${e.stderr || e.stdout || e.message}`, { cause: err });
    }
  }
}

async function freePorts(): Promise<Ports> {
  // Held together, so the four differ.
  const servers = await Promise.all(
    SERVERS.map(
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const s = createServer();
          s.once('error', reject);
          s.listen(0, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return Object.fromEntries(SERVERS.map((s, i) => [s, ports[i]])) as Ports;
}

async function allFree(ports: number[]): Promise<boolean> {
  for (const port of ports) {
    const free = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (!free) return false;
  }
  return true;
}

/** Ready when ListBuckets answers 200: the proxy, tempauth, s3api and the account server all work. */
async function waitUntilReady(endpoint: string, running: Running[], logDir: string): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  let last = '';
  while (Date.now() < deadline) {
    const exited = running.find((r) => r.child.exitCode !== null || r.child.signalCode !== null);
    if (exited) {
      const whole = await readFile(join(logDir, `${exited.server}.log`), 'utf8').catch(() => '');
      // This start's lines only: the log is kept across starts.
      const log = whole.slice(Math.max(0, whole.lastIndexOf(START_MARK)));
      if (/Could not bind to/.test(log)) throw new PortTaken(`${binaryOf(exited.server)} found its port taken: ${log.slice(-500)}`);
      throw new Error(`${binaryOf(exited.server)} exited with ${exited.child.exitCode ?? exited.child.signalCode} while starting: ${log.slice(-2000)}`);
    }
    try {
      const res = await fetch(endpoint, { headers: signedListBuckets(endpoint), signal: AbortSignal.timeout(2000) });
      const body = await res.text();
      if (res.status === 200) return;
      last = `${res.status} ${body.slice(0, 300)}`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`Swift's S3 endpoint ${endpoint} did not answer ListBuckets within ${START_TIMEOUT_MS / 1000} s (last: ${last}); logs in ${logDir}`);
}

/** A SigV4-signed `GET /` (ListBuckets), without an S3 client: readiness only. */
function signedListBuckets(endpoint: string): Record<string, string> {
  return sigV4Headers({ method: 'GET', url: new URL(endpoint), ...SWIFT_S3_CREDENTIALS, region: REGION });
}
