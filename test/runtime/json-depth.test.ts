// Deeply nested JSON from any pod in the cluster: refused with 400 by a linear
// pre-scan before any parser runs, while the deepest real events still pass.
import { afterEach, describe, expect, it } from 'vitest';
import { createEventArchive } from '../../functions/event-archive/handler.js';
import { createLogger } from '../../functions/core/runtime/logger.js';
import { MAX_JSON_DEPTH } from '../../functions/core/runtime/parse.js';
import { serveFunction, type AnyHandler, type RunningFunction } from '../../functions/core/runtime/server.js';
import { MemoryStore } from '../support/memory-store.js';
import { createTestHandler, type Recorder } from './fixtures/test-handler.js';

const TYPE = 'io.kcr.checkpoint.created';
const TOO_DEEP = /JSON nesting deeper than 64 levels/;
const BINARY_HEADERS = { 'content-type': 'application/json', 'ce-specversion': '1.0', 'ce-id': 'deep-1', 'ce-source': '/attacker', 'ce-type': TYPE };

/** `{"a":[[…]]}` with `levels` levels in all. */
function nested(levels: number): string {
  return `{"a":${'['.repeat(levels - 1)}${']'.repeat(levels - 1)}}`;
}

/** A structured-mode event whose `data` is the given JSON text. */
function structuredBody(dataJson: string, attributes: Record<string, unknown> = {}): string {
  const envelope = JSON.stringify({ specversion: '1.0', id: 'deep-1', source: '/attacker', type: TYPE, datacontenttype: 'application/json', ...attributes, data: 0 });
  return envelope.replace(/"data":0}$/, `"data":${dataJson}}`);
}

/** 4 MB of nesting: about 2 million levels. */
const HUGE = nested(2_000_000);

interface Req {
  headers: Record<string, string>;
  body: string;
}

describe('deeply nested JSON', () => {
  let fn: RunningFunction | undefined;
  afterEach(async () => {
    await fn?.close();
    fn = undefined;
  });

  async function serve(handler: AnyHandler): Promise<RunningFunction> {
    fn = await serveFunction(handler, { port: 0, host: '127.0.0.1', logger: createLogger(handler.name, 'silent'), emit: async () => {} });
    return fn;
  }
  async function post(running: RunningFunction, req: Req): Promise<{ status: number; error?: string }> {
    const res = await fetch(running.url, { method: 'POST', headers: req.headers, body: req.body });
    const text = await res.text();
    return { status: res.status, ...(text ? { error: (JSON.parse(text) as { error?: string }).error } : {}) };
  }

  it.each([
    ['structured mode', { headers: { 'content-type': 'application/cloudevents+json' }, body: structuredBody(HUGE) }],
    ['binary mode', { headers: BINARY_HEADERS, body: HUGE }],
    ['binary mode with a +json content type', { headers: { ...BINARY_HEADERS, 'content-type': 'application/vnd.kcr+json' }, body: HUGE }],
    ['a batch', { headers: { 'content-type': 'application/cloudevents-batch+json' }, body: `[${structuredBody(HUGE)}]` }],
  ])('answers a 4 MB body in %s with 400 naming the limit, without calling the handler', async (_mode, req) => {
    const recorder: Recorder = { calls: [] };
    const running = await serve(createTestHandler(recorder, { acceptsBatch: true }));
    const res = await post(running, req);
    expect(res.status).toBe(400);
    expect(res.error).toMatch(TOO_DEEP);
    expect(recorder.calls).toHaveLength(0);
    expect((await fetch(`${running.url}/healthz`)).status).toBe(200);
  });

  it.each([
    ['structured mode', { headers: { 'content-type': 'application/cloudevents+json' }, body: structuredBody(nested(5000)) }],
    ['binary mode', { headers: BINARY_HEADERS, body: nested(5000) }],
    ['structured mode with the data as a JSON string', { headers: { 'content-type': 'application/cloudevents+json' }, body: structuredBody(JSON.stringify(nested(5000))) }],
  ])('event-archive answers 5,000 levels in %s with 400, not 500, and stores nothing', async (_mode, req) => {
    const store = new MemoryStore();
    const running = await serve(createEventArchive({ store }));
    const res = await post(running, req);
    expect(res.status).toBe(400);
    expect(res.error).toMatch(TOO_DEEP);
    expect(store.writes).toEqual([]);
    expect((await fetch(`${running.url}/healthz`)).status).toBe(200);
  });

  it(`takes exactly ${MAX_JSON_DEPTH} levels and refuses one more`, async () => {
    const store = new MemoryStore();
    const running = await serve(createEventArchive({ store }));
    // The envelope is the first level.
    expect(await post(running, { headers: { 'content-type': 'application/cloudevents+json' }, body: structuredBody(nested(MAX_JSON_DEPTH - 1)) })).toEqual({ status: 202 });
    const over = await post(running, { headers: { 'content-type': 'application/cloudevents+json' }, body: structuredBody(nested(MAX_JSON_DEPTH), { id: 'deep-2' }) });
    expect(over.status).toBe(400);
    expect(over.error).toMatch(TOO_DEEP);
    expect(store.writes).toHaveLength(1);
  });

  it('does not count brackets inside strings, escaped quotes included', async () => {
    const store = new MemoryStore();
    const running = await serve(createEventArchive({ store }));
    // If the scanner took \" for the end of the string, the brackets after it would count.
    const data = { note: `a \\" quote then ${'['.repeat(500)}`, path: 'C:\\', after: `${'{'.repeat(500)}` };
    const res = await post(running, { headers: { 'content-type': 'application/cloudevents+json' }, body: structuredBody(JSON.stringify(data)) });
    expect(res).toEqual({ status: 202 });
    expect(JSON.parse(store.objects.get(store.writes[0]!)!.toString()).data).toEqual(data);
  });

  it('archives an ApiServerSource event carrying a Deployment with managedFields', async () => {
    const store = new MemoryStore();
    const running = await serve(createEventArchive({ store }));
    const body = JSON.stringify({
      specversion: '1.0',
      id: 'apiserver-1',
      source: 'https://10.96.0.1:443',
      type: 'dev.knative.apiserver.resource.update',
      subject: '/apis/apps/v1/namespaces/shop/deployments/redis',
      datacontenttype: 'application/json',
      data: deploymentWithManagedFields(),
    });
    expect(await post(running, { headers: { 'content-type': 'application/cloudevents+json' }, body })).toEqual({ status: 202 });
    expect(store.writes).toHaveLength(1);
  });
});

/** A Deployment as the API server sends it, with its deepest usual paths: affinity, env from Secrets, and their managedFields. */
function deploymentWithManagedFields() {
  const envFields = { 'k:{"name":"PASSWORD"}': { '.': {}, 'f:name': {}, 'f:valueFrom': { '.': {}, 'f:secretKeyRef': { '.': {}, 'f:key': {}, 'f:name': {} } } } };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: 'redis',
      namespace: 'shop',
      annotations: { 'kcr.io/checkpoint-schedule': '*/5 * * * *' },
      managedFields: [
        {
          manager: 'kubectl-client-side-apply',
          operation: 'Update',
          apiVersion: 'apps/v1',
          fieldsType: 'FieldsV1',
          fieldsV1: {
            'f:spec': {
              'f:template': {
                'f:spec': {
                  'f:affinity': { '.': {}, 'f:podAntiAffinity': { '.': {}, 'f:preferredDuringSchedulingIgnoredDuringExecution': {} } },
                  'f:containers': { 'k:{"name":"redis"}': { '.': {}, 'f:env': { '.': {}, ...envFields }, 'f:image': {} } },
                },
              },
            },
          },
        },
      ],
    },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: 'redis' } },
      template: {
        metadata: { labels: { app: 'redis' } },
        spec: {
          affinity: {
            podAntiAffinity: {
              preferredDuringSchedulingIgnoredDuringExecution: [
                { weight: 100, podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchExpressions: [{ key: 'app', operator: 'In', values: ['redis'] }] } } },
              ],
            },
          },
          containers: [{ name: 'redis', image: 'redis:7', env: [{ name: 'PASSWORD', valueFrom: { secretKeyRef: { name: 'redis', key: 'password' } } }] }],
        },
      },
    },
    status: { replicas: 1, conditions: [{ type: 'Available', status: 'True' }] },
  };
}
