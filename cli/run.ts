// The `kcr` program, runnable in-process: argv in, exit code out, output to the given streams.
// Run as `kubectl-kcr` (kubectl's plugin lookup), it names itself `kubectl kcr`.
import { Command, CommanderError } from 'commander';
import { errorMessage } from '../functions/core/runtime/errors.js';
import { addCheckpointCommand } from './checkpoint.js';
import { addEventsCommand } from './events.js';
import { addGetCommands } from './get.js';
import { addPinCommands } from './pin.js';
import { addRestoreCommand } from './restore.js';
import { addStatusCommand } from './status.js';
import { addDoctorCommand } from './doctor.js';
import { addInspectCommand } from './inspect.js';
import { addDrainCommand } from './drain.js';
import { UsageError } from './errors.js';
import { openS3Store, type CliIoInput } from './io.js';
import { checkLocalEnv, localModeGone } from '../local/env-file.js';

/** Exit codes scripts can rely on. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

const HELP_FOOTER = `
Examples:
  # the checkpoints of the current namespace, and one in detail
  %s get checkpoints
  %s describe checkpoint 20250131T120000Z-0123456789ab

  # keep one forever, then put a workload back on it
  %s pin 20250131T120000Z-0123456789ab
  %s restore deployment/web --to 20250131T120000Z-0123456789ab

  # checkpoint now, then follow what happened
  %s checkpoint statefulset/db
  %s events list --since 10m

Cluster access follows kubectl: --kubeconfig, $KUBECONFIG or ~/.kube/config; --context; -n/--namespace or
the context's namespace; -A/--all-namespaces. S3 and the broker are found in ConfigMap kcr-system/kcr-config
and Secret kcr-system/kcr-s3 (read with your own RBAC); flags and $KCR_S3_*, $KCR_BROKER_URL override them,
and a sourced local-mode env file (.state/run/env) sets them all.

Exit codes: 0 success, 1 failure (not found, refused, timed out, unreachable), 2 usage error.

Use "%s <command> --help" for more information about a command.`;

function buildProgram(input: CliIoInput): Command {
  const io = { ...input, openStore: input.openStore ?? openS3Store };
  const name = input.programName ?? 'kcr';
  const program = new Command(name)
    .description('kcr: transparent checkpoint/restore for Kubernetes workloads')
    .usage('[command] [flags]')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => void io.stdout.write(s),
      writeErr: (s) => void io.stderr.write(s),
    })
    .showHelpAfterError('(run with --help for usage)')
    .configureHelp({ subcommandTerm: (cmd) => cmd.name(), sortSubcommands: false })
    .addHelpText('after', HELP_FOOTER.replaceAll('%s', name));
  addGetCommands(program, io);
  addInspectCommand(program, io);
  addPinCommands(program, io);
  addRestoreCommand(program, io);
  addStatusCommand(program, io);
  addDrainCommand(program, io);
  addDoctorCommand(program, io);
  addCheckpointCommand(program, io);
  addEventsCommand(program, io);
  // Before any command reaches an endpoint: the local mode's may be dead, or reused.
  program.hook('preAction', () => checkLocalEnv(io.env));
  return program;
}

/** Runs `kcr <argv…>` (argv without node and script) and returns the exit code. */
export async function runCli(argv: readonly string[], io: CliIoInput): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander has already printed its message (or the help/version).
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (err instanceof UsageError) {
      io.stderr.write(`kcr: ${err.message}\n`);
      return EXIT.usage;
    }
    io.stderr.write(`kcr: ${errorMessage(localModeGone(err, io.env) ?? err)}\n`);
    return EXIT.failure;
  }
}
