// The artifact benchmark (`npm run bench:artifacts`). The same kubelet-style
// archives of incompressible pages (100 MiB and 1 GiB, generated once into a
// node's checkpoint directory served by a real node-agent) go, in one run,
// against OpenStack Swift with s3api (or s3rver with --s3=s3rver) and Debian's
// docker-registry, through
//   (a) kcr: store-artifact (node-agent → S3) then build-image (S3 →
//       registry), each compiled and run in a process of its own
//       (bench/kcr-worker.ts), so that a peak RSS is that function's alone,
//       as deployed (the settings of manifests/functions/*.yaml); with
//       --variants also with larger parts ("large") and a gzip layer;
//   (b) the infrastructure floor: the same bytes moved by plain tools against
//       the same servers — a multipart PUT to S3 (curl, the parts in parallel),
//       a GET from S3 (curl), a monolithic blob upload to the registry (curl),
//       and one sha256 (openssl dgst, else sha256sum);
//   (c) the seed operator's way: buildah from scratch / add / config
//       --annotation / commit / push (vfs driver) to the same registry.
// Prints markdown tables with absolute times, the per-stage split and the
// ratios of this run. With --profile, each kcr function's handle() runs under
// V8's CPU profiler and the report adds its self time by category
// (bench/cpu-profile.ts); --profile=<dir> keeps the .cpuprofile files there.
//
//   npm run bench:artifacts [-- --sizes=100,1024 --s3=swift|s3rver --variants=none,large,gzip --gzip-sizes=100 --profile[=<dir>]]
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { z } from 'zod';
import { kubeletArchiveName } from '../functions/core/contract/kubelet-archive.js';
import { Annotations } from '../functions/build-image/checkpoint-image.js';
import { startNodeAgent, type NodeAgent } from '../node-agent/server.js';
import { startSimulatedCluster, type SimulatedCluster } from '../simulator/index.js';
import { parseResources } from '../local/yaml-docs.js';
import { writeCheckpointArchive } from '../simulator/archive-writer.js';
import { findBinary } from '../local/binaries.js';
import { startRegistryServer, type RegistryServer } from '../local/registry-server.js';
import { WorkerResult, type BenchCheckpoint, type WorkerJob } from './kcr-job.js';
import type { S3ServerInfo } from './s3-server.js';
import { sigV4Headers } from '../local/sigv4.js';
import { CATEGORIES, CpuProfile, summarizeProfile, type ProfileSummary } from './cpu-profile.js';
import { mib, MiB, rate, runCommand, seconds, timed, type CommandResult } from './support.js';

const REPO_ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const NODE = 'bench-node';
const TOKEN = 'bench-token';
const NAMESPACE = 'bench';
const CONTAINER = 'redis';
const TIMESTAMP = '2026-11-23T18:15:04Z';
const BUILDAH_SYSTEM_DIR = '/var/lib/containers';
const TARGETS = { vsBuildah: 3, vsFloor: 1.3, peakRssMiB: 150 };
/**
 * The settings each function's Knative Service gives it (manifests/functions/*.yaml),
 * read from the manifests so that the bench runs kcr as deployed: the part size,
 * the parts in flight and NODE_OPTIONS (1 MiB young-generation semi-spaces).
 */
const DEPLOYED_KEYS = ['KCR_S3_PART_SIZE_MB', 'KCR_S3_PARTS_IN_FLIGHT', 'NODE_OPTIONS'];
const KnativeServiceEnv = z.object({
  metadata: z.object({ name: z.string(), namespace: z.string().optional() }),
  spec: z.object({ template: z.object({ spec: z.object({ containers: z.array(z.object({ env: z.array(z.object({ name: z.string(), value: z.string().optional() })).optional() })).min(1) }) }) }),
});
function deployedEnv(fn: 'store-artifact' | 'build-image'): Record<string, string> {
  const file = join(REPO_ROOT, 'manifests', 'functions', `${fn}.yaml`);
  const services = parseResources(readFileSync(file, 'utf8'), file, 'kcr-system', (apiVersion, kind) =>
    apiVersion === 'serving.knative.dev/v1' && kind === 'Service' ? KnativeServiceEnv : undefined,
  );
  const env = services.find((s) => s.metadata.name === fn)?.spec.template.spec.containers[0]?.env;
  if (!env) throw new Error(`${file} holds no Knative Service ${fn}`);
  return Object.fromEntries(env.filter((e) => DEPLOYED_KEYS.includes(e.name) && e.value !== undefined).map((e) => [e.name, e.value as string]));
}
/** For comparison, the settings kcr had before this benchmark: 16 MiB × 4 parts and V8's default young generation. */
const LARGE_ENV = { KCR_S3_PART_SIZE_MB: '16', KCR_S3_PARTS_IN_FLIGHT: '4' };

type Variant = 'none' | 'large' | 'gzip';
type Stage = 'store-artifact' | 'build-image';
const VARIANTS: Record<Variant, { compression: 'none' | 'gzip'; env: (fn: Stage) => Record<string, string> }> = {
  none: { compression: 'none', env: deployedEnv },
  large: { compression: 'none', env: () => LARGE_ENV },
  gzip: { compression: 'gzip', env: deployedEnv },
};

interface Archive {
  sizeMiB: number;
  label: string;
  pod: string;
  podUid: string;
  file: string;
  name: string;
  bytes: number;
}

interface Services {
  /** store-artifact reads the checkpointed pod from the API (gone here: it checks the pod's name). */
  kubeconfig: string;
  s3: S3ServerInfo;
  agent: NodeAgent;
  registry: RegistryServer;
  worker: string;
  /** --profile: where the workers write their CPU profiles. */
  profileDir?: string;
}

interface KcrResult {
  store: WorkerResult;
  build: WorkerResult;
  totalMs: number;
  /** The larger of the two functions' peaks: what either one's memory limit must allow. */
  peakRssBytes: number;
  /** --profile: each function's self time by category. */
  profile?: { store: ProfileSummary; build: ProfileSummary };
}

type BuildahOutcome = { ok: true; totalMs: number; steps: Record<string, number> } | { ok: false; reason: string };

/** The same bytes moved by plain tools, stage by stage (run one after the other). */
interface Floor {
  /** curl: CreateMultipartUpload, the parts in parallel, CompleteMultipartUpload. */
  s3PutMs: number;
  /** Not part of the floor: one curl PUT of the whole archive, what S3 takes without parts. */
  s3SinglePutMs: number;
  /** curl GET of that object to /dev/null. */
  s3GetMs: number;
  /** curl: POST an upload, PUT the whole blob with its digest. */
  registryPutMs: number;
  sha256Ms: number;
  /** `sha256:<hex>` of the archive, from sha256sum. */
  digest: string;
}

interface Row {
  archive: Archive;
  kcr: Partial<Record<Variant, KcrResult>>;
  buildah: BuildahOutcome;
  floor: Floor;
}

function sizesFrom(flag: string, fallback: number[]): number[] {
  const arg = process.argv.slice(2).find((a) => a.startsWith(`--${flag}=`));
  if (!arg) return fallback;
  const sizes = arg
    .slice(flag.length + 3)
    .split(',')
    .filter(Boolean)
    .map(Number);
  if (sizes.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`--${flag} takes sizes in MiB separated by commas, got ${JSON.stringify(arg)}`);
  return sizes;
}

function flag(name: string, fallback: string): string {
  return (
    process.argv
      .slice(2)
      .find((a) => a.startsWith(`--${name}=`))
      ?.slice(name.length + 3) ?? fallback
  );
}

function label(sizeMiB: number): string {
  return sizeMiB % 1024 === 0 ? `${sizeMiB / 1024} GiB` : `${sizeMiB} MiB`;
}

function required(name: string, debianPackage: string): string {
  const path = findBinary(name);
  if (!path) throw new Error(`${name} not found: the artifact benchmark needs it (apt-get install -y ${debianPackage})`);
  return path;
}

/** An archive of (almost exactly) `sizeMiB`: pages-1.img fills all but the few KiB of the other entries. */
async function makeArchive(dir: string, sizeMiB: number): Promise<Archive> {
  // An ordinal name, as StatefulSet redis names its pods (store-artifact checks it).
  const pod = `redis-${sizeMiB}`;
  const podUid = `0f6a4c1e-2b3d-4e5f-8a9b-${String(sizeMiB).padStart(12, '0')}`;
  const name = kubeletArchiveName({ pod, namespace: NAMESPACE, container: CONTAINER, timestamp: TIMESTAMP });
  const file = join(dir, name);
  await writeCheckpointArchive(file, { pod, namespace: NAMESPACE, podUid, container: CONTAINER, pagesBytes: sizeMiB * MiB - 16 * 1024 });
  return { sizeMiB, label: label(sizeMiB), pod, podUid, file, name, bytes: statSync(file).size };
}

/**
 * Compiles the worker and the functions it imports with tsc, as the image's
 * build stage does, so that the worker runs on plain node like a deployed
 * function: tsx's loader would add some 35 MiB to the RSS being measured.
 */
async function compileWorker(dir: string): Promise<string> {
  const out = join(dir, 'kcr');
  mkdirSync(out);
  const tsconfig = {
    extends: join(REPO_ROOT, 'tsconfig.build.json'),
    compilerOptions: { outDir: join(out, 'dist'), rootDir: REPO_ROOT, sourceMap: false, typeRoots: [join(REPO_ROOT, 'node_modules/@types')] },
    include: [],
    files: [join(REPO_ROOT, 'bench/kcr-worker.ts')],
  };
  writeFileSync(join(out, 'tsconfig.json'), JSON.stringify(tsconfig));
  // The compiled ESM needs "type": "module", and finds its packages through the link.
  writeFileSync(join(out, 'package.json'), JSON.stringify({ type: 'module' }));
  symlinkSync(join(REPO_ROOT, 'node_modules'), join(out, 'node_modules'));
  await runCommand(process.execPath, [join(REPO_ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(out, 'tsconfig.json')]);
  return join(out, 'dist/bench/kcr-worker.js');
}

/** bench/s3-server.ts as a child process, once it printed where it listens. */
async function startS3Server(kind: 'swift' | 's3rver'): Promise<{ info: S3ServerInfo; stop(): Promise<void> }> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'bench/s3-server.ts'), kind], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const lines = createInterface({ input: child.stdout as NonNullable<ChildProcess['stdout']> });
  const first = await Promise.race([
    new Promise<string>((resolve) => lines.once('line', resolve)),
    exited.then(() => {
      throw new Error('bench/s3-server.ts exited before it printed its endpoint');
    }),
  ]);
  lines.close();
  const info = JSON.parse(first) as S3ServerInfo;
  return {
    info,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** One kcr function in a process of its own; returns its answer line. */
async function runWorker(worker: string, env: NodeJS.ProcessEnv, job: WorkerJob, profileFile?: string): Promise<WorkerResult> {
  const { stdout } = await runCommand(process.execPath, [worker, JSON.stringify(job), ...(profileFile ? [profileFile] : [])], { env });
  const last = stdout.trim().split('\n').at(-1) ?? '';
  try {
    return WorkerResult.parse(JSON.parse(last));
  } catch (err) {
    throw new Error(`kcr worker (${job.stage}) printed no result: ${JSON.stringify(stdout.slice(-500))}`, { cause: err });
  }
}

/** store-artifact then build-image; each run has its own bucket and repository, so nothing is found already done. */
async function runKcr(services: Services, archive: Archive, variant: Variant, run: number): Promise<KcrResult> {
  const checkpoint: BenchCheckpoint = {
    node: NODE,
    namespace: NAMESPACE,
    pod: archive.pod,
    podUid: archive.podUid,
    container: CONTAINER,
    workload: { kind: 'StatefulSet', name: 'redis' },
    timestamp: TIMESTAMP,
  };
  // Nothing of the bench's own configuration leaks in: no KCR_*, and no NODE_OPTIONS (which may load tsx).
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('KCR_') && k !== 'NODE_OPTIONS'));
  const env: NodeJS.ProcessEnv = {
    ...inherited,
    KUBECONFIG: services.kubeconfig,
    KCR_S3_ENDPOINT: services.s3.endpoint,
    KCR_S3_ACCESS_KEY: services.s3.accessKey,
    KCR_S3_SECRET_KEY: services.s3.secretKey,
    KCR_S3_REGION: services.s3.region,
    KCR_S3_BUCKET: `bench-run-${run}`,
    KCR_NODE_AGENT_URLS: JSON.stringify({ [NODE]: services.agent.url }),
    KCR_NODE_AGENT_TOKEN: TOKEN,
    KCR_REGISTRY_URL: services.registry.url,
    KCR_REGISTRY_REPO_PREFIX: `kcr-run-${run}`,
    KCR_IMAGE_LAYER_COMPRESSION: VARIANTS[variant].compression,
  };
  const profileFile = (stage: Stage) => services.profileDir && join(services.profileDir, `${archive.sizeMiB}MiB-${variant}-${stage}.cpuprofile`);
  const store = await runWorker(services.worker, { ...env, ...VARIANTS[variant].env('store-artifact') }, { stage: 'store', checkpoint }, profileFile('store-artifact'));
  if (!store.stored) throw new Error(`store-artifact of ${archive.label} answered without the stored data`);
  const build = await runWorker(services.worker, { ...env, ...VARIANTS[variant].env('build-image') }, { stage: 'build', stored: store.stored }, profileFile('build-image'));
  const result: KcrResult = { store, build, totalMs: store.ms + build.ms, peakRssBytes: Math.max(store.peakRssBytes, build.peakRssBytes) };
  const storeProfile = profileFile('store-artifact');
  const buildProfile = profileFile('build-image');
  if (storeProfile && buildProfile) {
    const summary = (file: string) => summarizeProfile(CpuProfile.parse(JSON.parse(readFileSync(file, 'utf8'))));
    result.profile = { store: summary(storeProfile), build: summary(buildProfile) };
  }
  return result;
}

/** The seed operator's sequence with Debian buildah (vfs, a private root), timed as a whole and per step. */
async function runBuildah(buildah: string, dir: string, registry: RegistryServer, archive: Archive, run: number): Promise<BuildahOutcome> {
  const root = join(dir, `buildah-${run}`);
  const global = ['--storage-driver', 'vfs', '--root', join(root, 'root'), '--runroot', join(root, 'runroot')];
  // Nothing is RUN, so no namespaces are needed; chroot isolation keeps buildah from asking for them anyway.
  const env = { ...process.env, BUILDAH_ISOLATION: 'chroot' };
  const image = `localhost/kcr-bench/buildah-${run}:latest`;
  const steps: Record<string, number> = {};
  const step = async (name: string, args: string[]) => {
    const r = await runCommand(buildah, [...global, ...args], { env });
    steps[name] = r.ms;
    return r.stdout.trim();
  };
  try {
    const start = performance.now();
    const ctr = await step('from', ['from', '--quiet', 'scratch']);
    await step('add', ['add', ctr, archive.file, '/']);
    await step('config', ['config', '--annotation', `${Annotations.criOCheckpointName}=${CONTAINER}`, ctr]);
    await step('commit', ['commit', '--quiet', ctr, image]);
    await step('push', ['push', '--quiet', '--tls-verify=false', image, `docker://${registry.host}/buildah-run-${run}/${archive.pod}:latest`]);
    return { ok: true, totalMs: performance.now() - start, steps };
  } catch (err) {
    return { ok: false, reason: err instanceof Error ? err.message : String(err) };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/**
 * The fastest plain sha256 here: `openssl dgst -sha256` uses the CPU's SHA
 * extensions (as Node's crypto does); Debian's coreutils 9.1 sha256sum does
 * not, and takes ~5× longer, which would flatter kcr.
 */
async function sha256Of(tools: FloorTools, file: string): Promise<CommandResult> {
  return tools.openssl ? runCommand(tools.openssl, ['dgst', '-sha256', '-r', file]) : runCommand(tools.sha256sum, [file]);
}

interface FloorTools {
  sha256sum: string;
  openssl: string | undefined;
  curl: string;
}

async function runFloor(tools: FloorTools, services: Services, archive: Archive, run: number): Promise<Floor> {
  const sha = await sha256Of(tools, archive.file);
  const hex = /^([0-9a-f]{64})\s/.exec(sha.stdout)?.[1];
  if (!hex) throw new Error(`sha256 of ${archive.file} printed no digest: ${JSON.stringify(sha.stdout.slice(0, 200))}`);
  const digest = `sha256:${hex}`;
  const s3 = services.s3;
  const bucket = `bench-floor-${run}`;
  await curlS3(tools.curl, s3, 'PUT', `/${bucket}`, ['--header', 'Content-Length: 0']);
  const put = await timed(() => multipartPut(tools.curl, s3, `/${bucket}/archive.tar`, archive));
  const get = await timed(() => curlS3(tools.curl, s3, 'GET', `/${bucket}/archive.tar`, ['--output', '/dev/null']));
  const single = await timed(() => curlS3(tools.curl, s3, 'PUT', `/${bucket}/single.tar`, ['--output', '/dev/null', '--upload-file', archive.file]));

  const repo = `floor-run-${run}/${archive.pod}`;
  const started = await fetch(`${services.registry.url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  await started.arrayBuffer();
  const location = started.headers.get('location');
  if (started.status !== 202 || !location) throw new Error(`registry answered ${started.status} to POST /v2/${repo}/blobs/uploads/ without an upload location`);
  const target = new URL(location, services.registry.url);
  target.searchParams.set('digest', digest);
  const registryPut = await runCommand(tools.curl, [...CURL, '--output', '/dev/null', '--header', 'Content-Type: application/octet-stream', '--upload-file', archive.file, target.href]);
  return { s3PutMs: put.ms, s3SinglePutMs: single.ms, s3GetMs: get.ms, registryPutMs: registryPut.ms, sha256Ms: sha.ms, digest };
}

/** No "Expect: 100-continue" round trip: neither kcr nor buildah waits for one. */
const CURL = ['--silent', '--show-error', '--fail', '--header', 'Expect:'];

/** One S3 request with curl, signed here (curl's --aws-sigv4 cannot take Swift's `test:tester` key); returns stdout. */
async function curlS3(curl: string, s3: S3ServerInfo, method: string, pathAndQuery: string, extra: string[] = []): Promise<string> {
  const url = new URL(pathAndQuery, s3.endpoint);
  const headers = sigV4Headers({ method, url, accessKey: s3.accessKey, secretKey: s3.secretKey, region: s3.region });
  const args = [...CURL, '--request', method, ...Object.entries(headers).flatMap(([k, v]) => ['--header', `${k}: ${v}`]), ...extra, url.href];
  return (await runCommand(curl, args)).stdout;
}

/**
 * A multipart upload of the archive with plain tools: each part read by dd
 * into curl, kcr's deployed part size and parts in flight, then Complete.
 */
async function multipartPut(curl: string, s3: S3ServerInfo, key: string, archive: Archive): Promise<void> {
  const { KCR_S3_PART_SIZE_MB: partMiB = '8', KCR_S3_PARTS_IN_FLIGHT: inFlight = '2' } = deployedEnv('store-artifact');
  const partBytes = Number(partMiB) * MiB;
  const created = await curlS3(curl, s3, 'POST', `${key}?uploads=`);
  const uploadId = /<UploadId>([^<]+)<\/UploadId>/.exec(created)?.[1];
  if (!uploadId) throw new Error(`CreateMultipartUpload of ${key} answered no UploadId: ${created.slice(0, 300)}`);
  const count = Math.ceil(archive.bytes / partBytes);
  const etags: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const part = next++;
      const length = Math.min(partBytes, archive.bytes - part * partBytes);
      const url = new URL(`${key}?partNumber=${part + 1}&uploadId=${encodeURIComponent(uploadId)}`, s3.endpoint);
      const headers = sigV4Headers({ method: 'PUT', url, accessKey: s3.accessKey, secretKey: s3.secretKey, region: s3.region });
      const curlArgs = [
        ...CURL,
        '--dump-header',
        '-',
        '--output',
        '/dev/null',
        '--header',
        `Content-Length: ${length}`,
        ...Object.entries(headers).flatMap(([k, v]) => ['--header', `${k}: ${v}`]),
        '--upload-file',
        '-',
        url.href,
      ];
      const quoted = curlArgs.map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
      const dd = `dd if='${archive.file}' bs=${MiB} skip=${(part * partBytes) / MiB} count=${Math.ceil(length / MiB)} status=none`;
      const { stdout } = await runCommand('sh', ['-c', `${dd} | '${curl}' ${quoted}`]);
      const etag = /^etag:\s*(\S+)/im.exec(stdout)?.[1];
      if (!etag) throw new Error(`UploadPart ${part + 1} of ${key} answered no ETag`);
      etags[part] = etag;
    }
  };
  await Promise.all(Array.from({ length: Number(inFlight) }, worker));
  const body = `<CompleteMultipartUpload>${etags.map((e, i) => `<Part><PartNumber>${i + 1}</PartNumber><ETag>${e}</ETag></Part>`).join('')}</CompleteMultipartUpload>`;
  const completed = await curlS3(curl, s3, 'POST', `${key}?uploadId=${encodeURIComponent(uploadId)}`, ['--data-binary', body, '--header', 'Content-Type: application/xml']);
  if (!/<CompleteMultipartUploadResult/.test(completed)) throw new Error(`CompleteMultipartUpload of ${key} answered ${completed.slice(0, 300)}`);
}

const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
const floorMs = (f: Floor) => f.s3PutMs + f.s3GetMs + f.registryPutMs + f.sha256Ms;
const check = (ok: boolean) => (ok ? 'met' : 'MISSED');
const peaks = (k: KcrResult) => `${mib(k.store.peakRssBytes)} / ${mib(k.build.peakRssBytes)}`;

function report(rows: Row[], s3: S3ServerInfo): string {
  const out: string[] = [];
  const line = (s = '') => out.push(s);
  const server = s3.kind === 'swift' ? 'Swift+s3api' : 's3rver';
  line(
    `${new Date().toISOString().slice(0, 10)}, node ${process.version}, ${availableParallelism()} CPUs, load ${loadavg()[0]?.toFixed(1)}; S3 ${server} (ready in ${seconds(s3.startMs)} s), docker-registry; kcr as deployed (the settings of manifests/functions/*.yaml), layer none.`,
  );
  line();
  line(`| archive | kcr s (store + build) | floor s (S3 PUT + S3 GET + registry PUT + sha256) | kcr / floor | buildah s | buildah / kcr | kcr peak RSS MiB (store / build) |`);
  line('|---|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    const k = r.kcr.none;
    if (!k) continue;
    const f = r.floor;
    const b = r.buildah.ok ? r.buildah.totalMs : undefined;
    line(
      `| ${r.archive.label} | ${seconds(k.totalMs)} (${seconds(k.store.ms)} + ${seconds(k.build.ms)}) | ${seconds(floorMs(f))} (${seconds(f.s3PutMs)} + ${seconds(f.s3GetMs)} + ${seconds(f.registryPutMs)} + ${seconds(f.sha256Ms)}) | ${ratio(k.totalMs, floorMs(f))} | ${b !== undefined ? seconds(b) : 'n/a'} | ${b !== undefined ? ratio(b, k.totalMs) : 'n/a'} | ${peaks(k)} |`,
    );
  }
  line();
  line(`Stage by stage: store-artifact against what its bytes cost the floor (S3 PUT + sha256), build-image against S3 GET + registry PUT; kcr's own CPU time in brackets:`);
  line();
  line('| archive | store-artifact s (CPU s) | S3 PUT + sha256 s | store / floor | S3 in one PUT, not in parts s | build-image s (CPU s) | S3 GET + registry PUT s | build / floor |');
  line('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    const k = r.kcr.none;
    if (!k) continue;
    const f = r.floor;
    const storeFloor = f.s3PutMs + f.sha256Ms;
    const buildFloor = f.s3GetMs + f.registryPutMs;
    line(
      `| ${r.archive.label} | ${seconds(k.store.ms)} (${seconds(k.store.cpuMs)}) | ${seconds(storeFloor)} | ${ratio(k.store.ms, storeFloor)} | ${seconds(f.s3SinglePutMs)} | ${seconds(k.build.ms)} (${seconds(k.build.cpuMs)}) | ${seconds(buildFloor)} | ${ratio(k.build.ms, buildFloor)} |`,
    );
  }
  line();
  const settings = (e: Record<string, string>) =>
    Object.entries(e)
      .map(([k, v]) => `${k}=${v}`)
      .join(', ');
  if (rows.some((r) => r.kcr.large)) {
    line(`Memory: as deployed (store-artifact: ${settings(deployedEnv('store-artifact'))}) vs larger parts and V8's default young generation (${settings(LARGE_ENV)}):`);
    line();
    line('| archive | deployed: peak RSS MiB (store / build) | larger: peak RSS MiB (store / build) | larger: kcr total s | RSS before the first byte MiB (deployed / larger) |');
    line('|---|---:|---:|---:|---:|');
    for (const r of rows) {
      const d = r.kcr.none;
      const l = r.kcr.large;
      if (d && l) line(`| ${r.archive.label} | ${peaks(d)} | ${peaks(l)} | ${seconds(l.totalMs)} | ${mib(d.store.startRssBytes)} / ${mib(l.store.startRssBytes)} |`);
    }
    line();
  }
  out.push(...profileTables(rows));
  if (!rows.some((r) => r.kcr.gzip)) return out.concat(buildahAndTargets(rows)).join('\n');
  line('Layer compression (KCR_IMAGE_LAYER_COMPRESSION), deployed settings otherwise:');
  line();
  line('| archive | layer | build-image s | build-image CPU s | layer MiB | build-image MiB/s | build-image peak RSS MiB |');
  line('|---|---|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    for (const v of ['none', 'gzip'] as const) {
      const k = r.kcr[v];
      if (k)
        line(
          `| ${r.archive.label} | ${v} | ${seconds(k.build.ms)} | ${seconds(k.build.cpuMs)} | ${mib(k.build.layerBytes ?? 0)} | ${rate(r.archive.bytes, k.build.ms)} | ${mib(k.build.peakRssBytes)} |`,
        );
    }
  }
  line();
  return out.concat(buildahAndTargets(rows)).join('\n');
}

/** --profile: self time of each function's handle() by category, in seconds and % of its wall time, then its busiest functions. */
function profileTables(rows: Row[]): string[] {
  const profiled = rows.flatMap((r) => (r.kcr.none?.profile ? [{ label: r.archive.label, profile: r.kcr.none.profile }] : []));
  if (profiled.length === 0) return [];
  const out: string[] = [];
  const line = (s = '') => out.push(s);
  const shown = CATEGORIES.filter((c) => profiled.some((p) => p.profile.store.byCategory[c] + p.profile.build.byCategory[c] >= 5));
  line("CPU profile of each function's handle() (V8 sampling profiler, 1 ms; self time in s and % of the profile; a builtin's or native binding's time counts for its JS caller):");
  line();
  line(`| archive | function | profiled s | ${shown.join(' | ')} |`);
  line(`|---|---|---:|${shown.map(() => '---:').join('|')}|`);
  for (const p of profiled) {
    for (const [fn, s] of [
      ['store-artifact', p.profile.store],
      ['build-image', p.profile.build],
    ] as const) {
      line(`| ${p.label} | ${fn} | ${seconds(s.totalMs)} | ${shown.map((c) => `${seconds(s.byCategory[c])} (${((100 * s.byCategory[c]) / s.totalMs).toFixed(0)} %)`).join(' | ')} |`);
    }
  }
  line();
  line('Busiest functions (self time, s):');
  line();
  for (const p of profiled) {
    for (const [fn, s] of [
      ['store-artifact', p.profile.store],
      ['build-image', p.profile.build],
    ] as const) {
      line(`- ${p.label} ${fn}: ${s.top.map((t) => `${t.name} [${t.category}] ${seconds(t.ms)}`).join('; ')}`);
    }
  }
  line();
  return out;
}

function buildahAndTargets(rows: Row[]): string[] {
  const out: string[] = [];
  const line = (s = '') => out.push(s);
  line('buildah steps (s):');
  line();
  for (const r of rows) {
    if (r.buildah.ok)
      line(
        `- ${r.archive.label}: ${Object.entries(r.buildah.steps)
          .map(([k, v]) => `${k} ${seconds(v)}`)
          .join(', ')}`,
      );
    else line(`- ${r.archive.label}: buildah could not run: ${r.buildah.reason}`);
  }
  line();
  line("Targets (kcr as deployed; with larger parts and V8's default young generation in brackets):");
  line();
  for (const r of rows) {
    const k = r.kcr.none;
    if (!k) continue;
    const l = r.kcr.large;
    const both = (f: (x: KcrResult) => boolean) => `${check(f(k))}${l ? ` [${check(f(l))}]` : ''}`;
    const parts = [
      r.buildah.ok ? `≥ ${TARGETS.vsBuildah}× faster than buildah: ${both((x) => (r.buildah as { totalMs: number }).totalMs / x.totalMs >= TARGETS.vsBuildah)}` : 'buildah: not measured',
      `within ${TARGETS.vsFloor}× of the floor: ${both((x) => x.totalMs / floorMs(r.floor) <= TARGETS.vsFloor)}`,
      `peak RSS < ${TARGETS.peakRssMiB} MiB: ${both((x) => x.peakRssBytes < TARGETS.peakRssMiB * MiB)}`,
    ];
    line(`- ${r.archive.label}: ${parts.join('; ')}`);
  }
  return out;
}

async function main(): Promise<void> {
  const sizes = sizesFrom('sizes', [100, 1024]);
  const gzipSizes = new Set(sizesFrom('gzip-sizes', [100]));
  const s3Kind = flag('s3', 'swift');
  if (s3Kind !== 'swift' && s3Kind !== 's3rver') throw new Error(`--s3 takes swift or s3rver, got ${s3Kind}`);
  const variants = flag('variants', 'none').split(',');
  const profileArg = process.argv.slice(2).find((a) => a === '--profile' || a.startsWith('--profile='));
  const unknown = variants.filter((v) => !(v in VARIANTS));
  if (unknown.length > 0 || !variants.includes('none')) throw new Error(`--variants takes none (always), large, gzip; got ${variants.join(',')}`);
  const registryBinary = required('docker-registry', 'docker-registry');
  const sha256sum = required('sha256sum', 'coreutils');
  const curl = required('curl', 'curl');
  const buildah = findBinary('buildah');
  // buildah keeps a blob-info cache there whatever --root says: remove it afterwards if the bench made it.
  const buildahCacheExisted = existsSync(BUILDAH_SYSTEM_DIR);

  const dir = mkdtempSync(join(tmpdir(), 'kcr-bench-'));
  const checkpoints = join(dir, 'node', 'checkpoints');
  mkdirSync(checkpoints, { recursive: true });
  let s3: Awaited<ReturnType<typeof startS3Server>> | undefined;
  let agent: NodeAgent | undefined;
  let registry: RegistryServer | undefined;
  let cluster: SimulatedCluster | undefined;
  const progress = (s: string) => console.error(s);
  try {
    const archives: Archive[] = [];
    for (const size of sizes) {
      const made = await timed(() => makeArchive(checkpoints, size));
      archives.push(made.value);
      progress(`generated ${made.value.name} (${made.value.bytes} bytes) in ${seconds(made.ms)} s`);
    }
    const compiled = await timed(() => compileWorker(dir));
    progress(`compiled the kcr worker in ${seconds(compiled.ms)} s`);
    s3 = await startS3Server(s3Kind);
    progress(`${s3Kind} ready in ${seconds(s3.info.startMs)} s`);
    // allowDelete off: every contender reads the same file.
    agent = await startNodeAgent({ dir: checkpoints, token: TOKEN, allowDelete: false, logger: pino({ level: 'silent' }) });
    registry = await startRegistryServer({ binary: registryBinary });
    cluster = await startSimulatedCluster({ stateDir: join(dir, 'cluster'), nodes: [NODE] });
    let profileDir: string | undefined;
    if (profileArg) {
      profileDir = profileArg.includes('=') ? resolve(profileArg.slice('--profile='.length)) : join(dir, 'profiles');
      mkdirSync(profileDir, { recursive: true });
    }
    const services: Services = { kubeconfig: cluster.kubeconfigPath, s3: s3.info, agent, registry, worker: compiled.value, ...(profileDir ? { profileDir } : {}) };

    const rows: Row[] = [];
    let run = 0;
    for (const archive of archives) {
      const floor = await runFloor({ sha256sum, openssl: findBinary('openssl'), curl }, services, archive, run++);
      progress(
        `${archive.label}: floor: S3 multipart PUT ${seconds(floor.s3PutMs)} s (one PUT ${seconds(floor.s3SinglePutMs)} s), S3 GET ${seconds(floor.s3GetMs)} s, registry PUT ${seconds(floor.registryPutMs)} s, sha256 ${seconds(floor.sha256Ms)} s`,
      );
      const kcr: Row['kcr'] = {};
      for (const variant of ['none', 'large', 'gzip'] as const) {
        if (!variants.includes(variant) || (variant === 'gzip' && !gzipSizes.has(archive.sizeMiB))) continue;
        const k = await runKcr(services, archive, variant, run++);
        kcr[variant] = k;
        progress(`${archive.label}: kcr ${variant}: store ${seconds(k.store.ms)} s, build ${seconds(k.build.ms)} s, peak RSS ${peaks(k)} MiB`);
      }
      const b: BuildahOutcome = buildah ? await runBuildah(buildah, dir, registry, archive, run++) : { ok: false, reason: 'buildah is not installed (apt-get install -y buildah)' };
      progress(`${archive.label}: buildah ${b.ok ? `${seconds(b.totalMs)} s` : `failed: ${b.reason}`}`);
      rows.push({ archive, kcr, buildah: b, floor });
    }
    console.log(report(rows, s3.info));
  } finally {
    await cluster?.stop();
    await agent?.close();
    await registry?.stop();
    await s3?.stop();
    rmSync(dir, { recursive: true, force: true });
    if (!buildahCacheExisted) rmSync(BUILDAH_SYSTEM_DIR, { recursive: true, force: true });
  }
}

await main();
