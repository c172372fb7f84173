// The checkpoint side of the chain under forged, duplicated and hostile input
// and failing dependencies, on the local stack: every function is reachable by
// any pod of a cluster, so each is posted to directly, as an attacker would.
import { beforeAll, describe, expect, it } from 'vitest';
import { createWriteStream, existsSync, readdirSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { encodeBinary, type WireEvent } from '../../functions/core/runtime/cloudevents-http.js';
import { events as build } from '../../functions/core/contract/build.js';
import { checkpointId } from '../../functions/core/contract/checkpoint-id.js';
import type { CheckpointCreatedData } from '../../functions/core/contract/events.js';
import type { FunctionName } from '../../functions/catalog.js';
import { deployment, runningPods, statefulSet } from '../../simulator/workloads.js';
import { artifactKey, checkpointPrefix } from '../../functions/core/storage/layout.js';
import { NS, OPT_IN, useLocalStack } from '../support/local-stack.js';

describe('hostile and duplicated input to the checkpoint chain, on the local stack', () => {
  const uploads: string[] = [];
  const kit = useLocalStack('hostile', {
    nodes: ['node-a', 'node-b'],
    kubelet: { tickMs: 50, dataSize: 4096 },
    backoffScale: 0.05,
    // Uploads begun, by key: a multipart upload's start or a single PUT.
    onS3Request: (req, u) => {
      if ((req.method === 'POST' && u.searchParams.has('uploads')) || (req.method === 'PUT' && !u.searchParams.has('partNumber'))) uploads.push(u.pathname);
    },
  });
  const { until, keys } = kit;

  beforeAll(async () => {
    await kit.apps.createNamespacedDeployment({ namespace: NS, body: deployment({ name: 'counter', annotations: OPT_IN }) });
    await kit.apps.createNamespacedStatefulSet({ namespace: NS, body: statefulSet({ name: 'web', annotations: OPT_IN }) });
    await kit.core.createNamespace({ body: { metadata: { name: 'payments' } } });
    // Not opted in: its memory must never leave its node.
    await kit.apps.createNamespacedDeployment({ namespace: 'payments', body: deployment({ name: 'vault', namespace: 'payments' }) });
    await kit.apps.createNamespacedDeployment({ namespace: 'kube-system', body: deployment({ name: 'coredns', namespace: 'kube-system', annotations: OPT_IN }) });
    await runningPods(kit.kube, NS, 'app=counter', 1);
    await runningPods(kit.kube, NS, 'app=web', 1);
    await runningPods(kit.kube, 'payments', 'app=vault', 1);
    await runningPods(kit.kube, 'kube-system', 'app=coredns', 1);
  }, 60_000);

  /** The wire events of a type the broker received, about one pod when given. */
  const typed = (type: string, pod?: string) => kit.of(type, pod).map((e) => e.event);
  const dataOf = (e: WireEvent) => JSON.parse(e.data?.toString('utf8') ?? 'null') as Record<string, unknown>;
  const url = (fn: FunctionName) => kit.stack.functions.get(fn)!.url;
  /** POSTs an event to one function in binary mode, as any pod can. */
  function send(fn: FunctionName, event: WireEvent): Promise<Response> {
    const { headers, body } = encodeBinary({ ...event, attributes: { ...event.attributes, id: `forged-${randomBytes(6).toString('hex')}` } });
    return fetch(url(fn), { method: 'POST', headers, ...(body ? { body } : {}) });
  }
  const sdk = (e: ReturnType<typeof build.checkpointRequested>): WireEvent => ({
    attributes: Object.fromEntries(
      Object.entries(e.toJSON())
        .filter(([k, v]) => k !== 'data' && v !== undefined)
        .map(([k, v]) => [k, String(v)]),
    ),
    data: Buffer.from(JSON.stringify(e.data)),
  });
  const archivesOn = (node: string) => readdirSync(kit.stack.cluster.checkpointDir(node));
  const locOf = (d: CheckpointCreatedData) => ({ namespace: d.namespace, workload: d.workload, container: d.container, id: d.id });
  /**
   * Puts a stored checkpoint back as it was before store-artifact ran: its
   * archive on the node (copied back from S3), nothing of it in S3 (gone).
   */
  async function unstore(d: CheckpointCreatedData): Promise<void> {
    const file = join(kit.stack.cluster.checkpointDir(d.node), basename(d.archivePath));
    if (!existsSync(file)) await pipeline(await kit.stack.store.getStream(artifactKey(locOf(d), 'archive')), createWriteStream(file));
    for (const key of await keys(checkpointPrefix(locOf(d)))) await kit.stack.store.remove(key);
  }
  const allArchives = () => kit.stack.cluster.nodes.flatMap(archivesOn);

  /** A real checkpoint of counter, taken through the chain: its created and stored events. */
  let created: WireEvent;
  let stored: WireEvent;
  beforeAll(async () => {
    const [pod] = await runningPods(kit.kube, NS, 'app=counter', 1);
    await kit.stack.broker.publish(build.checkpointRequested({ namespace: NS, pod: pod!.metadata!.name! }, { source: 'test' }));
    created = await until('created', () => typed('io.kcr.checkpoint.created')[0]);
    stored = await until('stored', () => typed('io.kcr.checkpoint.stored')[0]);
    await until('built', () => typed('io.kcr.image.built')[0]);
    await kit.stack.broker.idle();
  }, 30_000);

  it('a request to checkpoint a workload that did not opt in, or one in kube-system, takes no checkpoint', async () => {
    const before = allArchives();
    for (const request of [
      build.checkpointRequested({ namespace: 'payments', kind: 'Deployment', name: 'vault' }, { source: 'attacker' }),
      build.checkpointRequested({ namespace: 'kube-system', kind: 'Deployment', name: 'coredns' }, { source: 'attacker' }),
    ]) {
      expect((await send('request-checkpoint', sdk(request))).status).toBe(202);
    }
    const [vault] = await runningPods(kit.kube, 'payments', 'app=vault', 1);
    expect((await send('request-checkpoint', sdk(build.checkpointRequested({ namespace: 'payments', pod: vault!.metadata!.name! }, { source: 'attacker' })))).status).toBe(202);
    await kit.stack.broker.idle();
    expect(allArchives()).toEqual(before);
    expect(await keys('checkpoints/payments/')).toEqual([]);
    expect(await keys('checkpoints/kube-system/')).toEqual([]);
  });

  it('a checkpoint.created with a made-up "newest" id stores nothing', async () => {
    const data = dataOf(created) as unknown as CheckpointCreatedData;
    await unstore(data);
    const forged = { ...data, id: '29991231T235959Z-aaaaaaaaaaaa' };
    const res = await send('store-artifact', { attributes: created.attributes, data: Buffer.from(JSON.stringify(forged)) });
    expect(res.status).toBe(202);
    await kit.stack.broker.idle();
    expect((await keys('checkpoints/')).filter((k) => k.includes('29991231T235959Z'))).toEqual([]);
  });

  it("web-0's archive claimed as a checkpoint of Deployment counter stores nothing", async () => {
    const [web] = await runningPods(kit.kube, NS, 'app=web', 1);
    await kit.stack.broker.publish(build.checkpointRequested({ namespace: NS, pod: 'web-0' }, { source: 'test' }));
    const real = await until('web-0 created', () => typed('io.kcr.checkpoint.created', 'web-0')[0]);
    const data = dataOf(real) as unknown as CheckpointCreatedData;
    expect(data.podUid).toBe(web!.metadata!.uid);
    await until('web-0 stored', () => typed('io.kcr.checkpoint.stored', 'web-0')[0]);
    await kit.stack.broker.idle();
    await unstore(data);
    // The id is made to match: only the owner gives it away.
    const forged = { ...data, workload: { kind: 'Deployment', name: 'counter' }, id: checkpointId({ podUid: data.podUid, container: data.container, checkpointedAt: data.checkpointedAt }) };
    const res = await send('store-artifact', { attributes: real.attributes, data: Buffer.from(JSON.stringify(forged)) });
    expect(res.status).toBe(202);
    await kit.stack.broker.idle();
    expect((await keys(`checkpoints/${NS}/Deployment/counter/`)).filter((k) => k.includes(data.id))).toEqual([]);
  });

  it('50 concurrent duplicates of checkpoint.created: one upload, 50 × stored, the checkpoint whole', async () => {
    const data = dataOf(created) as unknown as CheckpointCreatedData;
    await unstore(data);
    uploads.length = 0;
    const failedBefore = typed('io.kcr.checkpoint.failed').length;
    const answers = await Promise.all(Array.from({ length: 50 }, () => send('store-artifact', created)));
    expect(answers.map((r) => r.status)).toEqual(Array(50).fill(202));
    await kit.stack.broker.idle();
    expect(uploads.filter((u) => u.endsWith(`${data.id}/archive.tar`))).toHaveLength(1);
    expect(typed('io.kcr.checkpoint.failed')).toHaveLength(failedBefore);
    const files = (await keys(checkpointPrefix(locOf(data)))).map((k) => k.split('/').at(-1)).sort();
    expect(files).toEqual(['archive.tar', 'image.json', 'manifest.json']);
  });

  it('50 concurrent duplicates of checkpoint.stored after its image.json went: image built again, nothing failed', async () => {
    const data = dataOf(stored) as unknown as CheckpointCreatedData;
    await kit.stack.store.remove(artifactKey(locOf(data), 'image'));
    const failedBefore = typed('io.kcr.checkpoint.failed').length;
    const builtBefore = typed('io.kcr.image.built').length;
    const answers = await Promise.all(Array.from({ length: 50 }, () => send('build-image', stored)));
    expect(answers.map((r) => r.status)).toEqual(Array(50).fill(202));
    await kit.stack.broker.idle();
    expect(typed('io.kcr.checkpoint.failed')).toHaveLength(failedBefore);
    const built = typed('io.kcr.image.built')
      .slice(builtBefore)
      .map((e) => (dataOf(e).image as { digest: string }).digest);
    expect(new Set(built).size).toBe(1);
    expect(await kit.stack.store.getJson(artifactKey(locOf(data), 'image'))).toMatchObject({ digest: built[0] });
  });

  it('a checkpoint.stored naming the right checkpoint but another pod and node: the image and image.built say what manifest.json recorded', async () => {
    const data = dataOf(stored) as unknown as CheckpointCreatedData;
    await kit.stack.store.remove(artifactKey(locOf(data), 'image'));
    const builtBefore = typed('io.kcr.image.built').length;
    const forged = { ...dataOf(stored), pod: 'impostor-0', podUid: 'f0f0-impostor', node: 'node-b' };
    expect((await send('build-image', { attributes: stored.attributes, data: Buffer.from(JSON.stringify(forged)) })).status).toBe(202);
    await kit.stack.broker.idle();
    const built = typed('io.kcr.image.built').slice(builtBefore).map(dataOf);
    expect(built).toHaveLength(1);
    expect(built[0]).toMatchObject({ id: data.id, pod: data.pod, podUid: data.podUid, node: data.node });
  });

  describe('a failing dependency is 503 (the broker retries) from every function, which keeps serving', () => {
    const deployAdd = (): WireEvent => ({
      attributes: { specversion: '1.0', id: 'x', source: 'https://kubernetes.default.svc', type: 'dev.knative.apiserver.resource.update', datacontenttype: 'application/json' },
      data: Buffer.from(JSON.stringify({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'counter', namespace: NS } })),
    });
    const request = () => sdk(build.checkpointRequested({ namespace: NS, kind: 'Deployment', name: 'counter' }, { source: 'test' }));

    it.each([
      ['schedule-sync', 500, deployAdd],
      ['schedule-sync', 503, deployAdd],
      ['request-checkpoint', 500, request],
      ['request-checkpoint', 503, request],
    ] as const)('%s with the API server answering %i', async (fn, code, event) => {
      kit.stack.cluster.failNext({ verb: 'get', code, count: 1_000 });
      try {
        expect((await send(fn, event())).status).toBe(503);
      } finally {
        kit.stack.cluster.clearFailures();
      }
      expect((await fetch(`${url(fn)}/healthz`)).status).toBe(200);
    });

    it.each([
      ['store-artifact', 500],
      ['store-artifact', 503],
      ['build-image', 500],
      ['build-image', 503],
      ['event-archive', 500],
      ['event-archive', 503],
    ] as const)('%s with S3 answering %i', async (fn, code) => {
      const event = fn === 'build-image' ? stored : created;
      kit.stack.s3.failNext(1_000, code);
      try {
        expect((await send(fn, event)).status).toBe(503);
      } finally {
        kit.stack.s3.failNext(0, code);
      }
      expect((await fetch(`${url(fn)}/healthz`)).status).toBe(200);
    });
  });

  it.each(['schedule-sync', 'request-checkpoint', 'store-artifact', 'build-image', 'restore-pod', 'event-archive'] as const)(
    '%s refuses 5,000 levels of nesting with 400 and still answers /healthz',
    async (fn) => {
      const deep = `${'['.repeat(5000)}${']'.repeat(5000)}`;
      const body = `{"specversion":"1.0","id":"deep","source":"/attacker","type":"io.kcr.checkpoint.created","datacontenttype":"application/json","data":{"x":${deep}}}`;
      const res = await fetch(url(fn), { method: 'POST', headers: { 'content-type': 'application/cloudevents+json' }, body });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: string }).error).toMatch(/JSON nesting deeper than 64 levels/);
      expect((await fetch(`${url(fn)}/healthz`)).status).toBe(200);
    },
  );

  it('the node-agent answers a 5,000-character name with 400', async () => {
    const agent = [...kit.stack.agents.values()][0]!;
    const res = await fetch(`${agent.url}/checkpoints/${'a'.repeat(5000)}.tar`, { headers: { authorization: `Bearer ${kit.stack.env.KCR_NODE_AGENT_TOKEN}` } });
    expect(res.status).toBe(400);
  });
});
