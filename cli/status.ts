// `kcr status`: one screen of how kcr is doing in a namespace (or all):
// the opted-in workloads and, per container, the age of the newest committed
// checkpoint against the schedule (late ones flagged), recent restores and
// failures from the event archive, and the space checkpoints take in S3.
import type { Command } from 'commander';
import { ANNOTATIONS, isOptedIn, parseContainerList } from '../functions/core/kubernetes/annotations.js';
import { checkSchedule } from '../functions/schedule-sync/schedule.js';
import { addKubeFlags } from './kube.js';
import { addSettingsFlags, commandContext, fromS3, type CommandContext } from './context.js';
import { listCheckpoints, type CheckpointInfo } from './inventory.js';
import { selectEvents } from './archive-query.js';
import { API_VERSION, examples, humanBytes, humanDuration, printOne, table } from './output.js';
import type { CliIo } from './io.js';

const RECENT_MS = 24 * 3_600_000;
/** A container is late when its newest checkpoint is older than this many schedule intervals. */
const LATE_INTERVALS = 2;

const EXAMPLES = `
Examples:
  # the current namespace
  %s status

  # every namespace, for a script
  %s status -A -o json`;

export interface ContainerStatus {
  namespace: string;
  workload: string;
  container: string;
  schedule: string;
  lastCheckpoint?: { id: string; at: string; ageSeconds: number };
  late: boolean;
  checkpoints: number;
  bytes: number;
}

export function addStatusCommand(program: Command, io: CliIo): void {
  const cmd = program
    .command('status')
    .description('opted-in workloads, checkpoint ages against their schedules, recent restores and failures, space used')
    .addHelpText('after', examples(io, EXAMPLES))
    .action(async (_opts: object, c: Command) => status(commandContext(io, c)));
  addSettingsFlags(addKubeFlags(cmd, { allNamespaces: true, output: true }));
}

/** The schedule's interval (between its next two runs), undefined when it does not parse. */
function intervalMs(schedule: string, timezone: string | undefined, now: Date): number | undefined {
  const check = checkSchedule(schedule, timezone, now);
  return check.ok ? (check.nextRuns[1]?.getTime() ?? 0) - (check.nextRuns[0]?.getTime() ?? 0) : undefined;
}

/** Per opted-in workload container: its newest committed checkpoint, and whether that is late. */
export function containerStatuses(
  workloads: { namespace: string; kind: string; name: string; annotations: Record<string, string>; containers: string[] }[],
  checkpoints: readonly CheckpointInfo[],
  now: Date,
): ContainerStatus[] {
  const out: ContainerStatus[] = [];
  for (const w of workloads) {
    const schedule = w.annotations[ANNOTATIONS.schedule] ?? '';
    const chosen = parseContainerList(w.annotations[ANNOTATIONS.containers]) ?? w.containers;
    const every = schedule ? intervalMs(schedule, w.annotations[ANNOTATIONS.timezone], now) : undefined;
    for (const container of chosen) {
      const mine = checkpoints.filter((c) => c.loc.namespace === w.namespace && c.loc.workload.kind === w.kind && c.loc.workload.name === w.name && c.loc.container === container && c.state !== 'bad');
      const newest = mine[0];
      const at = newest?.manifest.data.checkpointedAt;
      const age = at ? now.getTime() - Date.parse(at) : undefined;
      const late = every !== undefined && every > 0 && (age === undefined ? false : age > LATE_INTERVALS * every);
      out.push({
        namespace: w.namespace,
        workload: `${w.kind.toLowerCase()}/${w.name}`,
        container,
        schedule: schedule || '(restore only)',
        ...(newest && at && age !== undefined ? { lastCheckpoint: { id: newest.loc.id, at, ageSeconds: Math.floor(age / 1000) } } : {}),
        late,
        checkpoints: mine.length,
        bytes: mine.reduce((n, c) => n + c.size, 0),
      });
    }
  }
  return out;
}

async function status(ctx: CommandContext): Promise<void> {
  const ns = ctx.namespace;
  const [deployments, statefulSets] = await Promise.all([
    ns ? ctx.kube.apps.listNamespacedDeployment({ namespace: ns }) : ctx.kube.apps.listDeploymentForAllNamespaces(),
    ns ? ctx.kube.apps.listNamespacedStatefulSet({ namespace: ns }) : ctx.kube.apps.listStatefulSetForAllNamespaces(),
  ]);
  const workloads = [...deployments.items.map((d) => ({ kind: 'Deployment', o: d })), ...statefulSets.items.map((s) => ({ kind: 'StatefulSet', o: s }))]
    .filter(({ o }) => isOptedIn(o.metadata, o.spec?.template.metadata))
    .map(({ kind, o }) => ({
      namespace: o.metadata?.namespace ?? 'default',
      kind,
      name: o.metadata?.name ?? '',
      annotations: o.metadata?.annotations ?? {},
      containers: (o.spec?.template.spec?.containers ?? []).map((c) => c.name),
    }));
  const store = await ctx.store();
  const checkpoints = await fromS3(store, 'listing checkpoints', () => listCheckpoints(store, ns));
  const containers = containerStatuses(workloads, checkpoints, ctx.now);
  const range = { since: new Date(ctx.now.getTime() - RECENT_MS), until: new Date(ctx.now.getTime() + 3_600_000), includeUndated: false };
  const archived = await fromS3(store, 'reading the event archive', () =>
    selectEvents(store, range, { types: ['io.kcr.pod.restored', 'io.kcr.restore.failed', 'io.kcr.checkpoint.failed'], ...(ns ? { subject: `${ns}/*` } : {}) }, 50),
  );
  const recent = archived
    .map((a) => a.event)
    .filter((e): e is NonNullable<typeof e> => e !== undefined)
    .map((e) => ({ time: String(e.time ?? ''), type: String(e.type), subject: String(e.subject ?? ''), data: (e.data ?? {}) as Record<string, unknown> }));
  const restores = recent.filter((e) => e.type === 'io.kcr.pod.restored');
  const failures = recent.filter((e) => e.type !== 'io.kcr.pod.restored');
  const used = {
    checkpoints: checkpoints.length,
    bytes: checkpoints.reduce((n, c) => n + c.size, 0),
    pinned: checkpoints.filter((c) => c.state === 'pinned').length,
    bad: checkpoints.filter((c) => c.state === 'bad').length,
  };

  const format = ctx.flags.output;
  if (format === 'json' || format === 'yaml') {
    ctx.io.stdout.write(printOne({ apiVersion: API_VERSION, kind: 'Status', namespace: ns ?? null, containers, restores, failures, storage: used }, format));
    return;
  }
  const where = ns ? `namespace ${ns}` : 'all namespaces';
  let out = `WORKLOADS (${where}, ${workloads.length} opted in)\n`;
  out += containers.length
    ? table(
        ['  WORKLOAD', 'CONTAINER', 'SCHEDULE', 'LAST CHECKPOINT', 'CHECKPOINTS', 'SIZE', ''],
        containers.map((c) => [
          `  ${ns ? '' : `${c.namespace}/`}${c.workload}`,
          c.container,
          c.schedule,
          c.lastCheckpoint ? `${humanDuration(c.lastCheckpoint.ageSeconds * 1000)} ago` : '<none>',
          String(c.checkpoints),
          humanBytes(c.bytes),
          c.late ? 'LATE' : '',
        ]),
      )
    : '  <none: annotate a Deployment or StatefulSet with kcr.io/checkpoint-restore-schedule>\n';
  out += `\nRESTORES (last 24h: ${restores.length})\n`;
  out += restores.length
    ? table(
        ['  AGE', 'POD', 'CHECKPOINT', 'STRATEGY'],
        restores.slice(0, 10).map((r) => [`  ${age(ctx, r.time)}`, r.subject, String(r.data.checkpointId ?? ''), String(r.data.strategy ?? '')]),
      )
    : '  <none>\n';
  out += `\nFAILURES (last 24h: ${failures.length})\n`;
  out += failures.length
    ? table(
        ['  AGE', 'TYPE', 'SUBJECT', 'REASON'],
        failures.slice(0, 10).map((f) => [`  ${age(ctx, f.time)}`, f.type.replace('io.kcr.', ''), f.subject, String(f.data.reason ?? '').slice(0, 100)]),
      )
    : '  <none>\n';
  out += `\nSTORAGE  s3://${store.bucket}: ${used.checkpoints} checkpoints, ${humanBytes(used.bytes)} (${used.pinned} pinned, ${used.bad} bad)\n`;
  ctx.io.stdout.write(out);
}

function age(ctx: CommandContext, time: string): string {
  const t = Date.parse(time);
  return Number.isNaN(t) ? '?' : humanDuration(ctx.now.getTime() - t);
}
