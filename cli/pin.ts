// `kcr pin ID` / `kcr unpin ID`: pin.json next to the checkpoint's manifest;
// retention never removes a pinned checkpoint (functions/build-image/retention.ts).
import type { Command } from 'commander';
import { readPin, removePin, writePin } from '../functions/core/storage/records.js';
import { addKubeFlags } from './kube.js';
import { addSettingsFlags, commandContext, fromS3, type CommandContext } from './context.js';
import { findCheckpoint } from './inventory.js';
import { NotFound, checkpointObject } from './get.js';
import { printOne, examples } from './output.js';
import type { CliIo } from './io.js';

const PIN_EXAMPLES = `
Examples:
  # keep the checkpoint taken before a risky deploy, whatever retention says
  %s pin 20250131T120000Z-0123456789ab --reason "before v2 rollout"

  # let retention remove it again
  %s unpin 20250131T120000Z-0123456789ab`;

export function addPinCommands(program: Command, io: CliIo): void {
  const pin = program
    .command('pin')
    .description('pin a checkpoint: retention never removes it')
    .argument('<id>', 'the checkpoint id')
    .option('--reason <text>', 'why, for whoever looks later')
    .addHelpText('after', examples(io, PIN_EXAMPLES))
    .action(async (id: string, opts: { reason?: string }, cmd: Command) => setPin(commandContext(io, cmd), id, true, opts.reason));
  addSettingsFlags(addKubeFlags(pin, { allNamespaces: true, output: true }));
  const unpin = program
    .command('unpin')
    .description('unpin a checkpoint: retention may remove it again')
    .argument('<id>', 'the checkpoint id')
    .addHelpText('after', examples(io, PIN_EXAMPLES))
    .action(async (id: string, _opts: object, cmd: Command) => setPin(commandContext(io, cmd), id, false));
  addSettingsFlags(addKubeFlags(unpin, { allNamespaces: true, output: true }));
}

async function setPin(ctx: CommandContext, id: string, pinned: boolean, reason?: string): Promise<void> {
  const store = await ctx.store();
  const found = await fromS3(store, `looking up checkpoint ${id}`, () => findCheckpoint(store, id, ctx.namespace));
  if (!found) throw new NotFound(`checkpoint "${id}" not found${ctx.namespace ? ` in namespace ${ctx.namespace} (-A searches all)` : ''}`);
  const was = await readPin(store, found.loc);
  let verb: string;
  if (pinned) {
    const by = ctx.kube.kubeConfig.getCurrentUser()?.name;
    if (!was) await fromS3(store, `pinning ${id}`, () => writePin(store, found.loc, { id, pinnedAt: ctx.now.toISOString(), ...(by ? { by } : {}), ...(reason ? { reason } : {}) }));
    verb = was ? 'unchanged (already pinned)' : 'pinned';
  } else {
    if (was) await fromS3(store, `unpinning ${id}`, () => removePin(store, found.loc));
    verb = was ? 'unpinned' : 'unchanged (not pinned)';
  }
  const format = ctx.flags.output;
  if (format === 'json' || format === 'yaml') {
    const after = await findCheckpoint(store, id, found.loc.namespace);
    ctx.io.stdout.write(printOne(checkpointObject(after ?? found), format));
  } else if (format === 'name') ctx.io.stdout.write(`checkpoint/${id}\n`);
  else ctx.io.stdout.write(`checkpoint/${id} ${verb}\n`);
}
