// `npm start -- --once --runtime podman`: the local mode's demo on real containers, as a
// user runs it (its own process, its own state directory), says which runtime ran and
// ends with every step done, Redis's keys included. Skips without podman/runc/criu, fails so under
// KCR_REQUIRE_BINARIES=1.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { realRuntimeAvailable } from '../support/podman.js';

const available = await realRuntimeAvailable();
const dir = mkdtempSync(join(tmpdir(), 'kcr-demo-podman-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(!available)('npm start -- --once --runtime podman', () => {
  it('runs the demo on real containers and exits 0', async () => {
    const root = resolve(import.meta.dirname, '..', '..');
    const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((done) => {
      execFile(
        process.execPath,
        ['--import', 'tsx', join(root, 'local', 'main.ts'), '--once', '--runtime', 'podman', '--state-dir', dir, '--state-mib', '4', '--step-timeout', '60'],
        { cwd: root, maxBuffer: 32 * 1024 * 1024, timeout: 170_000 },
        (err, out, errOut) => done({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout: out, stderr: errOut }),
      );
    });
    expect(code, `${stdout.slice(-3000)}\n${stderr.slice(-2000)}`).toBe(0);
    expect(stdout).toMatch(/runtime {6}podman \+ runc, checkpoints by CRIU/);
    expect(stdout).toContain('runtime: podman (real containers checkpointed and restored by CRIU)');
    expect(stdout).toMatch(/✓ +its state continues .*before the kill \d+, checkpointed \d+ \([\d.]+ MiB archive\), after the restore \d+/);
    // Debian's redis-server with persistence off: every key back after the kill, by CRIU alone.
    expect(stdout).toMatch(/✓ +Redis restored with its data .*after the restore DBSIZE 10000 and 5 sampled values equal/);
    expect(stdout).toMatch(/✓ +total/);
  }, 180_000);
});
