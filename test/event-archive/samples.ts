// Contract-valid event data shared by the event-archive and CLI tests.
import type { EventData } from '../../functions/core/contract/events.js';
import { sampleCreated } from '../runtime/fixtures/test-handler.js';

export const created: EventData<'io.kcr.checkpoint.created'> = { ...sampleCreated, workload: { ...sampleCreated.workload } };

export const stored: EventData<'io.kcr.checkpoint.stored'> = {
  ...created,
  artifact: {
    uri: 's3://kcr-checkpoints/checkpoints/default/Deployment/counter/app/20261123T181504Z-0123456789ab/archive.tar',
    size: 4096,
    sha256: 'a'.repeat(64),
  },
};

export const otherCreated: EventData<'io.kcr.checkpoint.created'> = {
  ...created,
  id: '20261123T182004Z-fedcba987654',
  pod: 'db-0',
  workload: { kind: 'StatefulSet', name: 'db' },
  archivePath: '/var/lib/kubelet/checkpoints/checkpoint-db-0_default-app-2026-11-23T18:20:04Z.tar',
  checkpointedAt: '2026-11-23T18:20:04Z',
};

export const ping: EventData<'dev.knative.sources.ping'> = { namespace: 'default', kind: 'Deployment', name: 'counter' };
