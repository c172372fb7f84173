#!/usr/bin/env node
// The installed `kcr` and `kubectl-kcr` executables: Node with tsx's loader
// registered (resolved from this file, so any working directory works), then
// the TypeScript entry point. process.argv[1] stays this file's path, whose
// name tells main.ts whether kubectl ran it.
import { register } from 'tsx/esm/api';

register();
await import('./main.ts');
