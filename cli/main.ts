#!/usr/bin/env -S npx tsx
// Entry point of the `kcr` command; installed as `kubectl-kcr` too, which kubectl runs as `kubectl kcr`.
import { basename } from 'node:path';
import { runCli } from './run.js';

const programName = basename(process.argv[1] ?? '').startsWith('kubectl-') ? 'kubectl kcr' : 'kcr';
// Ctrl-C ends a watch (`get -w`) cleanly; anything still running a moment later is ended as the default handler would (exit 130).
const interrupted = new AbortController();
for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.once(sig, () => {
    interrupted.abort();
    setTimeout(() => process.exit(130), 500).unref();
  });
process.exitCode = await runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env, programName, signal: interrupted.signal });
