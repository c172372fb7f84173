// The local broker's pure parts: admission (hop counter, arrival time),
// trigger matching, destination URLs, the retry schedule and the dead-letter event.
import { describe, expect, it } from 'vitest';
import { deadLetterEvent, retryDelayMs, type Attempt } from '../../local/broker-delivery.js';
import { admitEvent, describeDestination, matchingTriggers, parseTtl, pickBroker, resolveDestination, triggersOf } from '../../local/broker-routing.js';
import { parseEventingYaml, type EffectiveDelivery } from '../../local/triggers.js';

const YAML = `
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: { name: kcr, namespace: kcr }
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: { name: on-created, namespace: kcr }
spec:
  broker: kcr
  filter: { attributes: { type: io.kcr.checkpoint.created } }
  subscriber: { ref: { apiVersion: serving.knative.dev/v1, kind: Service, name: store-artifact } }
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: { name: other-broker, namespace: kcr }
spec:
  broker: elsewhere
  subscriber: { uri: http://127.0.0.1:1/ }
`;

const wire = (attributes: Record<string, string>) => ({ attributes: { specversion: '1.0', id: 'e-1', source: '/t', type: 'io.kcr.checkpoint.created', ...attributes } });

describe('broker routing', () => {
  const config = parseEventingYaml(YAML);

  it('picks the named Broker, else the first, and only its Triggers', () => {
    expect(pickBroker(config, undefined)?.metadata.name).toBe('kcr');
    expect(pickBroker(config, { namespace: 'other', name: 'kcr' })).toBeUndefined();
    expect(triggersOf(config, 'kcr', 'kcr').map((t) => t.metadata.name)).toEqual(['on-created']);
  });

  it('stamps hops and arrival time, and refuses an event with no hop left', () => {
    const now = new Date('2026-01-02T03:04:05.000Z');
    const first = admitEvent(wire({}), undefined, now);
    expect(first).toMatchObject({ admitted: true, hops: 255, event: { attributes: { knativebrokerttl: '255', knativearrivaltime: '2026-01-02T03:04:05.000Z' } } });
    expect(admitEvent(wire({ knativebrokerttl: '7' }), undefined, now)).toMatchObject({ admitted: true, hops: 7 });
    expect(admitEvent(wire({ knativebrokerttl: '7' }), 3, now)).toMatchObject({ admitted: true, hops: 3 });
    const refused = admitEvent(wire({ knativebrokerttl: '0' }), undefined, now);
    expect(refused.admitted).toBe(false);
    expect(refused.event.attributes.knativearrivaltime).toBeUndefined();
    expect(parseTtl('x')).toBe(255);
  });

  it('matches Triggers by their filters', () => {
    const triggers = triggersOf(config, 'kcr', 'kcr');
    expect(matchingTriggers(triggers, wire({}).attributes).map((t) => t.metadata.name)).toEqual(['on-created']);
    expect(matchingTriggers(triggers, wire({ type: 'io.kcr.image.built' }).attributes)).toEqual([]);
  });

  it('resolves refs to Services and to itself, uri relative to the ref', () => {
    const resolver = { services: new Map([['kcr/store-artifact', 'http://127.0.0.1:9001']]), self: { namespace: 'kcr', name: 'kcr', url: 'http://127.0.0.1:8000/kcr/kcr' } };
    expect(resolveDestination({ ref: { apiVersion: 'serving.knative.dev/v1', kind: 'Service', name: 'store-artifact' } }, 'kcr', resolver)).toBe('http://127.0.0.1:9001');
    expect(resolveDestination({ ref: { apiVersion: 'serving.knative.dev/v1', kind: 'Service', name: 'store-artifact' }, uri: 'x/y' }, 'kcr', resolver)).toBe('http://127.0.0.1:9001/x/y');
    expect(resolveDestination({ ref: { apiVersion: 'eventing.knative.dev/v1', kind: 'Broker', name: 'kcr' } }, 'kcr', resolver)).toBe('http://127.0.0.1:8000/kcr/kcr');
    expect(resolveDestination({ ref: { apiVersion: 'serving.knative.dev/v1', kind: 'Service', name: 'nope' } }, 'kcr', resolver)).toBeUndefined();
    expect(resolveDestination({ uri: 'http://sink/' }, 'kcr', resolver)).toBe('http://sink/');
    expect(describeDestination({ ref: { apiVersion: 'v1', kind: 'Service', namespace: 'a', name: 'b' }, uri: '/c' })).toBe('Service a/b + /c');
  });
});

describe('broker delivery', () => {
  const delivery: EffectiveDelivery = { retry: 2, backoffPolicy: 'exponential', backoffDelayMs: 100 };
  const failed: Attempt = { ok: false, status: 503, retryable: true };

  it('retries a retryable failure with the scaled backoff until the retries are used up', () => {
    expect(retryDelayMs(delivery, failed, 1)).toBe(200);
    expect(retryDelayMs(delivery, failed, 2, 0.5)).toBe(200);
    expect(retryDelayMs(delivery, failed, 3)).toBeUndefined();
    expect(retryDelayMs({ ...delivery, backoffPolicy: 'linear' }, failed, 2)).toBe(200);
    expect(retryDelayMs(delivery, { ok: false, status: 400, retryable: false }, 1)).toBeUndefined();
    expect(retryDelayMs(delivery, { ok: true, status: 200, retryable: false }, 1)).toBeUndefined();
  });

  it('dead-letters with the destination, the code and at most 1 KiB of the body', () => {
    const dead = deadLetterEvent(wire({}), 'http://sub/', { ...failed, body: Buffer.alloc(2000, 'a') });
    expect(dead.attributes).toMatchObject({ knativeerrordest: 'http://sub/', knativeerrorcode: '503' });
    expect(Buffer.from(dead.attributes.knativeerrordata!, 'base64').length).toBe(1024);
    const network = deadLetterEvent(wire({}), 'http://sub/', { ok: false, retryable: true, error: 'ECONNREFUSED' });
    expect(network.attributes.knativeerrorcode).toBe('500');
    expect(Buffer.from(network.attributes.knativeerrordata!, 'base64').toString()).toBe('dispatch error: ECONNREFUSED');
  });
});
