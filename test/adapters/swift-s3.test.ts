// The Swift+s3api launcher (local/swift-s3.ts): it serves S3 with the tempauth
// credentials, reuses its rings, stops every process it started, leaves none
// behind when its parent is killed, and names the apt packages when missing.
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { S3ObjectStore } from '../../functions/core/storage/s3.js';
import { startSwiftS3, SWIFT_S3_CREDENTIALS } from '../../local/swift-s3.js';
import { swiftAvailable } from '../support/binaries.js';
import { SWIFT_START_TIMEOUT_MS } from '../support/s3.js';
import { until } from '../support/wait.js';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe.skipIf(!swiftAvailable())('Swift with s3api, launched for kcr', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kcr-swift-test-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it(
    'serves S3 with test:tester, reuses its rings on the next start, and stops all four servers',
    async () => {
      const first = await startSwiftS3({ dir });
      const ring = join(dir, 'rings', 'object.ring.gz');
      const built = statSync(ring).mtimeMs;
      try {
        expect(first).toMatchObject(SWIFT_S3_CREDENTIALS);
        const store = new S3ObjectStore({ endpoint: first.endpoint, accessKey: first.accessKey, secretKey: first.secretKey, bucket: 'kcr-swift' });
        await store.ensureBucket();
        await store.putJson('a.json', { swift: true });
        expect(await store.getJson('a.json')).toEqual({ swift: true });
      } finally {
        await first.stop();
      }
      expect(first.pids.filter(alive)).toEqual([]);
      const second = await startSwiftS3({ dir });
      try {
        expect(statSync(ring).mtimeMs).toBe(built);
        expect(second.endpoint).toBe(first.endpoint);
        // The data directory is kept too: what the first run stored is there.
        const store = new S3ObjectStore({ endpoint: second.endpoint, accessKey: second.accessKey, secretKey: second.secretKey, bucket: 'kcr-swift' });
        expect(await store.getJson('a.json')).toEqual({ swift: true });
      } finally {
        await second.stop();
      }
    },
    2 * SWIFT_START_TIMEOUT_MS,
  );

  it(
    'builds its rings again on new ports when a port of the kept ones is taken',
    async () => {
      const ringsDir = join(dir, 'shared-rings');
      const first = await startSwiftS3({ dir: join(dir, 'a'), ringsDir });
      await first.stop();
      const kept = JSON.parse(readFileSync(join(ringsDir, 'ports.json'), 'utf8')) as { account: number };
      const squatter = createServer();
      await new Promise<void>((resolve) => squatter.listen(kept.account, '127.0.0.1', resolve));
      try {
        const second = await startSwiftS3({ dir: join(dir, 'b'), ringsDir });
        try {
          const now = JSON.parse(readFileSync(join(ringsDir, 'ports.json'), 'utf8')) as { account: number };
          expect(now.account).not.toBe(kept.account);
          const store = new S3ObjectStore({ endpoint: second.endpoint, accessKey: second.accessKey, secretKey: second.secretKey, bucket: 'kcr-moved' });
          await store.ensureBucket();
          expect(await store.stat('nothing.json')).toBeUndefined();
        } finally {
          await second.stop();
        }
      } finally {
        await new Promise((resolve) => squatter.close(resolve));
      }
    },
    2 * SWIFT_START_TIMEOUT_MS,
  );

  it(
    'leaves no server running when the process that started it is killed',
    async () => {
      const script = `import { startSwiftS3 } from './local/swift-s3.ts'; const s = await startSwiftS3(); process.stdout.write(JSON.stringify(s.pids) + '\\n'); process.kill(process.pid, 'SIGKILL');`;
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
      await new Promise((resolve) => child.once('close', resolve));
      expect(child.signalCode).toBe('SIGKILL');
      const pids = JSON.parse(out) as number[];
      expect(pids).toHaveLength(4);
      await until('the Swift servers of the killed process to end', () => pids.every((pid) => !alive(pid)), { timeout: 30_000 });
    },
    2 * SWIFT_START_TIMEOUT_MS,
  );
});

describe('Swift missing', () => {
  it('fails with the apt packages to install', async () => {
    const script = `import { startSwiftS3 } from './local/swift-s3.ts'; await startSwiftS3().catch((e) => { process.stdout.write(e.message); });`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: REPO_ROOT, env: { ...process.env, PATH: '/nonexistent' } });
    expect(stdout).toMatch(/Swift is not installed .*apt-get install -y --no-install-recommends -t trixie swift-proxy swift-account swift-container swift-object/);
  });
});
