// Small measuring tools for the benchmarks: peak RSS of a process from
// /proc/<pid>/status, wall time of a function or of a command.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

export const MiB = 1024 * 1024;

/** A `kB` field of /proc/<pid>/status (VmHWM = peak RSS, VmRSS = current RSS), in bytes. */
export function procStatusBytes(field: 'VmHWM' | 'VmRSS', pid: number | 'self' = 'self'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status);
  if (!m) throw new Error(`/proc/${pid}/status has no ${field} line (not Linux, or the process is gone)`);
  return Number(m[1]) * 1024;
}

export async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const start = performance.now();
  const value = await fn();
  return { ms: performance.now() - start, value };
}

export interface CommandResult {
  ms: number;
  stdout: string;
}

/**
 * Runs a command to completion and times it; a non-zero exit throws with the
 * command line and the end of its stderr. stdout is kept (buildah prints ids).
 */
export function runCommand(cmd: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; stdoutTo?: 'ignore' } = {}): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(cmd, args, { stdio: ['ignore', options.stdoutTo === 'ignore' ? 'ignore' : 'pipe', 'pipe'], env: options.env ?? process.env });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (c: Buffer) => out.push(c));
    child.stderr?.on('data', (c: Buffer) => err.push(c));
    child.once('error', (e) => reject(new Error(`cannot run ${cmd}: ${e.message}`, { cause: e })));
    child.once('close', (code, signal) => {
      const ms = performance.now() - start;
      if (code === 0) return resolve({ ms, stdout: Buffer.concat(out).toString('utf8') });
      const stderr = Buffer.concat(err).toString('utf8').trim().slice(-2000);
      reject(new Error(`${cmd} ${args.join(' ')} exited with ${code ?? signal}: ${stderr}`));
    });
  });
}

export function seconds(ms: number): string {
  return (ms / 1000).toFixed(2);
}

export function mib(bytes: number): string {
  return (bytes / MiB).toFixed(0);
}

/** Throughput in MiB/s of `bytes` moved in `ms`. */
export function rate(bytes: number, ms: number): string {
  return (bytes / MiB / (ms / 1000)).toFixed(0);
}
