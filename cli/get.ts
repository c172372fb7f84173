// `kcr get checkpoints [WORKLOAD] [-l selector]` and `kcr describe checkpoint ID`:
// the checkpoints S3 holds, as kubectl shows objects.
import type { Command } from 'commander';
import type { V1Pod } from '@kubernetes/client-node';
import { artifactKey, s3Uri } from '../functions/core/storage/layout.js';
import { restoredFromKey } from '../functions/restore-pod/restore-state.js';
import { addKubeFlags } from './kube.js';
import { addSettingsFlags, commandContext, fromS3, type CommandContext } from './context.js';
import { findCheckpoint, listCheckpoints, type CheckpointInfo } from './inventory.js';
import { API_VERSION, humanBytes, humanDuration, printList, printOne, table, examples } from './output.js';
import { UsageError } from './errors.js';
import { parseKindName } from './workload-ref.js';
import type { CliIo } from './io.js';

const RESOURCES = new Set(['checkpoints', 'checkpoint', 'cp']);

export const GET_EXAMPLES = `
Examples:
  # every checkpoint in the current namespace, newest first
  %s get checkpoints

  # the checkpoints of one workload (kind/name, or a name of any kind), with pod, node and image
  %s get checkpoints statefulset/db -o wide

  # in every namespace, of the workloads a label selector picks, as JSON
  %s get checkpoints -A -l tier=data -o json

  # then follow new checkpoints and state changes (Ctrl-C stops)
  %s get checkpoints -w`;

const DESCRIBE_EXAMPLES = `
Examples:
  # manifest, image, CRIU statistics, pods restored from it and its events
  %s describe checkpoint 20250131T120000Z-0123456789ab -n shop`;

interface GetFlags {
  selector?: string;
  watch?: boolean;
}

/** How often -w lists S3 again. */
const WATCH_INTERVAL_MS = 1000;

export function addGetCommands(program: Command, io: CliIo): void {
  const get = program
    .command('get')
    .description('list checkpoints (committed, building, bad or pinned), as kubectl get does')
    .argument('<resource>', 'checkpoints (checkpoint, cp)')
    .argument('[workload]', 'only this workload: kind/name (deployment/web, sts/db, pod/x) or a name')
    .option('-l, --selector <selector>', 'only workloads (Deployments, StatefulSets) matching this label selector')
    .option('-w, --watch', 'after listing, print each checkpoint that appears or changes state, until interrupted')
    .addHelpText('after', examples(io, GET_EXAMPLES))
    .action(async (resource: string, workload: string | undefined, opts: GetFlags, cmd: Command) => getCheckpoints(commandContext(io, cmd), resource, workload, opts));
  addSettingsFlags(addKubeFlags(get, { allNamespaces: true, output: true }));

  const describe = program
    .command('describe')
    .description('show one checkpoint in detail')
    .argument('<resource>', 'checkpoint')
    .argument('<id>', 'the checkpoint id (kcr get checkpoints)')
    .addHelpText('after', examples(io, DESCRIBE_EXAMPLES))
    .action(async (resource: string, id: string, _opts: object, cmd: Command) => describeCheckpoint(commandContext(io, cmd), resource, id));
  addSettingsFlags(addKubeFlags(describe, { allNamespaces: true, output: true }));
}

function checkResource(resource: string): void {
  if (!RESOURCES.has(resource.toLowerCase())) throw new UsageError(`the server doesn't have a resource type "${resource}" in kcr: use checkpoints`);
}

/** `kind/name` or a bare name: which workloads of the listing it keeps. */
export function workloadFilter(arg: string | undefined): ((c: CheckpointInfo) => boolean) | undefined {
  if (!arg) return undefined;
  if (!arg.includes('/')) return (c) => c.loc.workload.name === arg;
  const ref = parseKindName(arg);
  if (!ref) throw new UsageError(`workload ${JSON.stringify(arg)} is not deployment/<name>, statefulset/<name>, pod/<name> or a name`);
  return (c) => c.loc.workload.kind === ref.kind && c.loc.workload.name === ref.name;
}

async function selectedWorkloads(ctx: CommandContext, selector: string): Promise<Set<string>> {
  const ns = ctx.namespace;
  const args = { labelSelector: selector };
  const [deployments, statefulSets] = await Promise.all([
    ns ? ctx.kube.apps.listNamespacedDeployment({ namespace: ns, ...args }) : ctx.kube.apps.listDeploymentForAllNamespaces(args),
    ns ? ctx.kube.apps.listNamespacedStatefulSet({ namespace: ns, ...args }) : ctx.kube.apps.listStatefulSetForAllNamespaces(args),
  ]);
  return new Set([
    ...deployments.items.map((d) => `${d.metadata?.namespace}/Deployment/${d.metadata?.name}`),
    ...statefulSets.items.map((s) => `${s.metadata?.namespace}/StatefulSet/${s.metadata?.name}`),
  ]);
}

export function shortDigest(digest: string | undefined): string {
  return digest ? digest.replace(/^(sha256:[0-9a-f]{12})[0-9a-f]*$/, '$1') : '<none>';
}

const workloadName = (c: CheckpointInfo) => `${c.loc.workload.kind.toLowerCase()}/${c.loc.workload.name}`;

/** The checkpoint as an object of kind Checkpoint (-o json/yaml). */
export function checkpointObject(c: CheckpointInfo): object {
  const d = c.manifest.data;
  return {
    apiVersion: API_VERSION,
    kind: 'Checkpoint',
    metadata: { name: c.loc.id, namespace: c.loc.namespace, creationTimestamp: d.checkpointedAt },
    spec: { workload: c.loc.workload, container: c.loc.container, pod: d.pod, podUid: d.podUid, node: d.node },
    status: {
      state: c.state,
      size: c.size,
      archive: d.artifact,
      storedAt: c.manifest.storedAt,
      ...(c.image ? { image: { reference: c.image.reference, digest: c.image.digest, size: c.image.size } } : {}),
      ...(c.pin ? { pinned: c.pin } : {}),
      ...(c.bad ? { bad: c.bad } : {}),
    },
  };
}

async function getCheckpoints(ctx: CommandContext, resource: string, workload: string | undefined, opts: GetFlags): Promise<void> {
  checkResource(resource);
  const byWorkload = workloadFilter(workload);
  const selected = opts.selector !== undefined ? await selectedWorkloads(ctx, opts.selector) : undefined;
  const store = await ctx.store();
  const list = async () =>
    (await fromS3(store, 'listing checkpoints', () => listCheckpoints(store, ctx.namespace))).filter(
      (c) => (!byWorkload || byWorkload(c)) && (!selected || selected.has(`${c.loc.namespace}/${c.loc.workload.kind}/${c.loc.workload.name}`)),
    );
  const items = await list();
  const format = ctx.flags.output;
  if (items.length === 0 && (format === undefined || format === 'wide')) ctx.io.stderr.write(ctx.namespace ? `No checkpoints found in ${ctx.namespace} namespace.\n` : 'No checkpoints found.\n');
  else ctx.io.stdout.write(render(ctx, items, true));
  if (!opts.watch) return;
  // kubectl get -w: then each checkpoint that appears or changes state, until interrupted.
  const seen = new Map(items.map((c) => [c.loc.id, c.state]));
  const signal = ctx.io.signal;
  while (!signal?.aborted) {
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, WATCH_INTERVAL_MS);
      signal?.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
    });
    if (signal?.aborted) break;
    const changed = (await list()).filter((c) => seen.get(c.loc.id) !== c.state).reverse();
    for (const c of changed) seen.set(c.loc.id, c.state);
    if (changed.length) ctx.io.stdout.write(render({ ...ctx, now: new Date() }, changed, seen.size === changed.length && items.length === 0));
  }
}

/** The rows (or objects) of `items` in the output format; without the header for rows -w adds. */
function render(ctx: CommandContext, items: CheckpointInfo[], header: boolean): string {
  const format = ctx.flags.output;
  const allNs = ctx.namespace === undefined;
  const columns = ['WORKLOAD', 'CONTAINER', 'ID', 'AGE', 'SIZE', 'STATE', 'IMAGE'];
  const printable = items.map((c) => {
    const cells = [
      workloadName(c),
      c.loc.container,
      c.loc.id,
      humanDuration(ctx.now.getTime() - Date.parse(c.manifest.data.checkpointedAt)),
      humanBytes(c.size),
      c.state,
      shortDigest(c.image?.digest),
    ];
    return {
      object: checkpointObject(c),
      name: `checkpoint/${c.loc.id}`,
      cells: allNs ? [c.loc.namespace, ...cells] : cells,
      wide: [c.manifest.data.pod, c.manifest.data.node, c.image?.reference ?? '<none>'],
    };
  });
  if (!header && (format === 'json' || format === 'yaml')) return printable.map((p) => (format === 'yaml' ? `---\n${printOne(p.object, 'yaml')}` : printOne(p.object, 'json'))).join('');
  const text = printList('Checkpoint', printable, { cells: allNs ? ['NAMESPACE', ...columns] : columns, wide: ['POD', 'NODE', 'IMAGE REFERENCE'] }, format);
  return header || format === 'name' ? text : text.slice(text.indexOf('\n') + 1);
}

/** Pods of the namespace that a restore put on this checkpoint (restore-pod's annotation), with the container. */
function restoredPods(pods: readonly V1Pod[], c: CheckpointInfo): string[] {
  const key = restoredFromKey(c.loc.container);
  return pods.filter((p) => p.metadata?.annotations?.[key] === c.loc.id).map((p) => `${p.metadata?.name ?? ''} (${p.status?.phase ?? 'Unknown'})`);
}

async function describeCheckpoint(ctx: CommandContext, resource: string, id: string): Promise<void> {
  if (!['checkpoint', 'checkpoints', 'cp'].includes(resource.toLowerCase())) throw new UsageError(`describe: unknown resource "${resource}": use checkpoint`);
  const store = await ctx.store();
  const c = await fromS3(store, `looking up checkpoint ${id}`, () => findCheckpoint(store, id, ctx.namespace));
  if (!c) throw new NotFound(`checkpoint "${id}" not found${ctx.namespace ? ` in namespace ${ctx.namespace} (-A searches all)` : ''}`);
  const ns = c.loc.namespace;
  const [pods, events] = await Promise.all([ctx.kube.listPods(ns), ctx.kube.core.listNamespacedEvent({ namespace: ns }).then((l) => l.items)]);
  const restored = restoredPods(pods, c);
  const related = events.filter((e) => e.message?.includes(id)).sort((a, b) => String(a.lastTimestamp ?? a.eventTime ?? '').localeCompare(String(b.lastTimestamp ?? b.eventTime ?? '')));
  const format = ctx.flags.output;
  if (format === 'json' || format === 'yaml') {
    const obj = checkpointObject(c) as { status: object };
    ctx.io.stdout.write(
      printOne(
        {
          ...obj,
          status: {
            ...obj.status,
            archiveDetails: c.manifest.archive,
            restoredPods: restored,
            events: related.map((e) => ({ type: e.type, reason: e.reason, object: e.involvedObject.name, message: e.message })),
          },
        },
        format,
      ),
    );
    return;
  }
  if (format === 'name') {
    ctx.io.stdout.write(`checkpoint/${c.loc.id}\n`);
    return;
  }
  const d = c.manifest.data;
  const a = c.manifest.archive;
  const lines: [string, string][] = [
    ['Name:', c.loc.id],
    ['Namespace:', ns],
    ['Workload:', `${c.loc.workload.kind}/${c.loc.workload.name}`],
    ['Container:', c.loc.container],
    ['Pod:', `${d.pod} (uid ${d.podUid})`],
    ['Node:', d.node],
    ['Checkpointed:', `${d.checkpointedAt} (${humanDuration(ctx.now.getTime() - Date.parse(d.checkpointedAt))} ago)`],
    ['Stored:', c.manifest.storedAt],
    ['State:', c.state],
    ['Archive:', `${s3Uri(store.bucket, artifactKey(c.loc, 'archive'))} (${humanBytes(c.size)}, sha256 ${d.artifact.sha256})`],
    ['Runtime:', a.runtime ?? '<unknown>'],
    ['Rootfs image:', a.rootfsImageName ?? a.rootfsImage ?? '<unknown>'],
    ['Image:', c.image ? `${c.image.reference} (${humanBytes(c.image.size)}, ${c.image.mediaType})` : '<not built yet>'],
  ];
  if (c.pin) lines.push(['Pinned:', `${c.pin.pinnedAt}${c.pin.by ? ` by ${c.pin.by}` : ''}${c.pin.reason ? `: ${c.pin.reason}` : ''}`]);
  if (c.bad) lines.push(['Bad:', `${c.bad.markedAt}: ${c.bad.reason}`]);
  let out = table(['', ''], lines).split('\n').slice(1).join('\n');
  const stats = a.criuDumpStats;
  out += 'CRIU dump statistics:\n';
  if (!stats) out += '  <none in the archive>\n';
  else if (!stats.decoded) out += `  <unreadable: ${stats.reason}>\n`;
  else
    out += table(
      ['  NAME', 'VALUE'],
      Object.entries(stats.dump).map(([k, v]) => [`  ${k}`, String(v)]),
    );
  out += `Archive entries:  ${a.entries} (${a.checkpointFiles} CRIU image files; top level: ${a.topLevel.join(', ')})\n`;
  out += `Restored pods:    ${restored.length ? restored.join(', ') : '<none>'}\n`;
  out += 'Events:\n';
  out += related.length
    ? table(
        ['  TYPE', 'REASON', 'OBJECT', 'MESSAGE'],
        related.map((e) => [`  ${e.type ?? ''}`, e.reason ?? '', `pod/${e.involvedObject.name ?? ''}`, e.message ?? '']),
      )
    : '  <none>\n';
  ctx.io.stdout.write(out);
}

/** The object asked for does not exist: exit 1, as kubectl's NotFound. */
export class NotFound extends Error {
  override readonly name = 'NotFound';
}
