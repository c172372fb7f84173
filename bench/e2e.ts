// `npm run bench:e2e`: kcr end to end on real containers (the local stack on the podman
// runtime: runc, CRIU), for a process holding 64 MiB and 256 MiB of memory (`--sizes` in
// MiB, e.g. `--sizes 64,256,1024`). For each size, side by side in one run on the same
// running container:
//   floor   podman's own `container checkpoint --export --compress=none --leave-running`
//           and `container restore --import` of that container (what the runtime alone costs);
//   kcr     checkpoint.requested → checkpoint.created (kubelet call: CRIU dump + export)
//           → stored (store-artifact: node-agent → S3) → image built (build-image: S3 →
//           registry); then a kill → pod.restored (restore-pod's patch, after the kubelet
//           restarted it cold) → running restored (the kubelet's pull, then podman restore);
//   cold    a fresh container of the same image until it is ready again (its state lost).
// The workload is the demo's counter: a busybox shell holding random bytes as base64 in
// its own memory (so 3/4 of the size in random bytes). Prints one table of seconds and
// ratios; every function runs in this one process here (bench:artifacts measures their
// RSS one process each), so the peak RSS printed is the whole local stack's.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppsV1Api, CoreV1Api } from '@kubernetes/client-node';
import { Command } from 'commander';
import { events as build } from '../functions/core/contract/build.js';
import type { ImageBuiltData } from '../functions/core/contract/events.js';
import { artifactKey } from '../functions/core/storage/layout.js';
import { findBinary } from '../local/binaries.js';
import { startStack, type Stack } from '../local/stack.js';
import { chooseRuntime, COUNTER_IMAGE } from '../simulator/podman/engine.js';
import { MiB, mib, procStatusBytes, seconds } from './support.js';

const opts = new Command('bench-e2e').option('--sizes <list>', 'memory each container holds, MiB, comma-separated', '64,256').parse().opts<{ sizes: string }>();
const sizes = opts.sizes.split(',').map((s) => Number(s.trim()));
if (sizes.some((n) => !Number.isFinite(n) || n <= 0)) throw new Error(`--sizes: positive numbers of MiB, got "${opts.sizes}"`);

const NS = 'default';

interface Row {
  size: number;
  archiveBytes: number;
  floorCheckpointMs: number;
  floorRestoreMs: number;
  floorArchiveBytes: number;
  criuFrozenMs: number;
  createdMs: number;
  storedMs: number;
  builtMs: number;
  restorePodMs: number;
  pullMs: number;
  runtimeRestoreMs: number;
  restoredMs: number;
  coldMs: number;
}

async function until<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 300_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`bench: no ${what} within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function main(): Promise<void> {
  const runtime = await chooseRuntime('podman');
  const dir = mkdtempSync(join(tmpdir(), 'kcr-bench-e2e-'));
  const registryBinary = findBinary('docker-registry');
  let stack: Stack | undefined;
  try {
    stack = await startStack({ stateDir: dir, runtime: runtime.kind, ...(registryBinary ? { registryBinary } : {}), kubelet: { tickMs: 500 } });
    const s = stack;
    const seen: { type: string; at: number; data: Record<string, unknown> }[] = [];
    s.broker.onDelivery((o) => {
      if (o.kind === 'received') seen.push({ type: o.event.attributes.type ?? '', at: performance.now(), data: JSON.parse(o.event.data?.toString('utf8') ?? 'null') as Record<string, unknown> });
    });
    const apps = s.cluster.kubeConfig.makeApiClient(AppsV1Api);
    const core = s.cluster.kubeConfig.makeApiClient(CoreV1Api);
    const podman = s.podman!;
    const rows: Row[] = [];
    for (const size of sizes) {
      const name = `bench-${size}`;
      const stateBytes = String(Math.floor((size * MiB * 3) / 4));
      const env = [{ name: 'KCR_STATE_BYTES', value: stateBytes }];
      process.stderr.write(`${size} MiB: starting the container\n`);
      await apps.createNamespacedDeployment({
        namespace: NS,
        body: {
          metadata: { name, annotations: { 'kcr.io/checkpoint-restore-schedule': '0 0 1 1 *' } },
          spec: {
            replicas: 1,
            selector: { matchLabels: { app: name } },
            template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'app', image: 'quay.io/kcr/counter:1', env }] } },
          },
        },
      });
      const pod = await until('a running pod holding its data', async () => {
        const pods = await core.listNamespacedPod({ namespace: NS, labelSelector: `app=${name}` });
        const p = pods.items.find((x) => x.status?.phase === 'Running')?.metadata?.name;
        return p && (s.cluster.containerState(NS, p, 'app')?.counter ?? 0) >= 1 ? p : undefined;
      });
      const id = s.cluster.containerState(NS, pod, 'app')!.containerID.replace('cri-o://', '');

      process.stderr.write(`${size} MiB: podman's own checkpoint and restore\n`);
      const floorFile = join(dir, `floor-${size}.tar`);
      let t = performance.now();
      await podman.run(['container', 'checkpoint', '--export', floorFile, '--compress', 'none', '--leave-running', id]);
      const floorCheckpointMs = performance.now() - t;
      const floorArchiveBytes = statSync(floorFile).size;
      t = performance.now();
      await podman.run(['container', 'restore', '--import', floorFile, '--name', `floor-${size}`]);
      const floorRestoreMs = performance.now() - t;
      await podman.run(['rm', '--force', '--time', '0', `floor-${size}`]);
      rmSync(floorFile, { force: true });

      process.stderr.write(`${size} MiB: kcr checkpoint → stored → image built\n`);
      const from = seen.length;
      const requested = performance.now();
      await s.broker.publish(build.checkpointRequested({ namespace: NS, pod }, { source: 'bench' }));
      const at = (type: string) => until(type, () => seen.slice(from).find((e) => e.type === type && e.data.pod === pod));
      const created = await at('io.kcr.checkpoint.created');
      const stored = await at('io.kcr.checkpoint.stored');
      const built = await at('io.kcr.image.built');
      const b = built.data as unknown as ImageBuiltData;
      const manifest = (await s.store.getJson(artifactKey({ namespace: b.namespace, workload: b.workload, container: b.container, id: b.id }, 'manifest'))) as {
        archive?: { criuDumpStats?: { decoded: boolean; dump?: Record<string, number> } };
      };
      const frozen = manifest.archive?.criuDumpStats?.dump?.frozen_time ?? 0;

      process.stderr.write(`${size} MiB: kill → restored\n`);
      const killed = performance.now();
      s.cluster.killContainer(NS, pod, 'app');
      const patched = await at('io.kcr.pod.restored');
      const restored = await until('the container running restored', () => {
        const st = s.cluster.containerState(NS, pod, 'app');
        return st?.running && st.restoredFrom ? { st, at: performance.now() } : undefined;
      });

      process.stderr.write(`${size} MiB: cold start\n`);
      t = performance.now();
      const cold = (await podman.run(['run', '--detach', '--network', 'none', '--env', `KCR_STATE_BYTES=${stateBytes}`, COUNTER_IMAGE])).trim();
      await until('the cold container counting', async () => /counter=1\b/.test(await podman.run(['logs', cold])));
      const coldMs = performance.now() - t;
      await podman.run(['rm', '--force', '--time', '0', cold]);
      await apps.deleteNamespacedDeployment({ namespace: NS, name });

      rows.push({
        size,
        archiveBytes: b.artifact.size,
        floorCheckpointMs,
        floorRestoreMs,
        floorArchiveBytes,
        criuFrozenMs: frozen / 1000,
        createdMs: created.at - requested,
        storedMs: stored.at - created.at,
        builtMs: built.at - stored.at,
        restorePodMs: patched.at - killed,
        pullMs: restored.st.startTimings?.pullMs ?? NaN,
        runtimeRestoreMs: restored.st.startTimings?.runtimeMs ?? NaN,
        restoredMs: restored.at - patched.at,
        coldMs,
      });
    }
    print(rows);
  } finally {
    await stack?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

function print(rows: Row[]): void {
  const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
  const table = (header: string[], body: string[][]) => [header, header.map(() => '---:'), ...body].map((r) => `| ${r.join(' | ')} |`).join('\n');
  const out = table(
    [
      'memory MiB',
      "archive MiB (podman's)",
      'podman checkpoint --export s',
      'kcr → created s (CRIU frozen)',
      '→ stored s',
      '→ built s',
      'kcr checkpoint s',
      'kcr / podman',
      'podman restore --import s',
      'kill → patched s',
      'pull s',
      'restore in kcr s',
      'patched → running s',
      'kcr restore s',
      'kcr / podman',
      'cold start s',
    ],
    rows.map((r) => {
      const kcrCheckpoint = r.createdMs + r.storedMs + r.builtMs;
      const kcrRestore = r.restorePodMs + r.restoredMs;
      return [
        String(r.size),
        `${mib(r.archiveBytes)} (${mib(r.floorArchiveBytes)})`,
        seconds(r.floorCheckpointMs),
        `${seconds(r.createdMs)} (${seconds(r.criuFrozenMs)})`,
        seconds(r.storedMs),
        seconds(r.builtMs),
        seconds(kcrCheckpoint),
        ratio(kcrCheckpoint, r.floorCheckpointMs),
        seconds(r.floorRestoreMs),
        seconds(r.restorePodMs),
        seconds(r.pullMs),
        seconds(r.runtimeRestoreMs),
        seconds(r.restoredMs),
        seconds(kcrRestore),
        ratio(kcrRestore, r.floorRestoreMs),
        seconds(r.coldMs),
      ];
    }),
  );
  process.stdout.write(`${out}\n\npeak RSS of the local stack (every function, the simulator, the broker; one process): ${mib(procStatusBytes('VmHWM'))} MiB\n`);
}

await main();
