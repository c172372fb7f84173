// `kcr events replay`: what is archived, and where replays go without --broker/--to.
// Through the broker, event-archive archives a replay like any event; with --to
// (one function, past the broker) kcr archives the copy itself, in event-archive's
// very form and key.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TransientError } from '../../functions/core/runtime/errors.js';
import { createLogger } from '../../functions/core/runtime/logger.js';
import { serveFunction, type RunningFunction } from '../../functions/core/runtime/server.js';
import { S3ObjectStore } from '../../functions/core/storage/s3.js';
import { archiveKey, toStructured, type ArchivableEvent } from '../../functions/event-archive/archived-event.js';
import { createEventArchive } from '../../functions/event-archive/handler.js';
import { runCli } from '../../cli/run.js';
import type { S3Settings } from '../../cli/io.js';
import { startS3, type S3Fixture } from '../support/s3.js';
import { startSink, type TestSink } from '../support/sink.js';
import { created, ping } from '../event-archive/samples.js';

const NOW = new Date('2026-11-23T23:00:00Z');
const BUCKET = 'kcr-replay-archive';
/** Where a real event-archive, reached with --to, archives what it receives. */
const ARCHIVE_FN_BUCKET = 'kcr-replay-archive-fn';

const originals: ArchivableEvent[] = [
  {
    id: 'ev-created',
    type: 'io.kcr.checkpoint.created',
    source: '/kcr/request-checkpoint',
    subject: 'default/counter-7d9f8-abcde/app',
    time: '2026-11-23T18:15:05Z',
    data: created,
    extensions: { kcrcheckpointid: created.id, traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' },
  },
  {
    id: 'ev-ping',
    type: 'dev.knative.sources.ping',
    source: '/apis/v1/namespaces/default/pingsources/counter',
    subject: 'default/Deployment/counter',
    time: '2026-11-23T18:00:10Z',
    data: ping,
    extensions: {},
  },
];

/** A store whose writes fail, as S3 refusing them. */
class ReadOnlyStore extends S3ObjectStore {
  override async putJson(key: string): Promise<void> {
    throw new TransientError(`writing ${key} failed: S3 is read-only today`);
  }
}

describe('kcr events replay: archiving and destinations', () => {
  let s3: S3Fixture;
  let sink: TestSink;
  let store: S3ObjectStore;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    s3 = await startS3();
    sink = await startSink();
    env = { KCR_S3_ENDPOINT: s3.endpoint, KCR_S3_ACCESS_KEY: s3.accessKey, KCR_S3_SECRET_KEY: s3.secretKey, KCR_S3_BUCKET: BUCKET };
    store = new S3ObjectStore(s3.storeOptions(BUCKET));
    await store.ensureBucket();
    for (const e of originals) await store.putJson(archiveKey(e), toStructured(e));
  });
  afterAll(async () => {
    await sink?.close();
    await s3?.stop();
  });
  afterEach(async () => {
    sink.events.length = 0;
    // Back to the two originals.
    const keep = new Set(originals.map(archiveKey));
    for await (const { key } of store.list('events/')) if (!keep.has(key)) await store.remove(key);
  });

  async function kcr(useEnv: NodeJS.ProcessEnv, argv: string[], openStore?: (s: S3Settings) => S3ObjectStore) {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runCli(argv, { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => err.push(s) }, env: useEnv, now: () => NOW, ...(openStore ? { openStore } : {}) });
    return { code, stdout: out.join(''), stderr: err.join('') };
  }
  async function keys(bucketStore = store): Promise<string[]> {
    const out: string[] = [];
    for await (const { key } of bucketStore.list('events/')) out.push(key);
    return out.sort();
  }

  it("with --to, archives each copy the function answered, under event-archive's key, and show finds it by its new id", async () => {
    const r = await kcr(env, ['events', 'replay', 'ev-created', '--to', sink.url, '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const [line] = JSON.parse(r.stdout) as { id: string; archived: string }[];
    const sent = sink.events[0]!;
    expect(line!.id).toBe(sent.id);
    expect(line!.archived).toBe(`events/2026/11/23/18/2026-11-23T181505.000Z-${sent.id}.json`);
    expect(await keys()).toEqual([...originals.map(archiveKey), line!.archived].sort());
    expect(await store.getJson(line!.archived)).toMatchObject({
      id: sent.id,
      kcrreplayof: 'ev-created',
      kcrcheckpointid: created.id,
      type: 'io.kcr.checkpoint.created',
      time: '2026-11-23T18:15:05.000Z',
      data: created,
    });

    const shown = await kcr(env, ['events', 'show', sent.id]);
    expect(shown.code).toBe(0);
    expect(JSON.parse(shown.stdout)).toMatchObject({ id: sent.id, kcrreplayof: 'ev-created' });
  });

  it('archives exactly what event-archive archives when it receives the copy', async () => {
    const archiveStore = new S3ObjectStore(s3.storeOptions(ARCHIVE_FN_BUCKET));
    await archiveStore.ensureBucket();
    const fn: RunningFunction = await serveFunction(createEventArchive({ store: archiveStore }), { port: 0, host: '127.0.0.1', logger: createLogger('event-archive', 'silent') });
    try {
      // event-archive itself is the function replayed to: it archives the copy in its bucket, kcr in the archive's.
      const r = await kcr(env, ['events', 'replay', 'ev-created', 'ev-ping', '--to', fn.url, '--json']);
      expect(r.code).toBe(0);
      const lines = JSON.parse(r.stdout) as { archived: string }[];
      expect(await keys(archiveStore)).toEqual(lines.map((l) => l.archived).sort());
      for (const { archived } of lines) expect(await store.getJson(archived)).toEqual(await archiveStore.getJson(archived));
    } finally {
      await fn.close();
    }
  });

  it('archives a copy the function refused too (it arrived), and none when nothing answered', async () => {
    sink.status = 400;
    try {
      const refused = await kcr(env, ['events', 'replay', 'ev-ping', '--to', sink.url]);
      expect(refused.code).toBe(1);
      expect(refused.stdout).toMatch(/\narchived 1 of them in s3:\/\/kcr-replay-archive\/events\//);
      expect(await keys()).toHaveLength(originals.length + 1);
    } finally {
      sink.status = 202;
    }
    const unreachable = await kcr(env, ['events', 'replay', 'ev-ping', '--to', 'http://127.0.0.1:1']);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stdout).not.toContain('archived');
    expect(await keys()).toHaveLength(originals.length + 1);
  });

  it('says so, and exits 1, when the copy reached the function but could not be archived', async () => {
    const r = await kcr(env, ['events', 'replay', 'ev-ping', '--to', sink.url], (s) => new ReadOnlyStore(s));
    expect(sink.events).toHaveLength(1);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      new RegExp(
        `^replay of ev-ping reached ${sink.url}, but was not archived: archiving event ${sink.events[0]!.id} \\(dev\\.knative\\.sources\\.ping\\) to s3://${BUCKET}/events/2026/11/23/18/.* failed: writing .* S3 is read-only today\\n`,
      ),
    );
    expect(r.stderr).toContain('kcr: 1 of 1 replayed events were not archived');
  });

  it('through the broker, leaves the archiving to event-archive', async () => {
    const r = await kcr(env, ['events', 'replay', 'ev-created', '--broker', sink.url, '--json']);
    expect(r.code).toBe(0);
    expect(sink.events).toHaveLength(1);
    expect((JSON.parse(r.stdout) as { archived?: string }[])[0]!.archived).toBeUndefined();
    expect(await keys()).toEqual(originals.map(archiveKey).sort());
  });

  describe('without --broker or --to, sends to the broker the environment names, as kcr checkpoint does', () => {
    it.each([
      ['$KCR_BROKER_URL', { KCR_BROKER_URL: 'SINK' }],
      ['$K_SINK', { K_SINK: 'SINK' }],
      ['$KCR_BROKER_URL before $K_SINK', { KCR_BROKER_URL: 'SINK', K_SINK: 'http://127.0.0.1:1' }],
    ])('%s', async (_what, vars) => {
      const withSink = Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, v === 'SINK' ? sink.url : v]));
      const r = await kcr({ ...env, ...withSink }, ['events', 'replay', 'ev-ping']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^sent 1 event to ${sink.url}\\n`));
      expect(sink.events.map((e) => e.kcrreplayof)).toEqual(['ev-ping']);
      // A broker archives what it receives: kcr does not.
      expect(await keys()).toEqual(originals.map(archiveKey).sort());
    });

    it('--broker wins over the environment', async () => {
      const r = await kcr({ ...env, KCR_BROKER_URL: 'http://127.0.0.1:1' }, ['events', 'replay', 'ev-ping', '--broker', sink.url]);
      expect(r.code).toBe(0);
      expect(sink.events).toHaveLength(1);
    });
  });
});
