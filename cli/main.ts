#!/usr/bin/env -S npx tsx
// Entry point of the `kcr` command; installed as `kubectl-kcr` too, which kubectl runs as `kubectl kcr`.
import { basename } from 'node:path';
import { runCli } from './run.js';

const programName = basename(process.argv[1] ?? '').startsWith('kubectl-') ? 'kubectl kcr' : 'kcr';
process.exitCode = await runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env, programName });
