// Every YAML document that deploys kcr validates against its published schema.
import { describe, expect, it } from 'vitest';
import { loadRepoDocs, validateDoc, type LoadedDoc } from './support.js';

const docs = loadRepoDocs();

describe('cluster YAML against published schemas', () => {
  it('finds the documents of eventing/, sources/ and manifests/', () => {
    const dirs = new Set(docs.map((d) => d.origin.split('/')[0]));
    expect([...dirs].sort()).toEqual(['eventing', 'manifests', 'sources']);
  });

  it.each(docs.map((d) => [`${d.origin} ${d.doc.kind} ${d.doc.metadata.name}`, d] as const))('%s', (_label, loaded) => {
    expect(() => validateDoc(loaded)).not.toThrow();
  });

  it('rejects an object that breaks its schema, naming where', () => {
    const trigger = docs.find((d) => d.doc.kind === 'Trigger' && d.doc.metadata.name === 'store-artifact');
    expect(trigger).toBeDefined();
    const broken: LoadedDoc = structuredClone(trigger!);
    (broken.doc.spec as { delivery: { retry: unknown } }).delivery.retry = 'ten';
    expect(() => validateDoc(broken)).toThrow(/Trigger store-artifact fails its schema: .*delivery\/retry must be integer/);
  });

  it('rejects a kind it has no schema for', () => {
    const odd: LoadedDoc = { origin: 'x.yaml#1', doc: { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } } };
    expect(() => validateDoc(odd)).toThrow(/no schema known for example.com\/v1\/Widget/);
  });
});
