// The agent runs as its own process (node-agent/main.ts, as in the DaemonSet,
// started as the local mode starts it) so its resident memory can be read from /proc while it streams 1 GiB.
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync, closeSync, openSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNodeAgentProcess, type NodeAgentProcess } from '../../local/node-agent-process.js';

const GiB = 1 << 30;
const MiB = 1 << 20;
const TOKEN = 'memory-test-token';
const NAME = 'checkpoint-big-0_shop-app-2026-11-23T18:15:04Z.tar';

function statusKiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(m[1]);
}

/** GETs the archive and counts bytes without keeping them; calls `sample` on every MiB. */
function download(url: string, sample: () => void): Promise<{ status: number; length: number; received: number }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { authorization: `Bearer ${TOKEN}` } }, (res) => {
      let received = 0;
      let nextSample = 0;
      res.on('data', (c: Buffer) => {
        received += c.length;
        if (received >= nextSample) {
          sample();
          nextSample += 16 * MiB;
        }
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, length: Number(res.headers['content-length']), received }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('node-agent streaming memory', () => {
  let dir: string;
  let agent: NodeAgentProcess;
  let url: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kcr-agent-mem-'));
    // A sparse 1 GiB file: reading it costs no disk, and the agent cannot tell.
    closeSync(openSync(join(dir, NAME), 'w', 0o600));
    truncateSync(join(dir, NAME), GiB);
    writeFileSync(join(dir, 'token'), TOKEN);
    agent = await startNodeAgentProcess({ dir, tokenFile: join(dir, 'token'), allowDelete: false, logPath: join(dir, 'agent.log') });
    url = `${agent.url}/checkpoints/${NAME}`;
  });
  afterAll(async () => {
    await agent?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('streams 1 GiB with RSS growth under 64 MiB', async () => {
    const pid = agent.pid;
    // Warm up (JIT, buffers, the first request path) before taking the baseline.
    await download(url.replace(NAME, 'checkpoint-none-0_shop-app-2026-11-23T18:15:04Z.tar'), () => {});
    const baseline = statusKiB(pid, 'VmRSS');
    let peakSampled = baseline;
    let hwmReset = true;
    try {
      writeFileSync(`/proc/${pid}/clear_refs`, '5'); // resets VmHWM to the current RSS
    } catch {
      hwmReset = false;
    }
    const result = await download(url, () => {
      peakSampled = Math.max(peakSampled, statusKiB(pid, 'VmRSS'));
    });
    expect(result.status).toBe(200);
    expect(result.length).toBe(GiB);
    expect(result.received).toBe(GiB);
    const peak = hwmReset ? Math.max(peakSampled, statusKiB(pid, 'VmHWM')) : peakSampled;
    const growthMiB = (peak - baseline) / 1024;
    console.log(`node-agent RSS: baseline ${(baseline / 1024).toFixed(1)} MiB, peak ${(peak / 1024).toFixed(1)} MiB, growth ${growthMiB.toFixed(1)} MiB (VmHWM reset: ${hwmReset})`);
    expect(growthMiB).toBeLessThan(64);
  }, 120_000);
});
