// The node-agent process (node-agent/main.ts, as the DaemonSet runs it) outlives
// a promise rejected with no handler: it logs it and keeps serving.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';

describe('node-agent process', () => {
  it('logs an unhandled rejection at error level and keeps serving', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kcr-agent-reject-'));
    writeFileSync(join(dir, 'token'), 'reject-test-token');
    const proc = spawn(process.execPath, ['--import', 'tsx', '--import', './test/node-agent/fixtures/reject-on-signal.ts', 'node-agent/main.ts'], {
      env: { ...process.env, KCR_NODE_AGENT_DIR: dir, KCR_NODE_AGENT_TOKEN_FILE: join(dir, 'token'), KCR_NODE_AGENT_HOST: '127.0.0.1', KCR_NODE_AGENT_PORT: '0', KCR_LOG_LEVEL: 'info' },
    });
    const entries: Record<string, unknown>[] = [];
    const waiters = new Set<{ match: (e: Record<string, unknown>) => boolean; resolve: (e: Record<string, unknown>) => void }>();
    createInterface({ input: proc.stdout }).on('line', (line) => {
      const entry = JSON.parse(line) as Record<string, unknown>;
      entries.push(entry);
      for (const w of waiters) {
        if (!w.match(entry)) continue;
        waiters.delete(w);
        w.resolve(entry);
      }
    });
    const exited = once(proc, 'exit');
    const logged = (event: string) =>
      new Promise<Record<string, unknown>>((resolve, reject) => {
        const seen = entries.find((e) => e.event === event);
        if (seen) return resolve(seen);
        waiters.add({ match: (e) => e.event === event, resolve });
        void exited.then(([code, signal]) => reject(new Error(`node-agent exited with ${code ?? signal} before logging ${event}`)));
      });
    try {
      const { port } = (await logged('listening')) as { port: number };
      proc.kill('SIGUSR2');
      const rejection = await logged('unhandled-rejection');
      expect(rejection.level).toBe(50); // pino's error
      expect(rejection.err).toBe('forgotten promise in the node-agent rejected');
      expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
      expect(proc.exitCode).toBeNull();
    } finally {
      proc.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
