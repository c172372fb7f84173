// schedule-sync: keeps one PingSource per annotated Deployment/StatefulSet.
// Level-based: every event only names a workload; its current state is read
// from the API, so replayed and out-of-order events converge.
import { EventTypes, type ScheduleAction, type WorkloadKind } from '../core/contract/events.js';
import { events, type KcrEvent } from '../core/contract/build.js';
import { ConflictError, type Workload } from '../core/kubernetes/kubernetes.js';
import { buildEvent } from '../core/kubernetes/events.js';
import { ANNOTATIONS, LABELS, MANAGED_BY, parseContainerList } from '../core/kubernetes/annotations.js';
import { checkSchedule } from './schedule.js';
import { desiredPingSource, pingSourceMatches, pingSourceName } from './ping-source.js';
import { TransientError } from '../core/runtime/errors.js';
import type { FunctionHandler, HandlerContext } from '../core/runtime/handler.js';
import type { Logger } from '../core/runtime/logger.js';
import type { ScheduleSyncKube } from './kube-port.js';

const NAME = 'schedule-sync';

export interface ScheduleSyncDeps {
  kube: ScheduleSyncKube;
  /** The broker URL the PingSources send to. */
  sinkUri: string;
}

type Accepted = typeof EventTypes.resourceAdd | typeof EventTypes.resourceUpdate | typeof EventTypes.resourceDelete | typeof EventTypes.ping;

export function createScheduleSync(deps: ScheduleSyncDeps): FunctionHandler<Accepted> {
  return {
    name: NAME,
    accepts: [EventTypes.resourceAdd, EventTypes.resourceUpdate, EventTypes.resourceDelete, EventTypes.ping],
    emits: true,
    async handle(event, ctx) {
      if (event.type === EventTypes.ping) {
        if ('resync' in event.data) return resyncAll(deps, ctx);
        ctx.log.debug("a workload ping is request-checkpoint's: ignored");
        return [];
      }
      const obj = event.data;
      const kind = obj.kind;
      if ((kind !== 'Deployment' && kind !== 'StatefulSet') || !obj.apiVersion.startsWith('apps/')) {
        ctx.log.debug({ kind: obj.kind }, 'not a Deployment or StatefulSet: ignored');
        return [];
      }
      const namespace = obj.metadata.namespace ?? 'default';
      const result = await reconcile(deps, namespace, kind, obj.metadata.name, ctx.log);
      return result ? [result] : [];
    },
  };
}

/** Reconciles every annotated workload and every PingSource kcr owns (the ApiServerSource reports nothing that existed before it started). */
export async function resyncAll(deps: ScheduleSyncDeps, ctx: Pick<HandlerContext, 'log'>): Promise<KcrEvent[]> {
  const out: KcrEvent[] = [];
  const seen = new Set<string>();
  for (const kind of ['Deployment', 'StatefulSet'] as const) {
    for (const w of await deps.kube.listWorkloads(kind)) {
      if (w.metadata?.annotations?.[ANNOTATIONS.schedule] === undefined) continue;
      const ns = w.metadata.namespace ?? 'default';
      seen.add(`${ns}/${kind}/${w.metadata.name}`);
      const e = await reconcile(deps, ns, kind, w.metadata.name ?? '', ctx.log);
      if (e) out.push(e);
    }
  }
  // PingSources whose workload lost its annotation or went away while nobody listened.
  for (const p of await deps.kube.listPingSources(`${LABELS.managedBy}=${MANAGED_BY}`)) {
    const kind = p.metadata.labels?.[LABELS.workloadKind];
    const name = p.metadata.labels?.[LABELS.workloadName];
    const ns = p.metadata.namespace ?? 'default';
    if ((kind !== 'Deployment' && kind !== 'StatefulSet') || !name || seen.has(`${ns}/${kind}/${name}`)) continue;
    const e = await reconcile(deps, ns, kind, name, ctx.log);
    if (e) out.push(e);
  }
  return out;
}

async function reconcile(deps: ScheduleSyncDeps, namespace: string, kind: WorkloadKind, name: string, log: Logger, attempt = 0): Promise<KcrEvent | undefined> {
  const psName = pingSourceName(kind, name);
  const synced = (schedule: string, action: ScheduleAction, reason?: string) => events.scheduleSynced({ namespace, kind, name, schedule, action, ...(reason ? { reason } : {}) }, { source: NAME });
  try {
    const workload = await deps.kube.getWorkload(namespace, kind, name);
    const schedule = workload?.metadata?.annotations?.[ANNOTATIONS.schedule];
    const current = await deps.kube.getPingSource(namespace, psName);
    if (!workload || schedule === undefined || workload.metadata?.deletionTimestamp) {
      if (!current) return undefined; // nothing to do, nothing to tell
      await deps.kube.deletePingSource(namespace, psName);
      log.info({ pingSource: psName }, 'deleted PingSource: workload gone or no longer annotated');
      return synced(current.spec.schedule, 'deleted', workload ? 'annotation removed' : 'workload deleted');
    }

    const timezone = workload.metadata?.annotations?.[ANNOTATIONS.timezone] || undefined;
    const problem = invalidity(workload, schedule, timezone);
    if (problem) {
      // No valid schedule means no PingSource: the annotation no longer says when to checkpoint.
      if (current) await deps.kube.deletePingSource(namespace, psName);
      await deps.kube.createEvent(
        buildEvent(
          { apiVersion: 'apps/v1', kind, metadata: workload.metadata },
          { type: 'Warning', reason: 'InvalidCheckpointSchedule', message: `${ANNOTATIONS.schedule}: ${problem}`, component: NAME },
        ),
      );
      log.warn({ problem }, 'rejected checkpoint schedule');
      return synced(schedule, 'rejected', problem);
    }

    const desired = desiredPingSource(workload, { schedule: schedule.trim(), ...(timezone ? { timezone } : {}), sinkUri: deps.sinkUri });
    if (!current) {
      await deps.kube.createPingSource(desired);
      log.info({ pingSource: psName, schedule }, 'created PingSource');
      return synced(desired.spec.schedule, 'created');
    }
    // Workload status updates arrive often; an unchanged PingSource is not news.
    if (pingSourceMatches(current, desired)) return undefined;
    await deps.kube.replacePingSource({ ...desired, metadata: { ...current.metadata, ...desired.metadata, resourceVersion: current.metadata.resourceVersion } });
    log.info({ pingSource: psName, schedule }, 'updated PingSource');
    return synced(desired.spec.schedule, 'updated');
  } catch (err) {
    // Someone changed it between our read and write (or created it first): read again.
    if (err instanceof ConflictError && attempt < 3) return reconcile(deps, namespace, kind, name, log, attempt + 1);
    if (err instanceof ConflictError) throw new TransientError(err.message, { cause: err });
    throw err;
  }
}

function invalidity(workload: Workload, schedule: string, timezone: string | undefined): string | undefined {
  const check = checkSchedule(schedule, timezone);
  if (!check.ok) return check.problem;
  const wanted = parseContainerList(workload.metadata?.annotations?.[ANNOTATIONS.containers]);
  const have = new Set((workload.spec?.template.spec?.containers ?? []).map((c) => c.name));
  const unknown = (wanted ?? []).filter((c) => !have.has(c));
  if (unknown.length) return `${ANNOTATIONS.containers} names containers not in the pod template: ${unknown.join(', ')} (has ${[...have].join(', ')})`;
  return undefined;
}
