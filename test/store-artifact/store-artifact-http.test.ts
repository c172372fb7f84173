// store-artifact served by the function runtime: CloudEvents in over HTTP,
// stored/failed out to the sink, 503 when the node-agent is unreachable.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeAgentLocator } from '../../functions/core/node-agent/locator.js';
import { NodeAgentClient } from '../../functions/store-artifact/node-agent-client.js';
import { S3ObjectStore } from '../../functions/core/storage/s3.js';
import { checkpointId, kubeletArchiveName, KUBELET_CHECKPOINT_DIR } from '../../functions/core/contract/index.js';
import { createLogger } from '../../functions/core/runtime/logger.js';
import { serveFunction, type RunningFunction } from '../../functions/core/runtime/server.js';
import { createStoreArtifact } from '../../functions/store-artifact/handler.js';
import { startNodeAgent, type NodeAgent } from '../../node-agent/server.js';
import { writeCheckpointArchive } from '../../simulator/archive-writer.js';
import { startS3, type S3Fixture } from '../support/s3.js';
import { scrape } from '../support/metrics.js';
import { startSink, type TestSink } from '../support/sink.js';

const TOKEN = 'http-test-token';

describe('store-artifact over HTTP', () => {
  let s3: S3Fixture;
  let sink: TestSink;
  let agent: NodeAgent;
  let dir: string;
  const running: RunningFunction[] = [];

  beforeAll(async () => {
    s3 = await startS3();
    sink = await startSink();
    dir = join(mkdtempSync(join(tmpdir(), 'kcr-store-http-')), 'checkpoints');
    mkdirSync(dir);
    agent = await startNodeAgent({ dir, token: TOKEN, allowDelete: true, logger: pino({ level: 'silent' }) });
  });
  afterAll(async () => {
    for (const fn of running) await fn.close();
    await agent?.close();
    await sink?.close();
    await s3?.stop();
    rmSync(join(dir, '..'), { recursive: true, force: true });
  });

  async function serve(agentUrl: string): Promise<RunningFunction> {
    const store = new S3ObjectStore(s3.storeOptions('kcr-http'));
    const agents = new NodeAgentClient({ locate: nodeAgentLocator({ urls: { 'node-b': agentUrl } }), token: () => TOKEN, timeoutMs: 5_000 });
    const fn = await serveFunction(createStoreArtifact({ pods: { getPod: () => Promise.resolve(undefined) }, store, agents }), {
      port: 0,
      host: '127.0.0.1',
      sink: sink.url,
      logger: createLogger('store-artifact', 'silent'),
    });
    running.push(fn);
    return fn;
  }

  async function created(pod: string) {
    const timestamp = '2026-11-23T19:00:00Z';
    const name = kubeletArchiveName({ pod, namespace: 'web', container: 'app', timestamp });
    await writeCheckpointArchive(join(dir, name), { pod, namespace: 'web', podUid: `uid-${pod}`, container: 'app' });
    const data = {
      id: checkpointId({ podUid: `uid-${pod}`, container: 'app', checkpointedAt: timestamp }),
      namespace: 'web',
      workload: { kind: 'Deployment', name: 'shop' },
      pod,
      podUid: `uid-${pod}`,
      container: 'app',
      node: 'node-b',
      archivePath: `${KUBELET_CHECKPOINT_DIR}/${name}`,
      checkpointedAt: timestamp,
    };
    return {
      specversion: '1.0',
      id: `created-${pod}`,
      source: '/kcr/request-checkpoint',
      type: 'io.kcr.checkpoint.created',
      subject: `web/${pod}/app`,
      kcrcheckpointid: data.id,
      datacontenttype: 'application/json',
      data,
    };
  }

  const post = (url: string, event: unknown) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/cloudevents+json' }, body: JSON.stringify(event) });

  it('answers 2xx and sends io.kcr.checkpoint.stored to the sink', async () => {
    const fn = await serve(agent.url);
    const event = await created('shop-7d9f8-aaaaa');
    const res = await post(fn.url, event);
    expect(res.status).toBeLessThan(300);
    const stored = sink.events.find((e) => e.type === 'io.kcr.checkpoint.stored' && (e.data as { id?: string }).id === event.data.id);
    expect(stored?.source).toBe('/kcr/store-artifact');
    expect(stored?.kcrcheckpointid).toBe(event.data.id);
    expect((stored?.data as { artifact?: { uri?: string } }).artifact?.uri).toMatch(/^s3:\/\/kcr-http\/checkpoints\/web\/Deployment\/shop\/app\//);
    // What it measured of the work, on /metrics.
    const size = (stored?.data as { artifact: { size: number } }).artifact.size;
    expect(await scrape(fn.url, 'kcr_checkpoint_archive_bytes_sum', { function: 'store-artifact' })).toBe(size);
    expect(await scrape(fn.url, 'kcr_artifact_transfer_seconds_count', { function: 'store-artifact', stage: 'store' })).toBe(1);
  });

  it('answers 503 when the node-agent is unreachable, and emits nothing', async () => {
    const fn = await serve('http://127.0.0.1:1');
    const event = await created('shop-7d9f8-bbbbb');
    const before = sink.events.length;
    const res = await post(fn.url, event);
    expect(res.status).toBe(503);
    expect(sink.events.length).toBe(before);
  });
});
