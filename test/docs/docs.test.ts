// README and docs/events.md stay in step with the code: every environment
// variable of the catalog is in README's table, every contract type and every
// top-level field of its data is in docs/events.md, and README opens with the
// two commands.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ENV } from '../../functions/core/runtime/config.js';
import { ContractSchemas } from '../../functions/core/contract/events.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const events = readFileSync(new URL('../../docs/events.md', import.meta.url), 'utf8');

function topLevelKeys(schema: z.ZodType): string[] {
  if (schema instanceof z.ZodObject) return Object.keys(schema.shape);
  if (schema instanceof z.ZodUnion) return (schema.options as z.ZodType[]).flatMap(topLevelKeys);
  return [];
}

describe('documentation', () => {
  it('README starts with exactly the two commands: the local mode and the tests', () => {
    const firstBlock = /```(?:sh|bash)?\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
    const commands = firstBlock
      .split('\n')
      .map((l) => l.replace(/#.*$/, '').trim())
      .filter(Boolean);
    expect(commands).toEqual(['npm ci && npm start', 'npm ci && npm test']);
  });

  it('README lists every environment variable of the catalog, and no other', () => {
    const rows = [...readme.matchAll(/^\| `([A-Z_][A-Z0-9_]*)` \|/gm)].map((m) => m[1]);
    expect(rows.sort()).toEqual(Object.keys(ENV).sort());
  });

  it('docs/events.md names every contract type and every field of its data', () => {
    // Types whose data extends another's name only what they add.
    const added: Record<string, string[]> = {
      'io.kcr.checkpoint.stored': ['created', 'artifact', 'uri', 'size', 'sha256'],
      'io.kcr.image.built': ['stored', 'image', 'reference', 'digest', 'size'],
      'io.kcr.checkpoint.failed': ['image.built', 'namespace', 'kind', 'name', 'checkpointId', 'stage', 'reason'],
      'io.kcr.restore.failed': ['checkpoint.failed'],
    };
    for (const [type, schema] of Object.entries(ContractSchemas)) {
      const row = events.split('\n').find((l) => l.startsWith(`| \`${type}\``));
      expect(row, type).toBeDefined();
      if (type.startsWith('dev.knative.apiserver')) {
        expect(row).toContain('the whole object');
        continue;
      }
      for (const key of added[type] ?? topLevelKeys(schema as z.ZodType)) expect(row, `${type}: ${key}`).toContain(key);
    }
  });
});
