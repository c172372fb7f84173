// `kcr restore POD|WORKLOAD --to ID`: restore to a chosen checkpoint (the one
// before a bad deploy, say). kcr checks what it can first (the checkpoint is
// restorable, of the target's own workload and container), sends
// io.kcr.restore.requested to the broker, and waits for restore-pod's answer
// as the pods show it: the restore annotations and the container running the
// checkpoint image, or a Warning Event naming the checkpoint.
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { CoreV1Event, V1Pod } from '@kubernetes/client-node';
import { events } from '../functions/core/contract/build.js';
import type { RestoreRequestedData, WorkloadKind } from '../functions/core/contract/events.js';
import { podOwner } from '../functions/core/kubernetes/pods.js';
import { readRestoreState } from '../functions/restore-pod/restore-state.js';
import { addKubeFlags } from './kube.js';
import { addSettingsFlags, commandContext, fromS3, type CommandContext } from './context.js';
import { findCheckpoint, type CheckpointInfo } from './inventory.js';
import { NotFound } from './get.js';
import { API_VERSION, printOne, table, examples } from './output.js';
import { send, toBinary } from './replay.js';
import { UsageError } from './errors.js';
import { parseKindName } from './workload-ref.js';
import type { CliIo } from './io.js';

const SEND_TIMEOUT_MS = 30_000;
const POLL_MS = 250;
/** Events stamped a little before the request was sent (clock skew) still answer it. */
const SKEW_MS = 2000;
const REFUSALS = new Set(['RestoreRefused', 'RestoreFailed', 'RestoreUnsupported']);

const EXAMPLES = `
Examples:
  # put pod db-0 back on the checkpoint taken before the bad deploy, and wait until it runs from it
  %s restore db-0 --to 20250131T120000Z-0123456789ab -n shop

  # every pod of a Deployment; show what would happen, send nothing
  %s restore deployment/web --to 20250131T120000Z-0123456789ab --dry-run

  # send the request and return at once
  %s restore sts/db --to 20250131T120000Z-0123456789ab --no-wait -o json`;

interface RestoreFlags {
  to: string;
  dryRun?: boolean;
  wait: boolean;
  timeout: number;
}

type Target = { kind: 'Pod'; name: string } | { kind: WorkloadKind; name: string };

/** `30s`, `2m`, `1h` or seconds. */
export function durationMs(value: string): number {
  const m = /^(\d+)(ms|s|m|h)?$/.exec(value);
  if (!m) throw new InvalidArgumentError('must be a duration: 30s, 2m, 1h');
  const n = Number(m[1]);
  return n * ({ ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? 's'] ?? 1000);
}

export function addRestoreCommand(program: Command, io: CliIo): void {
  const cmd = program
    .command('restore')
    .description('restore a pod, or every pod of a workload, to a chosen checkpoint (sends io.kcr.restore.requested)')
    .argument('<target>', 'a pod (name or pod/<name>), or deployment/<name>, statefulset/<name>')
    .requiredOption('--to <id>', 'the checkpoint id (kcr get checkpoints): of the same namespace, workload and container')
    .option('--dry-run', 'check and print what would be restored, send nothing')
    .option('--no-wait', 'return once the request is accepted')
    .addOption(new Option('--timeout <duration>', 'how long to wait for the pods to run from the checkpoint').argParser(durationMs).default(120_000, '2m'))
    .addHelpText('after', examples(io, EXAMPLES))
    .action(async (target: string, opts: RestoreFlags, c: Command) => restore(commandContext(io, c), target, opts));
  addSettingsFlags(addKubeFlags(cmd, { output: true }), { broker: true });
}

function parseTarget(arg: string): Target {
  if (!arg.includes('/')) return { kind: 'Pod', name: arg };
  const ref = parseKindName(arg);
  if (!ref) throw new UsageError(`target ${JSON.stringify(arg)} is not a pod name, pod/<name>, deployment/<name> or statefulset/<name>`);
  return ref;
}

interface PodPlan {
  pod: string;
  container: string;
  /** Already running from that checkpoint's image: nothing to do. */
  already: boolean;
}

/** What the request would do, checked against the API and S3 as they are now; throws what a user must fix. */
async function plan(ctx: CommandContext, target: Target, c: CheckpointInfo): Promise<PodPlan[]> {
  const ns = ctx.defaultNamespace;
  const desc = `${target.kind.toLowerCase()}/${target.name}`;
  if (c.state === 'bad') throw new Error(`checkpoint ${c.loc.id} is marked bad (${c.bad?.reason ?? 'restoring from it failed'}): it is never restored`);
  if (!c.image) throw new Error(`checkpoint ${c.loc.id} has no image yet (still building): try again shortly`);
  const workload = `${c.loc.workload.kind}/${c.loc.workload.name}`;
  let pods: V1Pod[];
  if (target.kind === 'Pod') {
    const pod = await ctx.kube.getPod(ns, target.name);
    if (!pod) throw new NotFound(`pod "${target.name}" not found in namespace ${ns}`);
    pods = [pod];
  } else {
    if (`${target.kind}/${target.name}` !== workload) throw new Error(`checkpoint ${c.loc.id} belongs to ${workload}, not ${desc}: a workload is only restored to its own checkpoints`);
    pods = (await ctx.kube.listPods(ns)).filter((p) => {
      const o = podOwner(p);
      return o.kind === target.kind && o.name === target.name && !p.metadata?.deletionTimestamp && p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed';
    });
    if (pods.length === 0) throw new Error(`${desc} has no live pod to restore`);
  }
  return pods.map((pod) => {
    const owner = podOwner(pod);
    const name = pod.metadata?.name ?? '';
    if (`${owner.kind}/${owner.name}` !== workload)
      throw new Error(`checkpoint ${c.loc.id} belongs to ${workload}; pod ${name} is of ${owner.kind}/${owner.name}: a pod is only restored to its own workload's checkpoints`);
    const spec = pod.spec?.containers.find((x) => x.name === c.loc.container);
    if (!spec) throw new Error(`pod ${name} has no container ${c.loc.container}, which checkpoint ${c.loc.id} is of`);
    return { pod: name, container: c.loc.container, already: spec.image === c.image?.reference };
  });
}

type Outcome = { pod: string; container: string; result: 'restored' | 'unchanged' | 'refused' | 'timeout' | 'requested'; message: string };

async function restore(ctx: CommandContext, targetArg: string, opts: RestoreFlags): Promise<void> {
  if (ctx.flags.output === 'wide') throw new UsageError('restore prints -o json, yaml or name');
  const target = parseTarget(targetArg);
  const ns = ctx.defaultNamespace;
  const store = await ctx.store();
  const c = await fromS3(store, `looking up checkpoint ${opts.to}`, () => findCheckpoint(store, opts.to, ns));
  if (!c) throw new NotFound(`checkpoint "${opts.to}" not found in namespace ${ns}`);
  const plans = await plan(ctx, target, c);
  const data: RestoreRequestedData =
    target.kind === 'Pod' ? { namespace: ns, pod: target.name, checkpointId: c.loc.id } : { namespace: ns, kind: target.kind, name: target.name, checkpointId: c.loc.id };
  const event = events.restoreRequested(data, { source: 'cli' });
  const image = c.image?.reference ?? '';
  const base = {
    apiVersion: API_VERSION,
    kind: 'RestoreRequest',
    checkpoint: { id: c.loc.id, namespace: ns, workload: c.loc.workload, container: c.loc.container, image },
    event: { id: event.id, type: event.type, data },
  };
  const report = (outcomes: Outcome[], status: string) => {
    const format = ctx.flags.output;
    if (format === 'json' || format === 'yaml') ctx.io.stdout.write(printOne({ ...base, status, pods: outcomes }, format));
    else if (format === 'name') ctx.io.stdout.write(outcomes.map((o) => `pod/${o.pod}\n`).join(''));
    else
      ctx.io.stdout.write(
        table(
          ['POD', 'CONTAINER', 'RESULT', 'MESSAGE'],
          outcomes.map((o) => [o.pod, o.container, o.result, o.message]),
        ),
      );
  };
  if (opts.dryRun) {
    report(
      plans.map((p) => ({
        pod: p.pod,
        container: p.container,
        result: p.already ? 'unchanged' : 'requested',
        message: p.already ? `already runs from ${c.loc.id}` : `would restore from ${c.loc.id} (${image})`,
      })),
      'dry-run',
    );
    return;
  }
  const todo = plans.filter((p) => !p.already);
  if (todo.length === 0) {
    report(
      plans.map((p) => ({ pod: p.pod, container: p.container, result: 'unchanged', message: `already runs from ${c.loc.id}` })),
      'unchanged',
    );
    return;
  }
  const broker = await ctx.broker();
  const sentAt = Date.now();
  const sent = await send(broker, toBinary(event), ctx.io.fetch ?? fetch, SEND_TIMEOUT_MS);
  if (!sent.ok) throw new Error(`restore request ${event.id} was not accepted by ${broker}: ${sent.status !== undefined ? `HTTP ${sent.status}` : ''}${sent.error ? ` ${sent.error}` : ''}`);
  if (!opts.wait) {
    report(
      todo.map((p) => ({ pod: p.pod, container: p.container, result: 'requested', message: `event ${event.id} accepted by the broker` })),
      'requested',
    );
    return;
  }
  const outcomes = await waitFor(ctx, ns, todo, c.loc.id, image, sentAt, opts.timeout);
  const failed = outcomes.filter((o) => o.result !== 'restored');
  report(outcomes, failed.length ? 'failed' : 'restored');
  if (failed.length) throw new Error(`${failed.length} of ${outcomes.length} pods were not restored to ${c.loc.id}: ${failed.map((f) => `${f.pod}: ${f.message}`).join('; ')}`);
}

/** Polls each pod until it runs from the checkpoint, a Warning Event refuses it, or the time is up. */
async function waitFor(ctx: CommandContext, ns: string, todo: PodPlan[], id: string, image: string, sentAt: number, timeoutMs: number): Promise<Outcome[]> {
  const done = new Map<string, Outcome>();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pending = todo.filter((p) => !done.has(p.pod));
    if (pending.length === 0) break;
    const evs: CoreV1Event[] = (await ctx.kube.core.listNamespacedEvent({ namespace: ns })).items;
    for (const p of pending) {
      const pod = await ctx.kube.getPod(ns, p.pod);
      const refusal = evs.find((e) => e.involvedObject.name === p.pod && REFUSALS.has(e.reason ?? '') && e.message?.includes(id) && eventTime(e) >= sentAt - SKEW_MS);
      if (refusal) {
        done.set(p.pod, { pod: p.pod, container: p.container, result: 'refused', message: refusal.message ?? refusal.reason ?? '' });
        continue;
      }
      if (!pod) {
        done.set(p.pod, { pod: p.pod, container: p.container, result: 'refused', message: 'the pod is gone' });
        continue;
      }
      const state = readRestoreState(pod, p.container);
      const status = pod.status?.containerStatuses?.find((s) => s.name === p.container);
      if (state?.current === id && Date.parse(state.restoredAt) >= sentAt - SKEW_MS && status?.state?.running && status.image === image) {
        done.set(p.pod, {
          pod: p.pod,
          container: p.container,
          result: 'restored',
          message: `running from ${id} since ${status.state.running.startedAt ? new Date(status.state.running.startedAt).toISOString() : '?'}`,
        });
      }
    }
    if (todo.every((p) => done.has(p.pod)) || Date.now() >= deadline) break;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  return todo.map(
    (p) =>
      done.get(p.pod) ?? { pod: p.pod, container: p.container, result: 'timeout', message: `not running from ${id} after ${Math.round(timeoutMs / 1000)}s (kcr events list --checkpoint-id ${id})` },
  );
}

function eventTime(e: CoreV1Event): number {
  const t = e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? e.metadata.creationTimestamp;
  return t ? new Date(t).getTime() : 0;
}
