// `kcr` / `kubectl kcr` against the local stack, with nothing but a kubeconfig:
// S3 and the broker are discovered from ConfigMap kcr-system/kcr-config and
// Secret kcr-system/kcr-s3 (local/stack.ts installs them as manifests/ does).
// Run in-process for -o json, and through the real kubectl, which finds the
// plugin as an executable named kubectl-kcr on PATH (kubectl's plugin
// mechanism: k8s.io/kubectl/pkg/cmd/plugin, `kubectl-` prefix, dashes for spaces).
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../cli/run.js';
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { artifactKey } from '../../functions/core/storage/layout.js';
import type { ObjectStore } from '../../functions/core/storage/object-store.js';
import { readManifest, writeManifest } from '../../functions/core/storage/records.js';
import { deployment, runningPods } from '../../simulator/workloads.js';
import { optionalBinary } from '../support/binaries.js';
import { NS, OPT_IN, TEST_TIMINGS, useLocalStack } from '../support/local-stack.js';

const BIN = resolve(import.meta.dirname, '..', '..', 'cli', 'bin.mjs');

interface Run {
  code: number;
  out: string;
  err: string;
}

describe('kubectl kcr on the local stack', () => {
  const kit = useLocalStack('kubectl-kcr', { ...TEST_TIMINGS, nodes: ['node-a', 'node-b'] });
  let pluginDir: string;
  const kubectl = optionalBinary('kubectl');

  beforeAll(() => {
    pluginDir = mkdtempSync(join(tmpdir(), 'kcr-plugin-'));
    symlinkSync(BIN, join(pluginDir, 'kubectl-kcr'));
  });
  afterAll(() => rmSync(pluginDir, { recursive: true, force: true }));

  /** Only the kubeconfig: no S3 or broker variables. */
  const env = () => ({ KUBECONFIG: kit.stack.cluster.kubeconfigPath });

  async function kcr(...args: string[]): Promise<Run> {
    let out = '';
    let err = '';
    const code = await runCli(args, { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) }, env: env() });
    return { code, out, err };
  }

  /** `kubectl kcr …` as a user runs it: kubectl finds kubectl-kcr on PATH. */
  function viaKubectl(...args: string[]): Promise<Run> {
    return new Promise((done) => {
      execFile(
        kubectl ?? 'kubectl',
        ['kcr', ...args],
        { env: { PATH: `${pluginDir}:${process.env.PATH ?? ''}`, HOME: pluginDir, ...env() }, cwd: tmpdir(), timeout: 120_000 },
        (error, stdout, stderr) => done({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, out: stdout, err: stderr }),
      );
    });
  }

  const ids: string[] = [];
  let podName = '';

  it('says so when there are no checkpoints, and exits 0', async () => {
    const r = await kcr('get', 'checkpoints');
    expect(r).toMatchObject({ code: 0, out: '', err: 'No checkpoints found in default namespace.\n' });
  });

  it('lists checkpoints of a workload as kubectl get does, and as JSON', async () => {
    await kit.apps.createNamespacedDeployment({ namespace: NS, body: deployment({ name: 'counter', annotations: OPT_IN }) });
    const [pod] = await runningPods(kit.kube, NS, 'app=counter', 1);
    podName = pod!.metadata!.name!;
    kit.stack.cluster.setContainerState(NS, podName, 'app', { counter: 100_000 });
    ids.push(String((await kit.checkpoint(podName))[0]!.data.id));
    kit.stack.cluster.setContainerState(NS, podName, 'app', { counter: 500_000 });
    ids.push(String((await kit.checkpoint(podName))[0]!.data.id));

    const json = await kcr('get', 'checkpoints', 'deployment/counter', '-o', 'json');
    expect(json.code).toBe(0);
    const list = JSON.parse(json.out) as {
      kind: string;
      items: {
        metadata: { name: string; namespace: string };
        spec: { workload: object; container: string; pod: string };
        status: { state: string; size: number; image: { reference: string; digest: string } };
      }[];
    };
    expect(list.kind).toBe('CheckpointList');
    // Newest first.
    expect(list.items.map((i) => i.metadata.name)).toEqual([...ids].reverse());
    for (const item of list.items) {
      expect(item).toMatchObject({ metadata: { namespace: NS }, spec: { workload: { kind: 'Deployment', name: 'counter' }, container: 'app', pod: podName }, status: { state: 'committed' } });
      expect(item.status.size).toBeGreaterThan(0);
      expect(item.status.image.reference).toMatch(/@sha256:[0-9a-f]{64}$/);
    }

    const table = await kcr('get', 'checkpoints');
    expect(table.code).toBe(0);
    const [header, ...rows] = table.out.trimEnd().split('\n');
    expect(header!.split(/\s{2,}/)).toEqual(['WORKLOAD', 'CONTAINER', 'ID', 'AGE', 'SIZE', 'STATE', 'IMAGE']);
    expect(rows.map((r) => r.split(/\s+/))).toEqual(
      list.items.map((i) => [
        'deployment/counter',
        'app',
        i.metadata.name,
        expect.stringMatching(/^\d+s$/),
        expect.stringMatching(/^[\d.]+(Ki|Mi)?$/),
        'committed',
        i.status.image.digest.slice(0, 19),
      ]),
    );
    expect((await kcr('get', 'checkpoints', '-A')).out.split('\n')[0]).toMatch(/^NAMESPACE\s+WORKLOAD/);
    expect((await kcr('get', 'checkpoints', '-o', 'name')).out).toBe(`checkpoint/${ids[1]}\ncheckpoint/${ids[0]}\n`);
    expect((await kcr('get', 'checkpoints', 'statefulset/counter')).err).toContain('No checkpoints found');
    expect((await kcr('get', 'checkpoints', '-l', 'app=nothing', '-o', 'json')).out).toContain('"items": []');
    expect((await kcr('get', 'checkpoints', '-n', 'other')).err).toBe('No checkpoints found in other namespace.\n');
  });

  it('describes a checkpoint: manifest, image, CRIU statistics', async () => {
    const r = await kcr('describe', 'checkpoint', ids[0]!);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(new RegExp(`^Name:\\s+${ids[0]}$`, 'm'));
    expect(r.out).toMatch(/^Workload:\s+Deployment\/counter$/m);
    expect(r.out).toMatch(new RegExp(`^Pod:\\s+${podName} `, 'm'));
    expect(r.out).toMatch(/^Image:\s+\S+@sha256:[0-9a-f]{64} /m);
    expect(r.out).toContain('CRIU dump statistics:');
    const json = JSON.parse((await kcr('describe', 'checkpoint', ids[0]!, '-o', 'json')).out) as { status: { archiveDetails: { entries: number } } };
    expect(json.status.archiveDetails.entries).toBeGreaterThan(0);
  });

  it('inspects a checkpoint with range reads, never the pages, as checkpointctl inspect does', async () => {
    const store = kit.stack.store;
    const loc = { namespace: NS, workload: { kind: 'Deployment' as const, name: 'counter' }, container: 'app', id: ids[0]! };
    const archiveKey = artifactKey(loc, 'archive');
    const ranges: [number, number][] = [];
    const streamed: string[] = [];
    const counted: ObjectStore = Object.assign(Object.create(store) as ObjectStore, {
      getRange: (key: string, offset: number, length: number) => {
        if (key === archiveKey) ranges.push([offset, offset + length]);
        return store.getRange(key, offset, length);
      },
      getStream: (key: string) => {
        streamed.push(key);
        return store.getStream(key);
      },
    });
    const run = async (...args: string[]) => {
      let out = '';
      const code = await runCli(args, { stdout: { write: (x: string) => (out += x) }, stderr: { write: () => undefined }, env: env(), openStore: () => counted });
      return { code, out };
    };
    const manifest = (await readManifest(store, loc))!;
    const pages = manifest.archive.index!.find((e) => e.name === 'checkpoint/pages-1.img')!;
    expect(pages.size).toBeGreaterThan(0);

    const r = await run('inspect', ids[0]!, '-o', 'json');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.out) as Record<string, unknown> & { kcr: { processes: { pid: number; memoryBytes: number }[]; rootfsChanges: { path: string }[]; reads: { index: string } } };
    expect(streamed).toEqual([]);
    expect(ranges.length).toBeGreaterThan(0);
    // Of the pages only the bytes of argv and environ (two small ranges inside the last page).
    const inPages = ranges.filter(([a, b]) => a < pages.offset + pages.size && b > pages.offset);
    expect(inPages).toHaveLength(2);
    expect(inPages.reduce((n, [a, b]) => n + b - a, 0)).toBeLessThan(4096);
    expect(report.kcr.reads.index).toBe('manifest.json');
    expect(report.kcr.processes).toEqual([expect.objectContaining({ pid: 1, ppid: 0, memoryBytes: pages.size })]);
    expect(report.kcr.rootfsChanges.map((f) => f.path)).toContain('tmp/kcr-sim');
    // The command line and environment from the process's memory, its descriptors from fdinfo-1.img and files.img.
    const detail = report as unknown as {
      process_tree: { cmdline: string; environment_variables: Record<string, string> };
      file_descriptors: { pid: number; open_files: { fd: string; path: string }[] }[];
      kcr: { command: string[] };
    };
    expect(detail.process_tree.cmdline).toBe(`${detail.kcr.command.join(' ')} `);
    expect(detail.process_tree.environment_variables).toMatchObject({ HOSTNAME: podName });
    expect(detail.file_descriptors).toEqual([
      {
        pid: 1,
        open_files: expect.arrayContaining([
          { type: 'REG', fd: 'REG 1', path: '/dev/null' },
          { type: '', fd: 'cwd', path: '/' },
        ]),
      },
    ]);

    // An archive stored without an index (before store-artifact recorded one): the tar headers are walked instead.
    const { index: _index, ...archive } = manifest.archive;
    await writeManifest(store, loc, { ...manifest, archive });
    ranges.length = 0;
    const walked = JSON.parse((await run('inspect', ids[0]!, '-o', 'json')).out) as typeof report;
    await writeManifest(store, loc, manifest);
    expect(walked.kcr.reads.index).toBe('tar headers');
    expect(ranges.filter(([a, b]) => a < pages.offset + pages.size && b > pages.offset)).toHaveLength(2);
    const { kcr: walkedKcr, ...walkedRest } = walked;
    const { kcr: indexedKcr, ...indexedRest } = report;
    expect(walkedRest).toEqual(indexedRest);
    expect(walkedKcr.processes).toEqual(indexedKcr.processes);

    const checkpointctl = optionalBinary('checkpointctl');
    if (!checkpointctl) return;
    const file = join(pluginDir, 'archive.tar');
    await pipeline(await store.getStream(archiveKey), createWriteStream(file));
    const theirs = await new Promise<string>((done, fail) =>
      execFile(checkpointctl, ['inspect', file, '--format', 'json', '--all'], (err, stdout, stderr) => (err ? fail(new Error(`${err.message}: ${stderr}`)) : done(stdout))),
    );
    const [expected] = JSON.parse(theirs) as Record<string, unknown>[];
    const { kcr: _kcr, ...ours } = report;
    expect(ours).toEqual(expected);
  });

  it('pins and unpins through a pin.json record in S3', async () => {
    const pin = await kcr('pin', ids[0]!, '--reason', 'before v2');
    expect(pin).toMatchObject({ code: 0, out: `checkpoint/${ids[0]} pinned\n` });
    const loc = { namespace: NS, workload: { kind: 'Deployment' as const, name: 'counter' }, container: 'app', id: ids[0]! };
    expect(await kit.stack.store.getJson(artifactKey(loc, 'pin'))).toMatchObject({ id: ids[0], reason: 'before v2' });
    expect((await kcr('pin', ids[0]!)).out).toBe(`checkpoint/${ids[0]} unchanged (already pinned)\n`);
    const states = JSON.parse((await kcr('get', 'checkpoints', '-o', 'json')).out) as { items: { metadata: { name: string }; status: { state: string } }[] };
    expect(Object.fromEntries(states.items.map((i) => [i.metadata.name, i.status.state]))).toEqual({ [ids[0]!]: 'pinned', [ids[1]!]: 'committed' });
    expect((await kcr('unpin', ids[0]!)).out).toBe(`checkpoint/${ids[0]} unpinned\n`);
    expect(await kit.stack.store.stat(artifactKey(loc, 'pin'))).toBeUndefined();
  });

  it('restores a workload to an older checkpoint, which continues from that checkpoint’s state', async () => {
    const dry = await kcr('restore', 'deployment/counter', '--to', ids[0]!, '--dry-run', '-o', 'json');
    expect(dry.code).toBe(0);
    expect(JSON.parse(dry.out)).toMatchObject({ status: 'dry-run', pods: [{ pod: podName, container: 'app', result: 'requested' }] });
    expect(kit.of('io.kcr.restore.requested')).toHaveLength(0);

    const r = await kcr('restore', 'deployment/counter', '--to', ids[0]!, '-o', 'json', '--timeout', '60s');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ status: 'restored', checkpoint: { id: ids[0] }, pods: [{ pod: podName, result: 'restored' }] });
    const s = kit.stack.cluster.containerState(NS, podName, 'app');
    // The kubelet runs the image restore-pod reported: the older checkpoint's, by digest.
    expect(s?.restoredFrom).toBe(kit.of('io.kcr.pod.restored', podName).at(-1)?.data.image);
    expect(s?.restoredFrom).toBe((kit.of('io.kcr.image.built').find((e) => e.data.id === ids[0])?.data.image as { reference?: string } | undefined)?.reference);
    // The first checkpoint's counter (100 000 and what it counted before), not the second's 500 000.
    expect(s!.counter).toBeGreaterThanOrEqual(100_000);
    expect(s!.counter).toBeLessThan(500_000);
    expect(kit.of('io.kcr.pod.restored', podName).at(-1)?.data).toMatchObject({ checkpointId: ids[0], strategy: 'in-place' });
    // Again: it already runs from it, nothing is sent.
    const again = await kcr('restore', podName, '--to', ids[0]!);
    expect(again.code).toBe(0);
    expect(again.out).toMatch(/unchanged\s+already runs from/);
  });

  it("prunes by the workload's retention annotations, never a pinned checkpoint", async () => {
    await kit.apps.createNamespacedDeployment({
      namespace: NS,
      body: deployment({ name: 'trimmed', annotations: { ...OPT_IN, 'kcr.io/checkpoint-retention': '1', 'kcr.io/checkpoint-retention-bytes': '1Gi' } }),
    });
    const [pod] = await runningPods(kit.kube, NS, 'app=trimmed', 1);
    const name = pod!.metadata!.name!;
    const first = String((await kit.checkpoint(name))[0]!.data.id);
    expect((await kcr('pin', first)).code).toBe(0);
    const second = String((await kit.checkpoint(name))[0]!.data.id);
    const third = String((await kit.checkpoint(name))[0]!.data.id);
    const list = async () => JSON.parse((await kcr('get', 'checkpoints', 'trimmed', '-o', 'json')).out) as { items: { metadata: { name: string }; status: { state: string } }[] };
    // Retention runs after each build: the second goes when the third is built.
    const items = await kit.until('the second pruned', async () => {
      const l = await list();
      return l.items.length === 2 ? l.items : undefined;
    });
    expect(items.map((i) => [i.metadata.name, i.status.state])).toEqual([
      [third, 'committed'],
      [first, 'pinned'],
    ]);
    expect(second).not.toBe(third);
  });

  it('shows status: opted-in containers, their last checkpoint, restores, space used', async () => {
    type Status = {
      containers: { workload: string; container: string; lastCheckpoint?: { id: string }; late: boolean; checkpoints: number }[];
      restores: { data: { checkpointId: string } }[];
      storage: { checkpoints: number; bytes: number; pinned: number };
    };
    // event-archive writes pod.restored to S3 after the broker delivered it.
    const s = await kit.until('the restore in the archive', async () => {
      const r = JSON.parse((await kcr('status', '-o', 'json')).out) as Status;
      return r.restores.length > 0 ? r : undefined;
    });
    expect(s.containers.find((c) => c.workload === 'deployment/counter')).toMatchObject({ container: 'app', lastCheckpoint: { id: ids[1] }, late: false, checkpoints: 2 });
    expect(s.restores.map((r) => r.data.checkpointId)).toContain(ids[0]);
    expect(s.storage).toMatchObject({ checkpoints: 4, pinned: 1 });
    expect(s.storage.bytes).toBeGreaterThan(0);
    const text = await kcr('status');
    expect(text.code).toBe(0);
    expect(text.out).toMatch(/^WORKLOADS \(namespace default, 2 opted in\)$/m);
    expect(text.out).toMatch(/^STORAGE {2}s3:\/\/kcr-checkpoints: 4 checkpoints, /m);
  });

  it('refuses with exit 1 what it cannot restore, and exit 2 a wrong command line', async () => {
    expect(await kcr('restore', 'statefulset/counter', '--to', ids[0]!)).toMatchObject({ code: 1, err: expect.stringContaining('belongs to Deployment/counter, not statefulset/counter') });
    expect(await kcr('describe', 'checkpoint', '20200101T000000Z-0123456789ab')).toMatchObject({ code: 1, err: expect.stringContaining('not found') });
    expect((await kcr('restore', podName)).code).toBe(2);
    expect((await kcr('get', 'checkpoints', '-o', 'table')).code).toBe(2);
    expect((await kcr('get', 'pods')).code).toBe(2);
    expect(await kcr('get', 'checkpoints', '--context', 'nope')).toMatchObject({ code: 2, err: expect.stringContaining('context "nope" does not exist') });
  });

  it('runs as kubectl kcr, with kubectl-style help', async () => {
    const help = await viaKubectl('--help');
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/^Usage: kubectl kcr /m);
    expect(help.out).toContain('kubectl kcr get checkpoints');
    const get = await viaKubectl('get', 'checkpoints', 'counter', '-o', 'json');
    expect(get.code).toBe(0);
    expect((JSON.parse(get.out) as { items: { metadata: { name: string } }[] }).items.map((i) => i.metadata.name)).toEqual([...ids].reverse());
    const missing = await viaKubectl('describe', 'checkpoint', '20200101T000000Z-0123456789ab');
    expect(missing.code).toBe(1);
    expect((await viaKubectl('get')).code).toBe(2);
    // Each run starts Node and tsx: slow on a loaded machine.
  }, 120_000);

  it('watches: lists, then prints each new checkpoint, until interrupted', async () => {
    let out = '';
    const stop = new AbortController();
    const watching = runCli(['get', 'checkpoints', 'counter', '-w'], { stdout: { write: (x: string) => (out += x) }, stderr: { write: () => undefined }, env: env(), signal: stop.signal });
    await kit.until('the listing', () => out.includes(ids[1]!));
    const extra = String((await kit.checkpoint(podName))[0]!.data.id);
    await kit.until('the new checkpoint printed', () => out.includes(extra));
    stop.abort();
    expect(await watching).toBe(0);
    const lines = out.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^WORKLOAD\s+CONTAINER/);
    // The header once, then the new row alone.
    expect(lines.filter((l) => l.startsWith('WORKLOAD'))).toHaveLength(1);
    expect(lines.at(-1)).toMatch(new RegExp(`^deployment/counter\\s+app\\s+${extra}\\s+\\d+s\\s+\\S+\\s+committed\\s+sha256:`));
  });
});
