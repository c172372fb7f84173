#!/usr/bin/env -S npx tsx
// Entry point of the `kcr` command.
import { runCli } from './run.js';

process.exitCode = await runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env });
