// `npm start`: the whole kcr chain on this machine, no cluster, running the demo.
// `npm start -- --once` runs the demo, prints the summary and exits 0 when every
// step happened (CI runs it). However it ends (--once, Ctrl-C, SIGTERM, a
// failure), the env file is left stale, so the CLI says the local mode is not
// running rather than calling its dead ports.
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { startStack, type Stack } from './stack.js';
import { runDemo, type StepResult } from './demo.js';
import { Timeline } from './timeline.js';
import { formatTable } from './table.js';
import { findBinary } from './binaries.js';
import { errorMessage } from '../functions/core/runtime/errors.js';
import { liveEnvFile, staleEnvFile } from './env-file.js';
import { S3_CHOICES, s3Target, type S3Choice } from './s3-server.js';
import { chooseRuntime, type RuntimeChoice } from '../simulator/podman/engine.js';

const RUNTIMES: readonly RuntimeChoice[] = ['auto', 'podman', 'simulated'];
const runtimeChoice = (v: string): RuntimeChoice => {
  if (!(RUNTIMES as readonly string[]).includes(v)) throw new InvalidArgumentError(`must be one of ${RUNTIMES.join(', ')}`);
  return v as RuntimeChoice;
};

const positive = (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a positive number');
  return n;
};

const program = new Command('kcr-local')
  .description('Runs kcr locally: simulated cluster, node-agents, S3 (Swift, s3rver or yours), registry, every function, the broker, and a demo')
  .option('--once', 'run the demo, print the summary and exit (0 when every step happened)')
  .option('--state-dir <dir>', 'where the run keeps its data (wiped at start)', '.state/run')
  .option('--state-mib <n>', 'memory of each demo container, i.e. the size of each checkpoint (MiB)', positive, 24)
  .option('--step-timeout <s>', 'longest wait for one demo step (seconds)', positive, 60)
  .addOption(new Option('--s3 <server>', 'the S3: Swift+s3api, the embedded s3rver, or auto (Swift when installed); KCR_S3_ENDPOINT names an external one instead').choices(S3_CHOICES).default('auto'))
  .option(
    '--runtime <runtime>',
    'container runtime of the simulated nodes: podman (real containers, CRIU), simulated, or auto (podman when podman, runc and criu are installed and `criu check` passes); default $KCR_RUNTIME, else auto',
    runtimeChoice,
    runtimeChoice(process.env.KCR_RUNTIME ?? 'auto'),
  )
  .option('--oci-layout', 'write checkpoint images to an OCI layout directory even when docker-registry is installed')
  .option('--verbose', 'also print every pod and workload status update')
  .parse();

const opts = program.opts<{ once?: boolean; stateDir: string; stateMib: number; stepTimeout: number; s3: S3Choice; runtime: RuntimeChoice; ociLayout?: boolean; verbose?: boolean }>();
const out = process.stdout;
const stateDir = resolve(opts.stateDir);
// Kept across runs: Swift's rings (seconds of swift-ring-builder, reused while their ports
// are free) and podman's storage (its images keep their IDs, which older archives need).
const SWIFT_RINGS = 'swift-rings';
const KEPT = new Set([SWIFT_RINGS, 'podman']);
mkdirSync(stateDir, { recursive: true });
for (const entry of readdirSync(stateDir)) if (!KEPT.has(entry)) rmSync(join(stateDir, entry), { recursive: true, force: true });

let stack: Stack | undefined;
let starting: Promise<Stack> | undefined;
const timeline = new Timeline({ out, verbose: !!opts.verbose, checkpointDir: (node) => stack?.cluster.checkpointDir(node) ?? '' });
const registryBinary = opts.ociLayout ? undefined : findBinary('docker-registry');
const envFile = join(stateDir, 'env');

/** A stop asked for by a signal, whatever the run is doing then. */
class Stopped extends Error {
  constructor(readonly signal: NodeJS.Signals) {
    super(`stopped by ${signal}`);
  }
}
const stopSignal = new Promise<NodeJS.Signals>((resolveStop) => {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => resolveStop(signal));
});
const unlessStopped = <T>(work: Promise<T>): Promise<T> => Promise.race([work, stopSignal.then((signal) => Promise.reject(new Stopped(signal)))]);

async function main(): Promise<number> {
  const runtime = await chooseRuntime(opts.runtime);
  starting = startStack({
    runtime: runtime.kind,
    stateDir,
    ...(registryBinary ? { registryBinary } : {}),
    s3: s3Target(opts.s3, process.env),
    swiftRingsDir: join(stateDir, SWIFT_RINGS),
    kubelet: { tickMs: 100 },
    containerDataBytes: Math.round(opts.stateMib * 1024 * 1024),
    onS3Request: timeline.s3Request,
  });
  stack = await unlessStopped(starting);
  const s = stack;
  s.broker.onDelivery(timeline.observe);
  writeFileSync(envFile, liveEnvFile(envFile, s.env));
  out.write(
    [
      'kcr local mode',
      `  runtime      ${runtime.kind === 'podman' ? 'podman + runc, checkpoints by CRIU: real containers, real process memory' : 'simulated containers (a counter and a data block in this process; archives in CRI-O layout, no CRIU)'} (${runtime.reason})`,
      `  kubeconfig   ${s.cluster.kubeconfigPath}   (kubectl --kubeconfig ${s.cluster.kubeconfigPath} get pods,deployments,pingsources)`,
      `  broker       ${s.broker.url}`,
      `  S3           ${s.s3.description}  bucket ${s.env.KCR_S3_BUCKET}`,
      `  registry     ${s.registry.kind === 'docker-registry' ? `docker-registry ${s.registry.server.url}` : `OCI layout ${s.registry.dir} (docker-registry not installed)`}`,
      `  functions    ${[...s.functions].map(([n, f]) => `${n} ${f.url}`).join(', ')}`,
      `  logs         ${join(stateDir, 'logs')}/   CLI: source ${envFile} && npm run kcr -- events list (or: checkpoint deployment/counter)`,
      '',
    ].join('\n'),
  );
  const results = await unlessStopped(runDemo(s, { stepTimeoutMs: opts.stepTimeout * 1000, onStep: (r) => timeline.line(`${r.ok ? '✓' : '✗'} ${r.step}: ${r.detail}`) }));
  printSummary(results, runtime.kind);
  const ok = results.every((r) => r.ok);
  if (opts.once) {
    // Let the chain finish what the last ping started (an upload, a build) rather than cut
    // it off at exit; pings keep coming, so this waits for one quiet moment, at most 15 s.
    await unlessStopped(Promise.race([s.broker.idle(), new Promise((r) => setTimeout(r, 15_000).unref())]));
    return ok ? 0 : 1;
  }
  out.write(`\nThe chain keeps running: checkpoints every 10 s, events archived in S3. Ctrl-C stops it.\n`);
  await stopSignal;
  return ok ? 0 : 1;
}

function printSummary(results: StepResult[], runtime: string): void {
  timeline.stop();
  out.write(`\nruntime: ${runtime === 'podman' ? 'podman (real containers checkpointed and restored by CRIU)' : 'simulated'}`);
  out.write(
    `\n${formatTable(
      ['', 'step', 'seconds', 'detail'],
      results.map((r) => [r.ok ? '✓' : '✗', r.step, r.seconds.toFixed(1), r.detail]),
    )}`,
  );
  const counts = [...timeline.counts].sort(([a], [b]) => a.localeCompare(b));
  out.write(
    `\n${formatTable(
      ['event type', 'count'],
      counts.map(([t, n]) => [t, String(n)]),
    )}`,
  );
}

let code = 1;
try {
  code = await main();
} catch (err) {
  timeline.stop();
  if (err instanceof Stopped) {
    console.error(`kcr local mode: ${err.message} before the demo finished`);
    code = 128 + os.constants.signals[err.signal];
  } else {
    console.error(`kcr local mode failed: ${errorMessage(err)}`);
  }
} finally {
  // Stale first: the CLI must not call the ports while they close, nor after.
  if (stack) writeFileSync(envFile, staleEnvFile(envFile, stack.env, new Date()));
  // A stop during start-up waits for the start, so nothing it spawned outlives us.
  await (stack ?? (await starting?.catch(() => undefined)))?.stop();
}
process.exit(code);
