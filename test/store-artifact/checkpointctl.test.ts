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
});
