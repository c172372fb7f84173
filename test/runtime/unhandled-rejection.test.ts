// A promise rejected with no handler must not take a function down: the
// process logs it and keeps serving. Run as a child process, since the
// rejection is process-wide (and vitest would report it as a test error).
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { sampleCreated } from './fixtures/test-handler.js';

interface Child {
  proc: ChildProcessWithoutNullStreams;
  lines: string[];
  /** Resolves with the first line (already seen or to come) that matches; rejects if the process exits first. */
  line(match: (line: string) => boolean): Promise<string>;
}

function start(): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'test/runtime/fixtures/leaky-function.ts'], {
    env: { ...process.env, PORT: '0', KCR_LOG_LEVEL: 'info' },
  });
  const lines: string[] = [];
  const waiters = new Set<{ match: (line: string) => boolean; resolve: (line: string) => void }>();
  createInterface({ input: proc.stdout }).on('line', (line) => {
    lines.push(line);
    for (const w of waiters) {
      if (!w.match(line)) continue;
      waiters.delete(w);
      w.resolve(line);
    }
  });
  const exited = once(proc, 'exit');
  return {
    proc,
    lines,
    line(match) {
      const seen = lines.find(match);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        waiters.add({ match, resolve });
        void exited.then(([code, signal]) => reject(new Error(`fixture exited with ${code ?? signal}; stdout:\n${lines.join('\n')}`)));
      });
    },
  };
}

const isRejectionLog = (line: string) => line.includes('"event":"unhandled-rejection"');

describe('an unhandled promise rejection in a function', () => {
  let child: Child | undefined;
  afterEach(() => {
    child?.proc.kill('SIGKILL');
  });

  it('is logged at error level through the function logger, once, and the function keeps serving', async () => {
    child = start();
    const port = Number(/READY (\d+)/.exec(await child.line((l) => l.startsWith('READY')))![1]);
    const url = `http://127.0.0.1:${port}`;
    const post = (id: string) =>
      fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'ce-specversion': '1.0', 'ce-id': id, 'ce-source': '/test', 'ce-type': 'io.kcr.checkpoint.created' },
        body: JSON.stringify(sampleCreated),
      });

    expect((await post('ev-1')).status).toBe(202);
    const logged = JSON.parse(await child.line(isRejectionLog)) as Record<string, unknown>;
    expect(logged.level).toBe(50); // pino's error
    expect(logged.function).toBe('leaky-fn');
    expect(logged.err).toBe('forgotten promise of event ev-1 rejected');

    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect((await post('ev-2')).status).toBe(202);
    await child.line((l) => isRejectionLog(l) && l.includes('event ev-2'));
    expect(child.proc.exitCode).toBeNull();

    child.proc.kill('SIGTERM');
    // 'close': stdout is read to its end, so a duplicate line could not be missed.
    const [code] = (await once(child.proc, 'close')) as [number | null];
    expect(code).toBe(0);
    // Installed twice in the fixture, logged once per rejection.
    expect(child.lines.filter(isRejectionLog)).toHaveLength(2);
  });
});
