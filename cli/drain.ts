// `kcr drain NODE`: `kubectl drain` with checkpoints. Every opted-in container
// on the node is checkpointed now (io.kcr.checkpoint.requested per pod) and
// kcr waits until each checkpoint is committed with its image built; then the
// node is cordoned and its pods evicted through the eviction API, which
// honours PodDisruptionBudgets (429: retried until --timeout, as kubectl
// drain does). restore-pod gives each replacement the checkpoint of the pod
// it replaces, on another node; kcr waits for that and prints what moved with
// its state, and what did not and why. Exit 1 when anything did not move.
// On a terminal each container has a progress bar (drain-progress.ts).
import { ApiException, PatchStrategy, setHeaderOptions, type V1Pod } from '@kubernetes/client-node';
import { Option, type Command } from 'commander';
import { events } from '../functions/core/contract/build.js';
import { ANNOTATIONS, isOptedIn, parseContainerList } from '../functions/core/kubernetes/annotations.js';
import { podOwner } from '../functions/core/kubernetes/pods.js';
import { statusMessage } from '../functions/core/kubernetes/errors.js';
import { restoredFromKey } from '../functions/restore-pod/restore-state.js';
import { addKubeFlags } from './kube.js';
import { addSettingsFlags, commandContext, type CommandContext } from './context.js';
import { listCheckpoints } from './inventory.js';
import { durationMs } from './restore.js';
import { send, toBinary } from './replay.js';
import { API_VERSION, examples, printOne, table } from './output.js';
import type { CliIo } from './io.js';
import { drainProgress, type DrainProgress } from './drain-progress.js';

const POLL_MS = 250;
const SEND_TIMEOUT_MS = 30_000;

const EXAMPLES = `
Examples:
  # checkpoint what runs on node-a, then cordon it and evict its pods; replacements restore elsewhere
  %s drain node-a

  # give up on what has not moved after 10 minutes, and print the outcome as JSON
  %s drain node-a --timeout 10m -o json`;

interface DrainFlags {
  timeout: number;
}

export interface Moved {
  namespace: string;
  pod: string;
  container: string;
  result: 'moved' | 'evicted' | 'not-evicted' | 'failed';
  checkpoint?: string;
  replacement?: { pod: string; node: string };
  message: string;
}

export function addDrainCommand(program: Command, io: CliIo): void {
  const cmd = program
    .command('drain')
    .description('checkpoint the opted-in containers on a node, cordon it, evict its pods (PDBs honoured); replacements restore elsewhere')
    .argument('<node>', 'the node to drain')
    .addOption(new Option('--timeout <duration>', 'how long each stage may take (checkpoints, evictions, replacements)').argParser(durationMs).default(300_000, '5m'))
    .addHelpText('after', examples(io, EXAMPLES))
    .action(async (node: string, opts: DrainFlags, c: Command) => drain(commandContext(io, c), node, opts));
  addSettingsFlags(addKubeFlags(cmd, { output: true }), { broker: true });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const key = (p: V1Pod) => `${p.metadata?.namespace ?? ''}/${p.metadata?.name ?? ''}`;

/** Pods kubectl drain leaves alone: DaemonSet pods (their controller ignores cordons), mirror pods, and pods that ended. */
function skipped(p: V1Pod): string | undefined {
  if (p.metadata?.ownerReferences?.some((o) => o.kind === 'DaemonSet')) return 'DaemonSet pod';
  if (p.metadata?.annotations?.['kubernetes.io/config.mirror']) return 'mirror pod';
  if (p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed') return 'ended';
  return undefined;
}

async function optedInContainers(ctx: CommandContext, pod: V1Pod): Promise<string[]> {
  const owner = podOwner(pod);
  const ns = pod.metadata?.namespace ?? 'default';
  let annotations = pod.metadata?.annotations ?? {};
  let opted = isOptedIn(pod.metadata);
  if (!opted && owner.kind !== 'Pod') {
    const w = await ctx.kube.getWorkload(ns, owner.kind, owner.name);
    opted = isOptedIn(w?.metadata, w?.spec?.template?.metadata);
    annotations = w?.metadata?.annotations ?? {};
  }
  if (!opted) return [];
  const all = (pod.spec?.containers ?? []).map((c) => c.name);
  const chosen = parseContainerList(annotations[ANNOTATIONS.containers]);
  return chosen ? all.filter((c) => chosen.includes(c)) : all;
}

async function drain(ctx: CommandContext, node: string, opts: DrainFlags): Promise<void> {
  const progress = drainProgress(ctx.io.stderr, Boolean(ctx.flags.output));
  try {
    await drainWith(ctx, node, opts, progress);
  } finally {
    progress.done();
  }
}

async function drainWith(ctx: CommandContext, node: string, opts: DrainFlags, progress: DrainProgress): Promise<void> {
  const log = (line: string) => progress.note(line);
  await ctx.kube.core.readNode({ name: node }).catch((err: unknown) => {
    throw err instanceof ApiException && err.code === 404 ? new Error(`node "${node}" not found`) : err;
  });
  const all = (await ctx.kube.core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${node}` })).items;
  const pods = all.filter((p) => !skipped(p));
  for (const p of all.filter(skipped)) log(`skipping ${key(p)}: ${skipped(p)}`);
  const started = Date.now();
  const since = new Date(Math.floor(started / 1000) * 1000 - 1000).toISOString();

  // 1. Checkpoint every opted-in container, and wait for its image.
  const wanted = new Map<string, { pod: V1Pod; containers: string[]; ids: Map<string, string> }>();
  for (const p of pods) {
    const containers = await optedInContainers(ctx, p);
    if (containers.length) wanted.set(key(p), { pod: p, containers, ids: new Map() });
  }
  if (wanted.size) {
    progress.start([...wanted.values()].flatMap((w) => w.containers.map((container) => ({ pod: key(w.pod), container }))));
    const broker = await ctx.broker();
    for (const w of wanted.values()) {
      const ns = w.pod.metadata?.namespace ?? 'default';
      const sent = await send(broker, toBinary(events.checkpointRequested({ namespace: ns, pod: w.pod.metadata?.name ?? '' }, { source: 'cli' })), ctx.io.fetch ?? fetch, SEND_TIMEOUT_MS);
      if (!sent.ok) throw new Error(`checkpoint request for ${key(w.pod)} not accepted by ${broker}: ${sent.status ?? ''} ${sent.error ?? ''}`);
      const [first, ...rest] = w.containers;
      progress.stage(key(w.pod), first!, 'requested', 'checkpoint requested', `checkpoint requested: ${key(w.pod)} (${w.containers.join(', ')})`);
      for (const c of rest) progress.stage(key(w.pod), c, 'requested', 'checkpoint requested');
    }
    const store = await ctx.store();
    const total = [...wanted.values()].reduce((n, w) => n + w.containers.length, 0);
    let done = 0;
    while (done < total && Date.now() - started < opts.timeout) {
      const namespaces = new Set([...wanted.values()].map((w) => w.pod.metadata?.namespace ?? 'default'));
      for (const ns of namespaces) {
        for (const c of await listCheckpoints(store, ns)) {
          const w = [...wanted.values()].find((x) => x.pod.metadata?.uid === c.manifest.data.podUid);
          if (!w || !w.containers.includes(c.loc.container) || w.ids.has(c.loc.container) || c.manifest.data.checkpointedAt < since) continue;
          if (!c.image) {
            progress.stage(key(w.pod), c.loc.container, 'stored', `stored ${c.loc.id}, building its image`);
            continue;
          }
          w.ids.set(c.loc.container, c.loc.id);
          done++;
          progress.stage(key(w.pod), c.loc.container, 'image built', `committed ${c.loc.id}, image built`, `[${done}/${total}] ${key(w.pod)} ${c.loc.container}: committed ${c.loc.id}, image built`);
        }
      }
      if (done < total) await sleep(POLL_MS);
    }
  }

  // 2. Cordon.
  await ctx.kube.core.patchNode({ name: node, body: { spec: { unschedulable: true } } }, setMergePatch());
  log(`node/${node} cordoned`);

  // 3. Evict, retrying what a budget holds back.
  const outcomes: Moved[] = [];
  const pending = new Map(pods.map((p) => [key(p), p]));
  const refusals = new Map<string, string>();
  const evictStart = Date.now();
  while (pending.size && Date.now() - evictStart < opts.timeout) {
    for (const [k, p] of [...pending]) {
      const ns = p.metadata?.namespace ?? 'default';
      const name = p.metadata?.name ?? '';
      const w = wanted.get(k);
      if (w && w.containers.some((c) => !w.ids.has(c))) {
        // Evicting it now would lose its state: it stays, and the summary says why.
        pending.delete(k);
        for (const c of w.containers) progress.stopped(k, c, 'no checkpoint in time: not evicted');
        for (const c of w.containers)
          outcomes.push({
            namespace: ns,
            pod: name,
            container: c,
            result: 'not-evicted',
            message: w.ids.has(c) ? 'another container of the pod has no checkpoint' : `no checkpoint committed within ${Math.round(opts.timeout / 1000)}s`,
          });
        continue;
      }
      try {
        await ctx.kube.core.createNamespacedPodEviction({ name, namespace: ns, body: { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name, namespace: ns } } });
        pending.delete(k);
        if (w) w.containers.forEach((c, i) => progress.stage(k, c, 'evicted', 'evicted, waiting for its replacement', i === 0 ? `evicted ${k}` : undefined));
        else log(`evicted ${k}`);
      } catch (err) {
        if (err instanceof ApiException && err.code === 404) {
          pending.delete(k);
          continue;
        }
        if (err instanceof ApiException && err.code === 429) {
          if (!refusals.has(k)) log(`${k}: eviction refused (${statusMessage(err.body)}), retrying`);
          refusals.set(k, statusMessage(err.body));
          continue;
        }
        throw err;
      }
    }
    if (pending.size) await sleep(1000);
  }
  for (const [k, p] of pending) {
    const w = wanted.get(k);
    for (const c of w?.containers ?? []) progress.stopped(k, c, `not evicted: ${refusals.get(k) ?? 'not in time'}`);
    for (const c of w?.containers ?? ['*'])
      outcomes.push({ namespace: p.metadata?.namespace ?? '', pod: p.metadata?.name ?? '', container: c, result: 'not-evicted', message: refusals.get(k) ?? 'not evicted in time' });
  }

  // 4. Wait for the replacements of the checkpointed pods to run from their checkpoints elsewhere.
  const evicted = pods.filter((p) => !pending.has(key(p)) && !outcomes.some((o) => `${o.namespace}/${o.pod}` === key(p)));
  const waitStart = Date.now();
  for (const p of evicted) {
    const ns = p.metadata?.namespace ?? 'default';
    const name = p.metadata?.name ?? '';
    const w = wanted.get(key(p));
    if (!w) {
      outcomes.push({ namespace: ns, pod: name, container: '*', result: 'evicted', message: 'not opted in: its controller starts it afresh' });
      continue;
    }
    const owner = podOwner(p);
    for (const c of w.containers) {
      const id = w.ids.get(c)!;
      let found: V1Pod | undefined;
      while (!found && Date.now() - waitStart < opts.timeout) {
        found = (await ctx.kube.listPods(ns)).find((r) => {
          const o = podOwner(r);
          return (
            o.kind === owner.kind &&
            o.name === owner.name &&
            r.metadata?.uid !== p.metadata?.uid &&
            r.metadata?.annotations?.[restoredFromKey(c)] === id &&
            r.spec?.nodeName !== node &&
            r.status?.containerStatuses?.find((s) => s.name === c)?.state?.running
          );
        });
        if (!found) await sleep(POLL_MS);
      }
      if (found) progress.stage(key(p), c, 'moved', `✓ ${found.metadata?.name ?? ''} on ${found.spec?.nodeName ?? ''} from ${id}`);
      else progress.stopped(key(p), c, `no replacement from ${id} in time`);
      outcomes.push(
        found
          ? {
              namespace: ns,
              pod: name,
              container: c,
              result: 'moved',
              checkpoint: id,
              replacement: { pod: found.metadata?.name ?? '', node: found.spec?.nodeName ?? '' },
              message: `restored from ${id}`,
            }
          : { namespace: ns, pod: name, container: c, result: 'failed', checkpoint: id, message: `no replacement running from ${id} on another node within ${Math.round(opts.timeout / 1000)}s` },
      );
    }
  }

  const failed = outcomes.filter((o) => o.result === 'not-evicted' || o.result === 'failed');
  const format = ctx.flags.output;
  if (format === 'json' || format === 'yaml') ctx.io.stdout.write(printOne({ apiVersion: API_VERSION, kind: 'DrainReport', node, cordoned: true, pods: outcomes }, format));
  else
    ctx.io.stdout.write(
      table(
        ['NAMESPACE', 'POD', 'CONTAINER', 'RESULT', 'CHECKPOINT', 'NOW', 'MESSAGE'],
        outcomes.map((o) => [o.namespace, o.pod, o.container, o.result, o.checkpoint ?? '', o.replacement ? `${o.replacement.pod} on ${o.replacement.node}` : '', o.message]),
      ),
    );
  if (failed.length)
    throw new Error(
      `node/${node} cordoned, but ${failed.length} of ${outcomes.length} containers did not move: ${failed.map((f) => `${f.namespace}/${f.pod}/${f.container}: ${f.message}`).join('; ')}`,
    );
}

function setMergePatch() {
  return setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
}
