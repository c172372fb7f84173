// `kcr events list` over an hour holding more than one page (1,000 keys) of
// archived events: the embedded s3rver pages ListObjectsV2 on Node 20 (its
// continuation tokens use DES; local/embedded-s3.ts), and every event is listed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3ObjectStore } from '../../functions/core/storage/s3.js';
import { archiveKey, toStructured, type ArchivableEvent } from '../../functions/event-archive/archived-event.js';
import { runCli } from '../../cli/run.js';
import { startS3, type S3Fixture } from '../support/s3.js';
import { ping } from '../event-archive/samples.js';

const BUCKET = 'kcr-cli-paging';
const EVENTS = 1_205;
const HOUR = Date.parse('2026-11-23T18:00:00Z');

/** One ping every 2.5 s from 18:00: all in the hour prefix events/2026/11/23/18/. */
const archived: ArchivableEvent[] = Array.from({ length: EVENTS }, (_, i) => ({
  id: `ev-${String(i).padStart(4, '0')}`,
  type: 'dev.knative.sources.ping',
  source: '/apis/v1/namespaces/default/pingsources/counter',
  subject: 'default/Deployment/counter',
  time: new Date(HOUR + i * 2_500).toISOString(),
  data: ping,
  extensions: {},
}));

describe('kcr events list beyond one S3 page', () => {
  let s3: S3Fixture;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    s3 = await startS3();
    env = { KCR_S3_ENDPOINT: s3.endpoint, KCR_S3_ACCESS_KEY: s3.accessKey, KCR_S3_SECRET_KEY: s3.secretKey, KCR_S3_BUCKET: BUCKET };
    const store = new S3ObjectStore(s3.storeOptions(BUCKET));
    await store.ensureBucket();
    for (let i = 0; i < archived.length; i += 50) await Promise.all(archived.slice(i, i + 50).map((e) => store.putJson(archiveKey(e), toStructured(e))));
  }, 120_000);
  afterAll(async () => {
    await s3?.stop();
  });

  it(`lists all ${EVENTS} events of one hour, oldest first, reading the listing in pages`, async () => {
    const out: string[] = [];
    const err: string[] = [];
    const before = s3.requests.length;
    const code = await runCli(['events', 'list', '--since', '2026-11-23T18:00:00Z', '--until', '2026-11-23T18:59:59Z', '--json'], {
      stdout: { write: (s: string) => out.push(s) },
      stderr: { write: (s: string) => err.push(s) },
      env,
      now: () => new Date('2026-11-23T19:00:00Z'),
    });
    expect(err.join('')).toBe('');
    expect(code).toBe(0);
    const rows = JSON.parse(out.join('')) as { id: string }[];
    expect(rows).toHaveLength(EVENTS);
    expect(rows.map((r) => r.id)).toEqual(archived.map((e) => e.id));
    const pages = s3.requests.slice(before).filter((q) => q.query.get('list-type') === '2');
    expect(pages.map((q) => q.query.has('continuation-token'))).toEqual([false, true]);
  }, 60_000);
});
