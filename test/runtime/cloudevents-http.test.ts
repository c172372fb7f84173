import { describe, expect, it } from 'vitest';
import { carriesCloudEvent, dataOf, decodeHttp, encodeBinary } from '../../functions/core/runtime/cloudevents-http.js';
import { parseRawRequest } from '../../functions/core/runtime/parse.js';
import { BadInputError } from '../../functions/core/runtime/errors.js';

const attrs = { specversion: '1.0', id: 'e-1', source: '/s', type: 't.x' };

describe('the CloudEvents HTTP codec shared by the runtime and the local broker', () => {
  it('round-trips attributes that need percent-encoding and keeps the data bytes', () => {
    const event = { attributes: { ...attrs, subject: 'a "b" 100% ü', datacontenttype: 'application/json' }, data: Buffer.from('{"a":1}') };
    const { headers, body } = encodeBinary(event);
    expect(headers['ce-subject']).toBe('a%20%22b%22%20100%25%20%C3%BC');
    const back = decodeHttp(headers, body!);
    expect(back).toEqual(event);
    expect(dataOf(back)).toEqual({ a: 1 });
  });

  it.each([
    ['binary, ce-id', { 'ce-id': 'x' }, true],
    ['structured', { 'content-type': 'application/cloudevents+json; charset=utf-8' }, true],
    ['a batch', { 'content-type': 'application/cloudevents-batch+json' }, false],
    ['plain JSON', { 'content-type': 'application/json' }, false],
  ])('tells whether a message carries one event: %s', (_name, headers, expected) => {
    expect(carriesCloudEvent(headers)).toBe(expected);
  });

  it('gives the broker and the runtime the same 400 reasons', () => {
    const cases: [Record<string, string>, string, RegExp][] = [
      [{ 'content-type': 'text/plain' }, 'hello', /^not a CloudEvent: no ce-id header/],
      [{ 'content-type': 'application/cloudevents+json' }, JSON.stringify({ ...attrs, specversion: '0.3' }), /^unsupported CloudEvents specversion "0.3": kcr accepts 1.0$/],
      [{ 'content-type': 'application/cloudevents+json' }, '[1]', /^a structured CloudEvent must be a JSON object$/],
      [{ 'content-type': 'application/cloudevents+json' }, JSON.stringify({ ...attrs, id: '' }), /^CloudEvent attribute id is missing or empty$/],
    ];
    for (const [headers, body, reason] of cases) {
      expect(() => decodeHttp(headers, Buffer.from(body))).toThrow(BadInputError);
      expect(() => decodeHttp(headers, Buffer.from(body))).toThrow(reason);
      expect(() => parseRawRequest(headers, body)).toThrow(reason);
    }
  });

  it('refuses a batch at a broker ingress', () => {
    expect(() => decodeHttp({ 'content-type': 'application/cloudevents-batch+json' }, Buffer.from('[]'))).toThrow(/batched CloudEvents are not accepted/);
  });
});
