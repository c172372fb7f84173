// The `kcr` program, runnable in-process: argv in, exit code out, output to the given streams.
import { Command, CommanderError } from 'commander';
import { errorMessage } from '../functions/core/runtime/errors.js';
import { addCheckpointCommand } from './checkpoint.js';
import { addEventsCommand } from './events.js';
import { UsageError } from './errors.js';
import { openS3Store, type CliIoInput } from './io.js';
import { checkLocalEnv, localModeGone } from '../local/env-file.js';

const EXIT_OK = 0;
const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

function buildProgram(input: CliIoInput): Command {
  const io = { ...input, openStore: input.openStore ?? openS3Store };
  const program = new Command('kcr')
    .description('kcr: transparent checkpoint/restore for Kubernetes workloads')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => void io.stdout.write(s),
      writeErr: (s) => void io.stderr.write(s),
    })
    .showHelpAfterError('(run with --help for usage)');
  addEventsCommand(program, io);
  addCheckpointCommand(program, io);
  // Before any command reaches an endpoint: the local mode's may be dead, or reused.
  program.hook('preAction', () => checkLocalEnv(io.env));
  return program;
}

/** Runs `kcr <argv…>` (argv without node and script) and returns the exit code. */
export async function runCli(argv: readonly string[], io: CliIoInput): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return EXIT_OK;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander has already printed its message (or the help/version).
      return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    if (err instanceof UsageError) {
      io.stderr.write(`kcr: ${err.message}\n`);
      return EXIT_USAGE;
    }
    io.stderr.write(`kcr: ${errorMessage(localModeGone(err, io.env) ?? err)}\n`);
    return EXIT_FAILURE;
  }
}
