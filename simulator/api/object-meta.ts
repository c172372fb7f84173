// The envelope of every object the API server handles: decoding a request body against the
// resource's apiVersion/kind, the apiVersion/kind every returned object carries, the random
// suffix generateName gets, and the JSON equality updates use (no-op writes, generation).

import { badRequest } from '../errors.js';
import { apiVersionOf, type ResourceType } from '../resources.js';
import { clone, isRecord, type KubeObject } from '../types.js';

const RANDOM_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

/** The 5-character suffix the API server appends to generateName. */
export function randomSuffix(n = 5): string {
  let s = '';
  for (let i = 0; i < n; i++) s += RANDOM_ALPHABET[Math.floor(Math.random() * RANDOM_ALPHABET.length)];
  return s;
}

/** Returned objects always carry apiVersion and kind (the server sets them). */
export function withTypeMeta(t: ResourceType, o: KubeObject): KubeObject {
  return { apiVersion: apiVersionOf(t), kind: t.kind, ...o, metadata: o.metadata };
}

export function deepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** A copy of a create/update body, checked against the resource's apiVersion and kind. */
export function decodeBody(t: ResourceType, input: unknown): KubeObject {
  if (!isRecord(input)) throw badRequest(`the body of the request must be a JSON object for ${t.kind}`);
  const obj = clone(input) as KubeObject;
  if (!isRecord(obj.metadata)) obj.metadata = {};
  const expected = apiVersionOf(t);
  if (obj.kind !== undefined && obj.kind !== t.kind) {
    throw badRequest(`the API version in the data (${String(obj.apiVersion)}) does not match the expected API version (${expected})`);
  }
  if (obj.apiVersion !== undefined && obj.apiVersion !== expected) {
    throw badRequest(`the API version in the data (${String(obj.apiVersion)}) does not match the expected API version (${expected})`);
  }
  return obj;
}
