// `kcr status`'s decision: per opted-in container, the newest committed
// checkpoint and whether it is late against the schedule. Pure, milliseconds.
import { describe, expect, it } from 'vitest';
import { containerStatuses } from '../../cli/status.js';
import type { CheckpointInfo } from '../../cli/inventory.js';

const NOW = new Date('2026-11-30T12:00:00Z');

function checkpoint(container: string, at: string, state: CheckpointInfo['state'] = 'committed'): CheckpointInfo {
  const id = `${at.replace(/[-:]/g, '').replace(/\.\d+/, '')}-0123456789ab`;
  return {
    loc: { namespace: 'shop', workload: { kind: 'Deployment', name: 'web' }, container, id },
    size: 100,
    state,
    manifest: { data: { checkpointedAt: at } } as CheckpointInfo['manifest'],
  };
}

describe('containerStatuses', () => {
  const web = { namespace: 'shop', kind: 'Deployment', name: 'web', annotations: { 'kcr.io/checkpoint-restore-schedule': '*/5 * * * *' }, containers: ['app', 'cache'] };

  it('takes the newest good checkpoint per container and flags one older than two intervals', () => {
    const out = containerStatuses(
      web.annotations ? [web] : [],
      [checkpoint('app', '2026-11-30T11:58:00Z'), checkpoint('cache', '2026-11-30T11:59:00Z', 'bad'), checkpoint('cache', '2026-11-30T11:40:00Z')],
      NOW,
    );
    expect(out.map((c) => [c.container, c.lastCheckpoint?.ageSeconds, c.late, c.checkpoints])).toEqual([
      ['app', 120, false, 1],
      ['cache', 1200, true, 1],
    ]);
  });

  it('follows kcr.io/checkpoint-containers, and never flags a container with no checkpoint yet or no schedule', () => {
    const only = { ...web, annotations: { ...web.annotations, 'kcr.io/checkpoint-containers': 'cache' } };
    expect(containerStatuses([only], [], NOW)).toEqual([{ namespace: 'shop', workload: 'deployment/web', container: 'cache', schedule: '*/5 * * * *', late: false, checkpoints: 0, bytes: 0 }]);
    const restoreOnly = { ...web, annotations: { 'kcr.io/restore': 'true' }, containers: ['app'] };
    expect(containerStatuses([restoreOnly], [checkpoint('app', '2026-01-01T00:00:00Z')], NOW)[0]).toMatchObject({ schedule: '(restore only)', late: false });
  });
});
