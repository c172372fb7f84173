import { spawnSync } from 'node:child_process';
import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { S3ObjectStore } from '../../functions/core/storage/s3.js';
import { archiveKey, toStructured, type ArchivableEvent } from '../../functions/event-archive/archived-event.js';
import { runCli } from '../../cli/run.js';
import { startS3, type S3Fixture } from '../support/s3.js';
import { startSink, type TestSink } from '../support/sink.js';
import { created, otherCreated, ping, stored } from '../event-archive/samples.js';

const NOW = new Date('2026-11-23T23:00:00Z');
const BUCKET = 'kcr-cli-test';
const BAD_BUCKET = 'kcr-cli-malformed';
const UNDATED_BUCKET = 'kcr-cli-undated';

const archived: ArchivableEvent[] = [
  {
    id: 'ev-ping-1',
    type: 'dev.knative.sources.ping',
    source: '/apis/v1/namespaces/default/pingsources/counter',
    subject: 'default/Deployment/counter',
    time: '2026-11-23T18:00:10Z',
    data: ping,
    extensions: {},
  },
  {
    id: 'ev-created-1',
    type: 'io.kcr.checkpoint.created',
    source: '/kcr/request-checkpoint',
    subject: 'default/counter-7d9f8-abcde/app',
    time: '2026-11-23T18:15:05Z',
    data: created,
    extensions: { kcrcheckpointid: created.id },
  },
  {
    id: 'ev-stored-1',
    type: 'io.kcr.checkpoint.stored',
    source: '/kcr/store-artifact',
    subject: 'default/counter-7d9f8-abcde/app',
    time: '2026-11-23T18:16:00Z',
    data: stored,
    extensions: { kcrcheckpointid: created.id },
  },
  {
    id: 'ev-stored-1',
    type: 'io.kcr.checkpoint.stored',
    source: '/kcr/store-artifact',
    subject: 'default/counter-7d9f8-abcde/app',
    time: '2026-11-23T18:16:00Z',
    data: stored,
    extensions: { kcrcheckpointid: created.id, knativeerrorcode: '500', knativeerrordest: 'http://build-image.kcr-system.svc.cluster.local' },
  },
  {
    id: 'ev-created-2',
    type: 'io.kcr.checkpoint.created',
    source: '/kcr/request-checkpoint',
    subject: 'default/db-0/app',
    time: '2026-11-23T20:20:05Z',
    data: otherCreated,
    extensions: { kcrcheckpointid: otherCreated.id },
  },
  {
    id: 'ev-old',
    type: 'dev.knative.sources.ping',
    source: '/apis/v1/namespaces/default/pingsources/counter',
    subject: 'default/Deployment/counter',
    time: '2026-11-20T10:00:00Z',
    data: ping,
    extensions: {},
  },
];

describe('kcr events', () => {
  let s3: S3Fixture;
  let sink: TestSink;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    s3 = await startS3();
    sink = await startSink();
    env = { KCR_S3_ENDPOINT: s3.endpoint, KCR_S3_ACCESS_KEY: s3.accessKey, KCR_S3_SECRET_KEY: s3.secretKey, KCR_S3_BUCKET: BUCKET };
    const store = new S3ObjectStore(s3.storeOptions(BUCKET));
    await store.ensureBucket();
    for (const e of archived) await store.putJson(archiveKey(e), toStructured(e));

    // A second bucket holding one good event and three objects replay must refuse.
    const bad = new S3ObjectStore(s3.storeOptions(BAD_BUCKET));
    await bad.ensureBucket();
    const good = archived[1]!;
    await bad.putJson(archiveKey(good), toStructured(good));
    const dir = 'events/2026/11/23/18/';
    await bad.upload(`${dir}2026-11-23T181506.000Z-ev-not-json.json`, readableOf('{"specversion":"1.0", truncated'));
    await bad.putJson(`${dir}2026-11-23T181507.000Z-ev-no-source.json`, { specversion: '1.0', id: 'ev-no-source', type: 'dev.knative.sources.ping', data: ping });
    await bad.putJson(`${dir}2026-11-23T181508.000Z-ev-bad-data.json`, { ...toStructured(good), id: 'ev-bad-data', data: { ...created, id: 'not-a-checkpoint-id' } });

    const undated = new S3ObjectStore(s3.storeOptions(UNDATED_BUCKET));
    await undated.ensureBucket();
    const { time: _time, ...timeless } = { ...archived[0]!, id: 'ev-undated' };
    for (const e of [timeless, archived[4]!]) await undated.putJson(archiveKey(e), toStructured(e));
  });
  afterAll(async () => {
    await sink?.close();
    await s3?.stop();
  });
  afterEach(() => {
    sink.events.length = 0;
    sink.status = 202;
  });

  async function kcr(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return kcrWith(env, ...argv);
  }
  async function kcrWith(useEnv: NodeJS.ProcessEnv, ...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runCli(argv, { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => err.push(s) }, env: useEnv, now: () => NOW });
    return { code, stdout: out.join(''), stderr: err.join('') };
  }
  async function listJson(...argv: string[]): Promise<{ id: string; type: string; key: string; deadLetter?: unknown }[]> {
    const r = await kcr('events', 'list', '--json', ...argv);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    return JSON.parse(r.stdout) as { id: string; type: string; key: string }[];
  }
  const ids = (rows: { id: string }[]) => rows.map((r) => r.id);

  describe('list', () => {
    it('lists the last 24 hours oldest first, as a table', async () => {
      const r = await kcr('events', 'list');
      expect(r.code).toBe(0);
      const lines = r.stdout.trimEnd().split('\n');
      expect(lines[0]).toMatch(/^TIME\s+ID\s+TYPE\s+SUBJECT\s+CHECKPOINT ID$/);
      expect(lines).toHaveLength(6);
      expect(lines[1]).toMatch(/^2026-11-23T18:00:10\.000Z\s+ev-ping-1\s+dev\.knative\.sources\.ping\s+default\/Deployment\/counter\s*$/);
      expect(lines[5]).toMatch(new RegExp(`^2026-11-23T20:20:05\\.000Z\\s+ev-created-2\\s+io\\.kcr\\.checkpoint\\.created\\s+default/db-0/app\\s+${otherCreated.id}$`));
      expect(r.stdout).not.toContain('ev-old');
    });

    it('filters by type, exactly or by prefix', async () => {
      expect(ids(await listJson('--type', 'io.kcr.checkpoint.created'))).toEqual(['ev-created-1', 'ev-created-2']);
      expect(ids(await listJson('--type', 'dev.knative.sources.ping,io.kcr.checkpoint.created'))).toEqual(['ev-ping-1', 'ev-created-1', 'ev-created-2']);
      expect(ids(await listJson('--type', 'io.kcr.checkpoint.*')).sort()).toEqual(['ev-created-1', 'ev-created-2', 'ev-stored-1', 'ev-stored-1']);
    });

    it('filters by subject and by checkpoint id', async () => {
      expect(ids(await listJson('--subject', 'default/db-0/app'))).toEqual(['ev-created-2']);
      expect(ids(await listJson('--subject', 'default/counter-*'))).toEqual(['ev-created-1', 'ev-stored-1', 'ev-stored-1']);
      expect(ids(await listJson('--checkpoint-id', otherCreated.id))).toEqual(['ev-created-2']);
    });

    it('lists only the hour prefixes of the time range', async () => {
      const before = s3.requests.length;
      expect(ids(await listJson('--since', '2026-11-23T18:10:00Z', '--until', '2026-11-23T18:59:59Z'))).toEqual(['ev-created-1', 'ev-stored-1', 'ev-stored-1']);
      const listed = s3.requests
        .slice(before)
        .filter((q) => q.method === 'GET' && q.query.has('prefix'))
        .map((q) => q.query.get('prefix'));
      expect([...new Set(listed)]).toEqual(['events/2026/11/23/18/']);
    });

    it('reaches older days with --since, relative or absolute', async () => {
      expect(ids(await listJson('--since', '4d', '--type', 'dev.knative.sources.ping'))).toEqual(['ev-old', 'ev-ping-1']);
      expect(ids(await listJson('--since', '2026-11-20T00:00:00Z', '--until', '2026-11-21T00:00:00Z'))).toEqual(['ev-old']);
    });

    it('includes events archived without time unless a time bound is given', async () => {
      const all = await kcr('events', '--bucket', UNDATED_BUCKET, 'list');
      expect(all.stdout.split('\n')[1]).toMatch(/^\(no time\)\s+ev-undated\s+dev\.knative\.sources\.ping/);
      expect(ids(await listJson('--bucket', UNDATED_BUCKET))).toEqual(['ev-undated', 'ev-created-2']);
      expect(ids(await listJson('--bucket', UNDATED_BUCKET, '--since', '24h'))).toEqual(['ev-created-2']);
      const shown = await kcr('events', '--bucket', UNDATED_BUCKET, 'show', 'ev-undated');
      expect(JSON.parse(shown.stdout)).toEqual(toStructured({ ...archived[0]!, id: 'ev-undated', time: undefined }));
    });

    it('lists dead letters with their delivery error', async () => {
      const rows = await listJson('--dead-letter');
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ id: 'ev-stored-1', deadLetter: { code: '500', destination: 'http://build-image.kcr-system.svc.cluster.local' } });
      const table = await kcr('events', 'list', '--dead-letter');
      expect(table.stdout).toMatch(/DELIVERY ERROR\n.*ev-stored-1.*500 http:\/\/build-image\.kcr-system\.svc\.cluster\.local\n$/);
    });

    it('keeps the newest events with --limit', async () => {
      expect(ids(await listJson('--limit', '2', '--type', 'io.kcr.checkpoint.created,dev.knative.sources.ping'))).toEqual(['ev-created-1', 'ev-created-2']);
    });
  });

  describe('show', () => {
    it('prints the whole archived event as pretty JSON', async () => {
      const r = await kcr('events', 'show', 'ev-created-1');
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(`${JSON.stringify(toStructured(archived[1]!), null, 2)}\n`);
    });

    it('prefers the original to its dead letter, and shows the dead letter on request', async () => {
      const original = await kcr('events', 'show', 'ev-stored-1', '--since', '2026-11-23T18:00:00Z');
      expect(JSON.parse(original.stdout)).not.toHaveProperty('knativeerrorcode');
      expect(original.stderr).toMatch(/ev-stored-1 is also archived at s3:\/\/kcr-cli-test\/events\/2026\/11\/23\/18\/.*deadletter/);
      const dead = await kcr('events', 'show', 'ev-stored-1', '--dead-letter');
      expect(JSON.parse(dead.stdout)).toMatchObject({ id: 'ev-stored-1', knativeerrorcode: '500' });
    });

    it('finds older events without a time hint', async () => {
      expect(JSON.parse((await kcr('events', 'show', 'ev-old')).stdout)).toMatchObject({ id: 'ev-old', time: '2026-11-20T10:00:00.000Z' });
    });

    it('fails with exit code 1 for an unknown id', async () => {
      const r = await kcr('events', 'show', 'ev-missing', '--since', '2h');
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe('kcr: no archived event with id "ev-missing" in s3://kcr-cli-test/events/ between 2026-11-23T21:00:00.000Z and 2026-11-24T00:00:00.000Z\n');
    });
  });

  describe('replay', () => {
    // Copies sent with --to are archived (replay-archive.test.ts): removed after each test, so every test replays the same archive.
    afterEach(async () => {
      const store = new S3ObjectStore(s3.storeOptions(BUCKET));
      for await (const { key } of store.list('events/')) {
        const archived = (await store.getJson(key)) as { kcrreplayof?: string };
        if (archived.kcrreplayof !== undefined) await store.remove(key);
      }
    });

    it('sends a copy with a new id and kcrreplayof, keeping everything else', async () => {
      const r = await kcr('events', 'replay', 'ev-created-1', '--to', sink.url);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(sink.events).toHaveLength(1);
      const sent = sink.events[0]!;
      expect(sent.id).not.toBe('ev-created-1');
      expect(sent.kcrreplayof).toBe('ev-created-1');
      expect(sent).toMatchObject({
        type: 'io.kcr.checkpoint.created',
        source: '/kcr/request-checkpoint',
        subject: 'default/counter-7d9f8-abcde/app',
        time: '2026-11-23T18:15:05.000Z',
        kcrcheckpointid: created.id,
      });
      expect(sent.data).toEqual(created);
      expect(r.stdout).toMatch(
        new RegExp(
          `^sent 1 event to ${sink.url}\\nORIGINAL ID\\s+NEW ID\\s+TYPE\\s+SUBJECT\\s+STATUS\\nev-created-1\\s+${sent.id}\\s+io\\.kcr\\.checkpoint\\.created\\s+default/counter-7d9f8-abcde/app\\s+202\\narchived 1 of them in s3://${BUCKET}/events/, as event-archive archives what the broker receives\\n$`,
        ),
      );
    });

    it('replays a dead letter without the knativeerror* extensions', async () => {
      expect((await kcr('events', 'replay', '--dead-letter', 'ev-stored-1', '--broker', sink.url)).code).toBe(0);
      expect(sink.events).toHaveLength(1);
      expect(sink.events[0]!.kcrreplayof).toBe('ev-stored-1');
      expect(sink.events[0]!.knativeerrorcode).toBeUndefined();
      expect(sink.events[0]!.knativeerrordest).toBeUndefined();
    });

    it('replays what a filter selects, oldest first', async () => {
      const r = await kcr('events', 'replay', '--type', 'io.kcr.checkpoint.created', '--broker', sink.url, '--json');
      expect(r.code).toBe(0);
      expect(sink.events.map((e) => e.kcrreplayof)).toEqual(['ev-created-1', 'ev-created-2']);
      const lines = JSON.parse(r.stdout) as { originalId: string; id: string; status: number }[];
      expect(lines.map((l) => [l.originalId, l.status])).toEqual([
        ['ev-created-1', 202],
        ['ev-created-2', 202],
      ]);
      expect(lines.map((l) => l.id)).toEqual(sink.events.map((e) => e.id));
    });

    it('sends nothing with --dry-run, and prints what it would send', async () => {
      const r = await kcr('events', 'replay', 'ev-created-2', 'ev-ping-1', '--to', sink.url, '--dry-run', '--json');
      expect(r.code).toBe(0);
      expect(sink.events).toHaveLength(0);
      const lines = JSON.parse(r.stdout) as { originalId: string; status: string; headers: Record<string, string>; body: string }[];
      expect(lines.map((l) => [l.originalId, l.status])).toEqual([
        ['ev-created-2', 'dry-run'],
        ['ev-ping-1', 'dry-run'],
      ]);
      expect(lines[0]!.headers).toMatchObject({ 'ce-type': 'io.kcr.checkpoint.created', 'ce-kcrreplayof': 'ev-created-2', 'ce-kcrcheckpointid': otherCreated.id });
      expect(JSON.parse(lines[0]!.body)).toEqual(otherCreated);
      const text = await kcr('events', 'replay', 'ev-ping-1', '--to', sink.url, '--dry-run');
      expect(text.stdout).toMatch(/^dry run: would send 1 event to /);
      expect(sink.events).toHaveLength(0);
    });

    it('exits 1 and names the event when the target does not accept it', async () => {
      sink.status = 500;
      const r = await kcr('events', 'replay', 'ev-ping-1', '--to', sink.url);
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/ev-ping-1\s+\S+\s+dev\.knative\.sources\.ping\s+default\/Deployment\/counter\s+500\n/);
      expect(r.stderr).toContain(`replay of ev-ping-1 (events/2026/11/23/18/2026-11-23T180010.000Z-ev-ping-1.json) to ${sink.url} failed: HTTP 500`);
      expect(r.stderr).toContain('kcr: 1 of 1 replayed events were not accepted');
    });

    it('refuses malformed archived objects, naming each key, and sends nothing', async () => {
      const r = await kcr('events', 'replay', '--bucket', BAD_BUCKET, '--since', '2026-11-23T18:00:00Z', '--until', '2026-11-23T19:00:00Z', '--to', sink.url);
      expect(r.code).toBe(1);
      expect(sink.events).toHaveLength(0);
      expect(r.stderr).toContain('kcr: cannot replay 3 malformed archived objects; nothing was sent:');
      expect(r.stderr).toMatch(/s3:\/\/kcr-cli-malformed\/events\/2026\/11\/23\/18\/2026-11-23T181506\.000Z-ev-not-json\.json: not JSON: /);
      expect(r.stderr).toContain('s3://kcr-cli-malformed/events/2026/11/23/18/2026-11-23T181507.000Z-ev-no-source.json: not a valid CloudEvent: attribute source is missing or empty');
      expect(r.stderr).toContain('s3://kcr-cli-malformed/events/2026/11/23/18/2026-11-23T181508.000Z-ev-bad-data.json: data does not match io.kcr.checkpoint.created: id: must be a kcr checkpoint id');
    });

    it('refuses a malformed object found by id', async () => {
      const r = await kcr('events', 'replay', 'ev-not-json', '--bucket', BAD_BUCKET, '--to', sink.url);
      expect(r.code).toBe(1);
      expect(sink.events).toHaveLength(0);
      expect(r.stderr).toMatch(
        /^kcr: cannot replay 1 malformed archived object; nothing was sent:\n {2}s3:\/\/kcr-cli-malformed\/events\/2026\/11\/23\/18\/2026-11-23T181506\.000Z-ev-not-json\.json: not JSON: /,
      );
    });
  });

  describe('usage and configuration', () => {
    it('exits 2 on usage errors, with a precise message', async () => {
      const noTarget = await kcr('events', 'replay', 'ev-ping-1');
      expect(noTarget).toMatchObject({ code: 2, stderr: 'kcr: replay needs a destination: --broker <url>, --to <function url>, or $KCR_BROKER_URL / $K_SINK\n' });
      const both = await kcr('events', 'replay', 'ev-ping-1', '--to', sink.url, '--broker', sink.url);
      expect(both.code).toBe(2);
      expect(both.stderr).toMatch(/option '--broker <url>' cannot be used with option '--to <url>'/);
      const badTime = await kcr('events', 'list', '--since', 'yesterday');
      expect(badTime).toMatchObject({ code: 2, stderr: expect.stringContaining('--since "yesterday": expected an RFC 3339 time') });
      const badLimit = await kcr('events', 'list', '--limit', '0');
      expect(badLimit.code).toBe(2);
      expect(badLimit.stderr).toContain("option '--limit <n>' argument '0' is invalid. must be a positive integer");
      const nothing = await kcr('events', 'replay', '--to', sink.url);
      expect(nothing.code).toBe(2);
      const unknown = await kcr('events', 'list', '--colour');
      expect(unknown.code).toBe(2);
      expect(unknown.stderr).toContain("unknown option '--colour'");
      expect(sink.events).toHaveLength(0);
    });

    it('names the missing S3 settings, and takes them from flags', async () => {
      const missing = await kcrWith({}, 'events', 'list');
      expect(missing.code).toBe(2);
      expect(missing.stderr).toMatch(/^kcr: invalid configuration: KCR_S3_ENDPOINT=\(unset\).*KCR_S3_ACCESS_KEY=\(unset\).*pass --s3-endpoint/);
      const flags = await kcrWith(
        {},
        'events',
        '--s3-endpoint',
        s3.endpoint,
        '--s3-access-key',
        s3.accessKey,
        '--s3-secret-key',
        s3.secretKey,
        '--bucket',
        BUCKET,
        'list',
        '--json',
        '--type',
        'io.kcr.checkpoint.stored',
      );
      expect(flags.code).toBe(0);
      expect(ids(JSON.parse(flags.stdout) as { id: string }[])).toEqual(['ev-stored-1', 'ev-stored-1']);
    });

    it('reports an unreachable S3 endpoint with exit code 1', async () => {
      const r = await kcrWith({ ...env, KCR_S3_ENDPOINT: 'http://127.0.0.1:1' }, 'events', 'list', '--since', '1h');
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^kcr: listing events in s3:\/\/kcr-cli-test\/events\/ failed: .*ECONNREFUSED/);
    });
  });

  it('runs as a command: npx tsx cli/main.ts --help', () => {
    const r = spawnSync('npx', ['tsx', 'cli/main.ts', '--help'], { encoding: 'utf8', cwd: process.cwd() });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^Usage: kcr \[command\] \[flags\]/);
    expect(r.stdout).toMatch(/^ {2}events\s+list, show and replay the CloudEvents archived in S3/m);
    expect(r.stdout).toMatch(/^ {2}checkpoint\s+checkpoint a workload, a pod or one container/m);
  });
});

function readableOf(text: string) {
  return Readable.from([Buffer.from(text)]);
}
