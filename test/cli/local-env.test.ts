// The local mode's env file and the CLI: a stopped local mode leaves the file
// stale, and the CLI says "local mode is not running" (exit 1), whether the
// shell sourced the file before or after the stop, the file is gone, or the
// endpoints it names refuse connections. End to end: `npm start` stopped by
// SIGTERM leaves its env file stale.
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../cli/run.js';
import { liveEnvFile, staleEnvFile } from '../../local/env-file.js';
import { until } from '../support/wait.js';

let dir: string;
let deadUrl: string;

async function kcr(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli(args, { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) }, env });
  return { code, out, err };
}

/** The environment of a bash that ran `script` with `before` (and PATH) in its environment. */
async function bash(script: string, before: Record<string, string>, ...args: string[]): Promise<Record<string, string>> {
  const { stdout } = await promisify(execFile)('bash', ['-c', `${script} && env -0`, '_', ...args], { env: { PATH: process.env.PATH ?? '', ...before }, encoding: 'utf8' });
  return Object.fromEntries(
    stdout
      .split('\0')
      .filter(Boolean)
      .map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]),
  );
}

/** What `source file` leaves in a shell that had `before`, beside what any bash has here. */
async function sourced(file: string, before: Record<string, string> = {}): Promise<Record<string, string>> {
  const own = await bash('true', {});
  const env = await bash('source "$1"', before, file);
  return Object.fromEntries(Object.entries(env).filter(([k]) => !(k in own)));
}

/** A URL nothing listens on: a port bound, then released. */
async function refusingUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  return `http://127.0.0.1:${port}`;
}

const settings = (url: string) => ({
  K_SINK: url,
  KCR_S3_ENDPOINT: url,
  KCR_S3_ACCESS_KEY: 'S3RVER',
  KCR_S3_SECRET_KEY: 'S3RVER',
  KCR_S3_REGION: 'us-east-1',
  KCR_S3_BUCKET: 'kcr-checkpoints',
  KCR_NODE_AGENT_URLS: '{"node-1":"http://127.0.0.1:1"}',
  KCR_NODE_AGENT_TOKEN: "it's quoted",
});

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kcr-env-'));
  deadUrl = await refusingUrl();
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('the env file', () => {
  it('sources to exactly the settings while live, and unsets them once stale', async () => {
    const file = join(dir, 'quoting');
    writeFileSync(file, liveEnvFile(file, settings(deadUrl)));
    expect(await sourced(file)).toEqual({ ...settings(deadUrl), KCR_LOCAL_ENV_FILE: file });
    writeFileSync(file, staleEnvFile(file, settings(deadUrl), new Date('2026-11-30T12:00:00Z')));
    expect(await sourced(file, settings(deadUrl))).toEqual({ KCR_LOCAL_ENV_FILE: file, KCR_LOCAL_STOPPED: '2026-11-30T12:00:00.000Z' });
  });
});

describe('the CLI in a local-mode shell', () => {
  const notRunning = (r: { code: number; err: string }) => {
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^kcr: local mode is not running: /);
  };

  it('says so when the shell sourced the file after the stop', async () => {
    const file = join(dir, 'after');
    writeFileSync(file, staleEnvFile(file, settings(deadUrl), new Date('2026-11-30T12:00:00Z')));
    const r = await kcr(['events', 'list'], await sourced(file));
    notRunning(r);
    expect(r.err).toContain('it stopped at 2026-11-30T12:00:00.000Z; start it with `npm start`');
  });

  it('says so when the shell sourced the live file and the local mode stopped since', async () => {
    const file = join(dir, 'before');
    writeFileSync(file, liveEnvFile(file, settings(deadUrl)));
    const env = await sourced(file);
    writeFileSync(file, staleEnvFile(file, settings(deadUrl), new Date('2026-11-30T12:00:00Z')));
    for (const args of [
      ['events', 'list'],
      ['checkpoint', 'deployment/counter'],
    ]) {
      const r = await kcr(args, env);
      notRunning(r);
      expect(r.err).toContain(`it stopped at 2026-11-30T12:00:00.000Z (${file} says so)`);
    }
    unlinkSync(file);
    const gone = await kcr(['events', 'list'], env);
    notRunning(gone);
    expect(gone.err).toContain(`its env file ${file} cannot be read`);
  });

  it("says so when the live file's S3 or broker refuses connections (the local mode was killed)", async () => {
    const file = join(dir, 'killed');
    writeFileSync(file, liveEnvFile(file, settings(deadUrl)));
    const env = await sourced(file);
    for (const args of [
      ['events', 'list'],
      ['checkpoint', 'deployment/counter'],
    ]) {
      const r = await kcr(args, env);
      notRunning(r);
      expect(r.err).toContain('ECONNREFUSED');
    }
  });

  it('leaves a refused connection outside local mode as it is', async () => {
    const r = await kcr(['checkpoint', 'deployment/counter'], { K_SINK: deadUrl });
    expect(r.code).toBe(1);
    expect(r.err).not.toContain('local mode');
    expect(r.err).toContain('ECONNREFUSED');
  });
});

describe('npm start', () => {
  it('leaves its env file stale when stopped by SIGTERM, so the CLI says it is not running', async () => {
    const stateDir = join(dir, 'run');
    const envFile = join(stateDir, 'env');
    const child = spawn(process.execPath, ['--import', 'tsx', 'local/main.ts', '--state-dir', stateDir, '--oci-layout', '--state-mib', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (b: Buffer) => (output += b.toString()));
    child.stderr.on('data', (b: Buffer) => (output += b.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    await Promise.race([
      until('the local mode to write its env file', () => existsSync(envFile) && readFileSync(envFile, 'utf8').includes('KCR_LOCAL_ENV_FILE'), {
        timeout: 90_000,
        interval: 100,
        context: () => output,
      }),
      exited.then((code) => {
        throw new Error(`the local mode exited (${code}) before writing its env file:\n${output}`);
      }),
    ]);
    const live = await sourced(envFile);
    expect(live).toMatchObject({ KCR_LOCAL_ENV_FILE: envFile, K_SINK: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+/) });

    child.kill('SIGTERM');
    expect(await exited).toBe(143);
    expect(output).toContain('stopped by SIGTERM');
    const stale = await sourced(envFile);
    expect(stale).toEqual({ KCR_LOCAL_ENV_FILE: envFile, KCR_LOCAL_STOPPED: expect.any(String) });
    for (const env of [live, stale]) {
      const r = await kcr(['events', 'list'], env);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/^kcr: local mode is not running: it stopped at /);
    }
  }, 120_000);
});
