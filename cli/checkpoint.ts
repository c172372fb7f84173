// `kcr checkpoint <kind>/<name>`: asks for a checkpoint now, by sending
// io.kcr.checkpoint.requested to the broker (or straight to request-checkpoint),
// as a PingSource's tick would, for a workload, one pod, or one container.
import { Option, type Command } from 'commander';
import { events, type KcrEvent } from '../functions/core/contract/build.js';
import type { CheckpointRequestedData } from '../functions/core/contract/events.js';
import { errorMessage } from '../functions/core/runtime/errors.js';
import { UsageError } from './errors.js';
import { parseKindName } from './workload-ref.js';
import { httpUrl } from './options.js';
import { destinationOf, send, toBinary } from './replay.js';
import type { CliIo } from './io.js';

const SEND_TIMEOUT_MS = 30_000;

interface CheckpointOptions {
  namespace: string;
  container?: string;
  broker?: string;
  to?: string;
  dryRun?: boolean;
  json?: boolean;
}

export function addCheckpointCommand(program: Command, io: CliIo): Command {
  return program
    .command('checkpoint')
    .description('checkpoint a workload, a pod or one container now (sends io.kcr.checkpoint.requested)')
    .argument('<target>', 'deployment/<name>, statefulset/<name> (sts/) or pod/<name>, as kubectl names them')
    .option('-n, --namespace <namespace>', 'namespace of the target', 'default')
    .option('-c, --container <name>', 'only this container (pods only; a workload uses kcr.io/checkpoint-containers)')
    .addOption(new Option('--broker <url>', 'the broker ingress (default: $KCR_BROKER_URL, then $K_SINK)').argParser(httpUrl).conflicts('to'))
    .addOption(new Option('--to <url>', "request-checkpoint's own URL, bypassing the broker").argParser(httpUrl))
    .option('--dry-run', 'print the event, send nothing')
    .option('--json', 'print JSON for scripts')
    .action(async (target: string, opts: CheckpointOptions) => checkpoint(io, target, opts));
}

/** The event's data for `kind/name`, checked against the contract by the constructor. */
function requestedData(target: string, namespace: string, container?: string): CheckpointRequestedData {
  const ref = parseKindName(target);
  if (!ref) throw new UsageError(`target ${JSON.stringify(target)} is not deployment/<name>, statefulset/<name> or pod/<name>`);
  const { kind, name } = ref;
  if (container !== undefined && kind !== 'Pod')
    throw new UsageError('--container needs a pod target (pod/<name>); a workload checkpoints the containers its kcr.io/checkpoint-containers annotation names');
  return kind === 'Pod' ? { namespace, pod: name, ...(container !== undefined ? { container } : {}) } : { namespace, kind, name };
}

async function checkpoint(io: CliIo, target: string, opts: CheckpointOptions): Promise<void> {
  const destination = destinationOf(opts, io.env)?.url;
  if (!destination) throw new UsageError('checkpoint needs a destination: --broker <url>, --to <request-checkpoint url>, or $KCR_BROKER_URL / $K_SINK');
  const data = requestedData(target, opts.namespace, opts.container);
  let event: KcrEvent;
  try {
    event = events.checkpointRequested(data, { source: 'cli' });
  } catch (err) {
    throw new UsageError(`${target} in ${opts.namespace}: ${errorMessage(err).replace(/^refusing to emit an invalid [^:]+: /, '')}`);
  }
  const message = toBinary(event);
  const line = { id: event.id, type: event.type, subject: event.subject, data, target: destination };
  if (opts.dryRun) {
    io.stdout.write(
      opts.json
        ? `${JSON.stringify({ ...line, status: 'dry-run', headers: message.headers, body: message.body }, null, 2)}\n`
        : `dry run: would POST to ${destination}\n${JSON.stringify({ headers: message.headers, body: message.body }, null, 2)}\n`,
    );
    return;
  }
  const result = await send(destination, message, io.fetch ?? fetch, SEND_TIMEOUT_MS);
  if (opts.json) io.stdout.write(`${JSON.stringify({ ...line, status: result.status ?? 'error', ...(result.error ? { error: result.error } : {}) }, null, 2)}\n`);
  if (!result.ok) {
    const why = result.status !== undefined ? `HTTP ${result.status}${result.error ? `: ${result.error}` : ''}` : (result.error ?? 'no answer');
    throw new Error(`checkpoint request ${event.id} for ${event.subject} was not accepted by ${destination}: ${why}`);
  }
  const follow = 'pod' in data ? `--subject '${data.namespace}/${data.pod}/*'` : `--type 'io.kcr.checkpoint.*' --since 10m`;
  if (!opts.json) io.stdout.write(`requested a checkpoint of ${event.subject} (event ${event.id}) from ${destination}; follow it with: kcr events list ${follow}\n`);
}
