// getJsonIfParsable: a missing or unparsable record is absent; any other read failure is thrown.
import { describe, expect, it } from 'vitest';
import { getJsonIfParsable } from '../../functions/core/storage/object-store.js';
import { TransientError } from '../../functions/core/runtime/errors.js';
import { MemoryStore } from '../support/memory-store.js';

describe('getJsonIfParsable', () => {
  it('reads JSON, and takes a missing or unparsable object for absent', async () => {
    const store = new MemoryStore();
    store.put('good.json', Buffer.from('{"id":"x"}'));
    store.put('torn.json', Buffer.from('{"id":'));
    expect(await getJsonIfParsable(store, 'good.json')).toEqual({ id: 'x' });
    expect(await getJsonIfParsable(store, 'torn.json')).toBeUndefined();
    expect(await getJsonIfParsable(store, 'missing.json')).toBeUndefined();
  });

  it('throws any other failure to read', async () => {
    const store = new MemoryStore();
    store.getJson = async () => {
      throw new TransientError('S3 unreachable');
    };
    await expect(getJsonIfParsable(store, 'x.json')).rejects.toThrow(TransientError);
  });
});
