// The artifact benchmark of issue 4 (`npm run bench:artifacts`): the same
// kubelet-style archives (100 MiB and 1 GiB, generated once into a node's
// checkpoint directory served by a real node-agent) go through
//   (a) kcr: store-artifact (node-agent → s3rver) then build-image (s3rver →
//       docker-registry), in a child process of its own (bench/kcr-worker.ts)
//       so that its peak RSS is kcr's alone; layer `none` and `gzip`;
//   (b) the seed operator's way: buildah from scratch / add / config
//       --annotation / commit / push (vfs driver) to the same registry;
//   (c) the physical floor: sha256sum of the archive, and a plain loopback
//       copy of the same bytes from the node-agent (curl → /dev/null).
// Prints markdown tables with absolute times and the ratios of this run.
//
//   npm run bench:artifacts [-- --sizes=100,1024] [-- --gzip-sizes=100]
import { mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { kubeletArchiveName } from '../functions/contract/kubelet-archive.js';
import { startNodeAgent, type NodeAgent } from '../node-agent/server.js';
import { writeCheckpointArchive } from '../test/support/archives.js';
import { findBinary } from '../test/support/binaries.js';
import { startRegistry, type TestRegistry } from '../test/support/registry.js';
import { startS3, type S3Fixture } from '../test/support/s3.js';
import { WorkerResult, type BenchCheckpoint, type WorkerJob } from './kcr-job.js';
import { mib, MiB, rate, runCommand, seconds, timed } from './support.js';

const REPO_ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const NODE = 'bench-node';
const TOKEN = 'bench-token';
const NAMESPACE = 'bench';
const CONTAINER = 'redis';
const TIMESTAMP = '2026-11-23T18:15:04Z';
const CHECKPOINT_NAME_ANNOTATION = 'io.kubernetes.cri-o.annotations.checkpoint.name';
const TUNABLES = ['KCR_S3_PART_SIZE_MB', 'KCR_S3_PARTS_IN_FLIGHT'];
const TARGETS = { vsBuildah: 3, vsFloor: 2, peakRssMiB: 150 };

type Compression = 'none' | 'gzip';

interface Archive {
  sizeMiB: number;
  label: string;
  pod: string;
  podUid: string;
  file: string;
  name: string;
  bytes: number;
}

interface BuildahResult {
  ok: true;
  totalMs: number;
  steps: Record<string, number>;
}
type BuildahOutcome = BuildahResult | { ok: false; reason: string };

interface Floor {
  sha256Ms: number;
  copyMs: number;
}

interface Row {
  archive: Archive;
  kcr: Partial<Record<Compression, KcrResult>>;
  buildah: BuildahOutcome;
  floor: Floor;
}

function sizesFrom(flag: string, fallback: number[]): number[] {
  const arg = process.argv.slice(2).find((a) => a.startsWith(`--${flag}=`));
  if (!arg) return fallback;
  const sizes = arg.slice(flag.length + 3).split(',').filter(Boolean).map(Number);
  if (sizes.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`--${flag} takes sizes in MiB separated by commas, got ${JSON.stringify(arg)}`);
  return sizes;
}

function label(sizeMiB: number): string {
  return sizeMiB % 1024 === 0 ? `${sizeMiB / 1024} GiB` : `${sizeMiB} MiB`;
}

function required(name: string, debianPackage: string): string {
  const path = findBinary(name);
  if (!path) throw new Error(`${name} not found: the artifact benchmark needs it (apt-get install -y ${debianPackage})`);
  return path;
}

/** Archives of (almost exactly) `sizeMiB`: pages-1.img fills all but the few KiB of the other entries. */
async function makeArchive(dir: string, sizeMiB: number): Promise<Archive> {
  const pod = `redis-${sizeMiB}m`;
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

interface KcrResult {
  storeMs: number;
  buildMs: number;
  totalMs: number;
  storePeakRssBytes: number;
  buildPeakRssBytes: number;
  /** The larger of the two functions' peaks: what each one's memory limit must allow. */
  peakRssBytes: number;
  startRssBytes: number;
  archiveBytes: number;
  layerBytes: number;
}

/** One kcr function in a process of its own; returns its answer line. */
async function runWorker(worker: string, env: NodeJS.ProcessEnv, job: WorkerJob): Promise<WorkerResult> {
  const { stdout } = await runCommand(process.execPath, [worker, JSON.stringify(job)], { env });
  const last = stdout.trim().split('\n').at(-1) ?? '';
  try {
    return WorkerResult.parse(JSON.parse(last));
  } catch (err) {
    throw new Error(`kcr worker (${job.stage}) printed no result: ${JSON.stringify(stdout.slice(-500))}`, { cause: err });
  }
}

/** store-artifact then build-image, each in its own process; each run has its own bucket and repository, so nothing is found already done. */
async function runKcr(env: { s3: S3Fixture; agent: NodeAgent; registry: TestRegistry; worker: string }, archive: Archive, compression: Compression, run: number): Promise<KcrResult> {
  const checkpoint: BenchCheckpoint = {
    node: NODE,
    namespace: NAMESPACE,
    pod: archive.pod,
    podUid: archive.podUid,
    container: CONTAINER,
    workload: { kind: 'StatefulSet', name: 'redis' },
    timestamp: TIMESTAMP,
  };
  // The part knobs pass through, to bench other settings than the defaults; no other KCR_* does.
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('KCR_') || TUNABLES.includes(k)));
  const childEnv: NodeJS.ProcessEnv = {
    ...inherited,
    KCR_S3_ENDPOINT: env.s3.endpoint,
    KCR_S3_ACCESS_KEY: env.s3.accessKey,
    KCR_S3_SECRET_KEY: env.s3.secretKey,
    KCR_S3_REGION: env.s3.region,
    KCR_S3_BUCKET: `bench-run-${run}`,
    KCR_NODE_AGENT_URLS: JSON.stringify({ [NODE]: env.agent.url }),
    KCR_NODE_AGENT_TOKEN: TOKEN,
    KCR_REGISTRY_URL: env.registry.url,
    KCR_REGISTRY_REPO_PREFIX: `kcr-run-${run}`,
    KCR_IMAGE_LAYER_COMPRESSION: compression,
  };
  const store = await runWorker(env.worker, childEnv, { stage: 'store', checkpoint });
  if (!store.stored) throw new Error(`store-artifact of ${archive.label} answered without the stored data`);
  const build = await runWorker(env.worker, childEnv, { stage: 'build', stored: store.stored });
  return {
    storeMs: store.ms,
    buildMs: build.ms,
    totalMs: store.ms + build.ms,
    storePeakRssBytes: store.peakRssBytes,
    buildPeakRssBytes: build.peakRssBytes,
    peakRssBytes: Math.max(store.peakRssBytes, build.peakRssBytes),
    startRssBytes: Math.max(store.startRssBytes, build.startRssBytes),
    archiveBytes: store.stored.artifact.size,
    layerBytes: build.layerBytes ?? 0,
  };
}

/** The seed operator's sequence with Debian buildah (vfs, a private root), timed as a whole and per step. */
async function runBuildah(buildah: string, dir: string, registry: TestRegistry, archive: Archive, run: number): Promise<BuildahOutcome> {
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
    await step('config', ['config', '--annotation', `${CHECKPOINT_NAME_ANNOTATION}=${CONTAINER}`, ctr]);
    await step('commit', ['commit', '--quiet', ctr, image]);
    await step('push', ['push', '--quiet', '--tls-verify=false', image, `docker://${registry.host}/buildah-run-${run}/${archive.pod}:${TIMESTAMP.replace(/[^0-9A-Za-z]/g, '')}`]);
    return { ok: true, totalMs: performance.now() - start, steps };
  } catch (err) {
    return { ok: false, reason: err instanceof Error ? err.message : String(err) };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

async function runFloor(sha256sum: string, curl: string, agent: NodeAgent, archive: Archive): Promise<Floor> {
  const sha = await runCommand(sha256sum, [archive.file], { stdoutTo: 'ignore' });
  const url = `${agent.url}/checkpoints/${encodeURIComponent(archive.name)}`;
  const copy = await runCommand(curl, ['--silent', '--show-error', '--fail', '--output', '/dev/null', '--header', `Authorization: Bearer ${TOKEN}`, url]);
  return { sha256Ms: sha.ms, copyMs: copy.ms };
}

const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
const floorMs = (f: Floor) => f.sha256Ms + f.copyMs;
const check = (ok: boolean) => (ok ? 'met' : 'MISSED');

function report(rows: Row[]): string {
  const lines: string[] = [];
  lines.push(`kcr (layer none) vs buildah vs the floor; ${new Date().toISOString().slice(0, 10)}, node ${process.version}, ${availableParallelism()} CPUs`);
  lines.push('');
  lines.push('| archive | kcr store-artifact s | kcr build-image s | kcr total s | kcr peak RSS MiB (store / build) | buildah s | floor s (sha256sum + loopback copy) | buildah / kcr | kcr / floor |');
  lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    const k = r.kcr.none;
    if (!k) continue;
    const b = r.buildah.ok ? r.buildah.totalMs : undefined;
    lines.push(
      `| ${r.archive.label} | ${seconds(k.storeMs)} | ${seconds(k.buildMs)} | ${seconds(k.totalMs)} | ${mib(k.storePeakRssBytes)} / ${mib(k.buildPeakRssBytes)} | ${b !== undefined ? seconds(b) : 'n/a'} | ${seconds(floorMs(r.floor))} (${seconds(r.floor.sha256Ms)} + ${seconds(r.floor.copyMs)}) | ${b !== undefined ? ratio(b, k.totalMs) : 'n/a'} | ${ratio(k.totalMs, floorMs(r.floor))} |`,
    );
  }
  lines.push('');
  lines.push('Layer compression (KCR_IMAGE_LAYER_COMPRESSION):');
  lines.push('');
  lines.push('| archive | layer | build-image s | kcr total s | layer MiB | build-image MiB/s | build-image peak RSS MiB |');
  lines.push('|---|---|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    for (const c of ['none', 'gzip'] as const) {
      const k = r.kcr[c];
      if (k) lines.push(`| ${r.archive.label} | ${c} | ${seconds(k.buildMs)} | ${seconds(k.totalMs)} | ${mib(k.layerBytes)} | ${rate(k.archiveBytes, k.buildMs)} | ${mib(k.buildPeakRssBytes)} |`);
    }
  }
  lines.push('');
  lines.push('buildah steps (s):');
  lines.push('');
  for (const r of rows) {
    if (r.buildah.ok) lines.push(`- ${r.archive.label}: ${Object.entries(r.buildah.steps).map(([k, v]) => `${k} ${seconds(v)}`).join(', ')}`);
    else lines.push(`- ${r.archive.label}: buildah could not run: ${r.buildah.reason}`);
  }
  lines.push('');
  lines.push('Targets:');
  for (const r of rows) {
    const k = r.kcr.none;
    if (!k) continue;
    const parts = [
      r.buildah.ok ? `≥ ${TARGETS.vsBuildah}× faster than buildah: ${check(r.buildah.totalMs / k.totalMs >= TARGETS.vsBuildah)}` : 'buildah: not measured',
      `within ${TARGETS.vsFloor}× of the floor: ${check(k.totalMs / floorMs(r.floor) <= TARGETS.vsFloor)}`,
      `peak RSS < ${TARGETS.peakRssMiB} MiB: ${check(k.peakRssBytes < TARGETS.peakRssMiB * MiB)} (${mib(k.startRssBytes)} MiB of it before the first byte)`,
    ];
    lines.push(`- ${r.archive.label}: ${parts.join('; ')}`);
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const sizes = sizesFrom('sizes', [100, 1024]);
  const gzipSizes = new Set(sizesFrom('gzip-sizes', [100]));
  const registryBinary = required('docker-registry', 'docker-registry');
  const sha256sum = required('sha256sum', 'coreutils');
  const curl = required('curl', 'curl');
  const buildah = findBinary('buildah');

  const dir = mkdtempSync(join(tmpdir(), 'kcr-bench-'));
  const checkpoints = join(dir, 'node', 'checkpoints');
  mkdirSync(checkpoints, { recursive: true });
  let s3: S3Fixture | undefined;
  let agent: NodeAgent | undefined;
  let registry: TestRegistry | undefined;
  try {
    const archives: Archive[] = [];
    for (const size of sizes) {
      const made = await timed(() => makeArchive(checkpoints, size));
      archives.push(made.value);
      console.error(`generated ${made.value.name} (${made.value.bytes} bytes) in ${seconds(made.ms)} s`);
    }
    const compiled = await timed(() => compileWorker(dir));
    console.error(`compiled the kcr worker in ${seconds(compiled.ms)} s`);
    s3 = await startS3();
    // allowDelete off: every contender reads the same file.
    agent = await startNodeAgent({ dir: checkpoints, token: TOKEN, allowDelete: false, logger: pino({ level: 'silent' }) });
    registry = await startRegistry(registryBinary);
    const env = { s3, agent, registry, worker: compiled.value };

    const rows: Row[] = [];
    let run = 0;
    for (const archive of archives) {
      const floor = await runFloor(sha256sum, curl, agent, archive);
      console.error(`${archive.label}: floor sha256sum ${seconds(floor.sha256Ms)} s, loopback copy ${seconds(floor.copyMs)} s`);
      const kcr: Row['kcr'] = {};
      for (const c of ['none', 'gzip'] as const) {
        if (c === 'gzip' && !gzipSizes.has(archive.sizeMiB)) continue;
        const r = await runKcr(env, archive, c, run++);
        kcr[c] = r;
        console.error(`${archive.label}: kcr (${c}) store ${seconds(r.storeMs)} s, build ${seconds(r.buildMs)} s, peak RSS store ${mib(r.storePeakRssBytes)} MiB, build ${mib(r.buildPeakRssBytes)} MiB (${mib(r.startRssBytes)} MiB at start)`);
      }
      const b: BuildahOutcome = buildah ? await runBuildah(buildah, dir, registry, archive, run++) : { ok: false, reason: 'buildah is not installed (apt-get install -y buildah)' };
      console.error(`${archive.label}: buildah ${b.ok ? `${seconds(b.totalMs)} s` : `failed: ${b.reason}`}`);
      rows.push({ archive, kcr, buildah: b, floor });
    }
    console.log(report(rows));
  } finally {
    await agent?.close();
    await registry?.stop();
    await s3?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
