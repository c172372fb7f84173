// Cross-checks against checkpointctl (Debian package, go-criu underneath): it
// must accept the test archives as CRI-O checkpoints, and read the same
// config, container and CRIU statistics as kcr's streaming inspection.
import { execFileSync } from 'node:child_process';
import { createReadStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { inspectCheckpointArchive } from '../../functions/store-artifact/checkpoint-archive.js';
import { writeCheckpointArchive } from '../../simulator/archive-writer.js';
import { buildCheckpointArchive } from '../../simulator/archive.js';
import { decodePages } from '../../simulator/state.js';
import { readTar } from '../../simulator/archive.js';
import { writeFileSync } from 'node:fs';
import { optionalBinary } from '../support/binaries.js';

const checkpointctl = optionalBinary('checkpointctl');
const dir = mkdtempSync(join(tmpdir(), 'kcr-ctl-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(!checkpointctl)('checkpointctl agrees with the archive inspection', () => {
  it('reads the same image, runtime, container and dump statistics', async () => {
    const file = join(dir, 'checkpoint-db-0_data-postgres-2026-11-23T18:15:04Z.tar');
    await writeCheckpointArchive(file, {
      pod: 'db-0',
      namespace: 'data',
      podUid: 'uid-db',
      container: 'postgres',
      pagesBytes: 2 << 20,
      rootfsImageName: 'docker.io/library/postgres:16',
      stats: { freezing_time: 11, frozen_time: 22, memdump_time: 33, memwrite_time: 44, pages_scanned: 555, pages_skipped_parent: 0, pages_written: 512, pages_lazy: 0 },
    });
    const out = execFileSync(checkpointctl as string, ['inspect', '--stats', '--format', 'json', file], { encoding: 'utf8' });
    const [theirs] = JSON.parse(out) as { container_name: string; image: string; runtime: string; engine: string; statistics: Record<string, number> }[];
    const ours = await inspectCheckpointArchive(createReadStream(file));
    expect(theirs?.engine).toBe('CRI-O');
    expect(theirs?.container_name).toBe(ours.container.container);
    expect(theirs?.image).toBe(ours.config.rootfsImageName);
    expect(theirs?.runtime).toBe(ours.config.runtime);
    expect(ours.stats?.decoded).toBe(true);
    const dump = ours.stats?.decoded ? ours.stats.dump : {};
    for (const [field, value] of Object.entries(theirs?.statistics ?? {})) expect(dump[field], field).toBe(value);
    expect(Object.keys(theirs?.statistics ?? {}).length).toBeGreaterThanOrEqual(6);
  });

  it("reads everything inspect --all asks of the simulated kubelet's archive: command line, environment, open files", async () => {
    const archive = await buildCheckpointArchive({
      namespace: 'shop',
      pod: 'cart-0',
      podUid: 'uid-cart',
      container: 'app',
      containerId: 'a'.repeat(64),
      image: 'quay.io/kcr/cart:1',
      imageRef: `sha256:${'b'.repeat(64)}`,
      podIP: '10.244.0.9',
      sandboxId: 'c'.repeat(64),
      restartCount: 0,
      createdAt: '2026-11-30T10:00:00Z',
      checkpointedAt: '2026-11-30T10:00:05Z',
      state: { counter: 42, data: Buffer.alloc(3 * 4096 + 7, 1), flags: {}, crashOnRestore: false },
    });
    const file = join(dir, 'checkpoint-cart-0_shop-app-2026-11-30T10:00:05Z.tar');
    writeFileSync(file, archive);
    const [all] = JSON.parse(execFileSync(checkpointctl as string, ['inspect', '--all', '--format', 'json', file], { encoding: 'utf8' })) as {
      process_tree: { pid: number; cmdline: string; environment_variables: Record<string, string> };
      file_descriptors: { process_id: number; open_files: { type: string; fd: string; path: string }[] }[];
      mounts: unknown[];
    }[];
    expect(all?.process_tree.pid).toBe(1);
    expect(all?.process_tree.cmdline.trim()).toBe('/counter');
    expect(all?.process_tree.environment_variables.HOSTNAME).toBe('cart-0');
    expect(all?.file_descriptors[0]?.open_files.map((f) => `${f.fd} ${f.path}`)).toEqual(['REG 0 /dev/null', 'REG 1 /dev/null', 'REG 2 /dev/null', 'cwd /', 'root /']);
    expect(all?.mounts.length).toBeGreaterThan(0);
    // The page after the state's holds argv and environ; the state itself still reads back whole.
    const pages = (await readTar(archive)).get('checkpoint/pages-1.img')!;
    expect(decodePages(pages).state.counter).toBe(42);
    expect(execFileSync(checkpointctl as string, ['memparse', file], { encoding: 'utf8' })).toMatch(/\|\s+1 \| app\s+\| 20\.0 KiB/);
  });
});
