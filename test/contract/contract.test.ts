import { describe, expect, it } from 'vitest';
import { checkpointId, checkpointIdTime, CHECKPOINT_ID_PATTERN } from '../../functions/core/contract/checkpoint-id.js';
import { kubeletArchiveName, parseKubeletArchivePath, KUBELET_ARCHIVE_NAME } from '../../functions/core/contract/kubelet-archive.js';
import { ALL_EVENT_TYPES, checkData, ContractSchemas, EventTypes } from '../../functions/core/contract/events.js';
import { events, newEvent } from '../../functions/core/contract/build.js';
import { artifactKey, eventKey, parseArtifactKey } from '../../functions/core/storage/layout.js';
import { sampleCreated } from '../runtime/fixtures/test-handler.js';

describe('checkpoint id', () => {
  it('is the same for the same pod UID, container and kubelet time', () => {
    const a = checkpointId({ podUid: 'u1', container: 'app', checkpointedAt: '2026-11-23T18:15:04Z' });
    expect(a).toBe(checkpointId({ podUid: 'u1', container: 'app', checkpointedAt: '2026-11-23T19:15:04+01:00' }));
    expect(a).toMatch(CHECKPOINT_ID_PATTERN);
    expect(a.startsWith('20261123T181504Z-')).toBe(true);
  });

  it('differs when the pod, container or time differ', () => {
    const base = { podUid: 'u1', container: 'app', checkpointedAt: '2026-11-23T18:15:04Z' };
    const ids = new Set([
      checkpointId(base),
      checkpointId({ ...base, podUid: 'u2' }),
      checkpointId({ ...base, container: 'sidecar' }),
      checkpointId({ ...base, checkpointedAt: '2026-11-23T18:15:05Z' }),
    ]);
    expect(ids.size).toBe(4);
  });

  it('sorts by time', () => {
    const times = ['2026-11-23T18:15:04Z', '2025-01-01T00:00:00Z', '2026-11-23T09:00:00Z', '2026-12-01T00:00:00Z'];
    const ids = times.map((t, i) => checkpointId({ podUid: `pod-${i}`, container: 'c', checkpointedAt: t }));
    const byId = [...ids].sort().map((id) => checkpointIdTime(id).toISOString());
    expect(byId).toEqual([...times].map((t) => new Date(t).toISOString()).sort());
  });

  it('rejects an invalid time', () => {
    expect(() => checkpointId({ podUid: 'u', container: 'c', checkpointedAt: 'yesterday' })).toThrow(/invalid checkpoint time: "yesterday"/);
  });
});

describe('kubelet archive names', () => {
  const ref = { pod: 'web-0', namespace: 'my-ns', container: 'redis-server' };
  it('round-trips with namespaces and containers holding dashes', () => {
    const name = kubeletArchiveName({ ...ref, timestamp: '2026-11-23T18:15:04Z' });
    expect(name).toBe('checkpoint-web-0_my-ns-redis-server-2026-11-23T18:15:04Z.tar');
    expect(KUBELET_ARCHIVE_NAME.test(name)).toBe(true);
    expect(parseKubeletArchivePath(`/var/lib/kubelet/checkpoints/${name}`, ref)).toEqual({ ...ref, timestamp: '2026-11-23T18:15:04Z' });
  });
  it('refuses an archive of another container or a bad timestamp', () => {
    expect(() => parseKubeletArchivePath('/x/checkpoint-web-0_my-ns-other-2026-11-23T18:15:04Z.tar', ref)).toThrow(/not a checkpoint of my-ns\/web-0\/redis-server/);
    expect(() => parseKubeletArchivePath('/x/checkpoint-web-0_my-ns-redis-server-2026-13-45T99:15:04Z.tar', ref)).toThrow();
    expect(KUBELET_ARCHIVE_NAME.test('../etc/passwd')).toBe(false);
  });
});

describe('event contract', () => {
  it('has a schema for every type of the contract', () => {
    expect(ALL_EVENT_TYPES.sort()).toEqual(
      [
        'dev.knative.sources.ping',
        'dev.knative.apiserver.resource.add',
        'dev.knative.apiserver.resource.update',
        'dev.knative.apiserver.resource.delete',
        'io.kcr.checkpoint.requested',
        'io.kcr.checkpoint.created',
        'io.kcr.checkpoint.stored',
        'io.kcr.image.built',
        'io.kcr.pod.restored',
        'io.kcr.checkpoint.failed',
        'io.kcr.restore.failed',
        'io.kcr.restore.requested',
        'io.kcr.schedule.synced',
      ].sort(),
    );
    expect(Object.keys(ContractSchemas)).toHaveLength(13);
  });

  it('accepts a restore request for a pod or a workload, by checkpoint id, and nothing in between', () => {
    const id = '20250131T120000Z-0123456789ab';
    expect(checkData(EventTypes.restoreRequested, { namespace: 'ns', pod: 'web-0', checkpointId: id }).ok).toBe(true);
    expect(checkData(EventTypes.restoreRequested, { namespace: 'ns', kind: 'StatefulSet', name: 'web', checkpointId: id }).ok).toBe(true);
    expect(checkData(EventTypes.restoreRequested, { namespace: 'ns', pod: 'web-0' }).ok).toBe(false);
    expect(checkData(EventTypes.restoreRequested, { namespace: 'ns', pod: 'web-0', checkpointId: '../x' }).ok).toBe(false);
    expect(checkData(EventTypes.restoreRequested, { namespace: 'ns', pod: 'web-0', kind: 'StatefulSet', name: 'web', checkpointId: id }).ok).toBe(false);
    expect(checkData(EventTypes.restoreRequested, { namespace: 'ns', kind: 'Pod', name: 'web-0', checkpointId: id }).ok).toBe(false);
  });

  it('accepts both shapes of checkpoint.requested and rejects a mix', () => {
    expect(checkData(EventTypes.checkpointRequested, { namespace: 'ns', kind: 'Deployment', name: 'counter' }).ok).toBe(true);
    expect(checkData(EventTypes.checkpointRequested, { namespace: 'ns', pod: 'web-0' }).ok).toBe(true);
    expect(checkData(EventTypes.checkpointRequested, { namespace: 'ns', pod: 'web-0', container: 'app' }).ok).toBe(true);
    expect(checkData(EventTypes.checkpointRequested, { namespace: 'ns', kind: 'DaemonSet', name: 'x' }).ok).toBe(false);
  });

  it('builds events with source, subject and the checkpoint id extension', () => {
    const e = events.checkpointCreated(sampleCreated, { source: 'request-checkpoint' });
    expect(e.type).toBe('io.kcr.checkpoint.created');
    expect(e.source).toBe('/kcr/request-checkpoint');
    expect(e.subject).toBe('default/counter-7d9f8-abcde/app');
    expect(e.kcrcheckpointid).toBe(sampleCreated.id);
    const s = events.scheduleSynced({ namespace: 'ns', kind: 'StatefulSet', name: 'web', schedule: '*/5 * * * *', action: 'created' }, { source: 'schedule-sync' });
    expect(s.subject).toBe('ns/StatefulSet/web');
    const f = events.checkpointFailed({ namespace: 'ns', pod: 'web-0', container: 'app', stage: 'request', reason: 'kubelet said 500' }, { source: 'request-checkpoint' });
    expect(f.subject).toBe('ns/web-0/app');
  });

  it('refuses to build an event whose data breaks the contract', () => {
    expect(() => newEvent(EventTypes.imageBuilt, { ...sampleCreated } as never, { source: 'build-image' })).toThrow(/refusing to emit an invalid io.kcr.image.built event: .*artifact/);
    const stored = { ...sampleCreated, artifact: { uri: 's3://b/k', size: 1, sha256: 'a'.repeat(64) } };
    expect(() => events.imageBuilt({ ...stored, image: { reference: 'reg/repo:latest', digest: `sha256:${'b'.repeat(64)}`, size: 1 } }, { source: 'build-image' })).toThrow(/by digest/);
  });
});

describe('storage layout', () => {
  const loc = { namespace: 'ns', workload: { kind: 'StatefulSet' as const, name: 'web' }, container: 'app', id: '20261123T181504Z-0123456789ab' };
  it('names artifacts as docs/architecture.md gives and parses them back', () => {
    expect(artifactKey(loc, 'archive')).toBe('checkpoints/ns/StatefulSet/web/app/20261123T181504Z-0123456789ab/archive.tar');
    expect(artifactKey(loc, 'manifest')).toBe('checkpoints/ns/StatefulSet/web/app/20261123T181504Z-0123456789ab/manifest.json');
    expect(parseArtifactKey(artifactKey(loc, 'image'))).toEqual({ ...loc, file: 'image.json' });
    expect(parseArtifactKey('events/2026/11/23/18/x.json')).toBeUndefined();
  });
  it('files events by hour and keeps the key safe', () => {
    expect(eventKey('2026-11-23T18:15:04.123Z', 'a/b')).toBe('events/2026/11/23/18/2026-11-23T181504.123Z-a_b.json');
  });
});
