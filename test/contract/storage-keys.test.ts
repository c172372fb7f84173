// Every name that becomes part of an S3 key is checked where the key is built
// (functions/core/storage/layout.ts), with the API server's own rules.
import { describe, expect, it } from 'vitest';
import { artifactKey, containerPrefix, disruptionKey, disruptionPrefix, keyName, parseArtifactKey } from '../../functions/core/storage/layout.js';
import { BadInputError } from '../../functions/core/runtime/errors.js';

const ID = '20261130T101500Z-0123456789ab';
const good = { namespace: 'prod', workload: { kind: 'StatefulSet' as const, name: 'db' }, container: 'redis', id: ID };

/** Values an attacker put into events: traversal, separators, case, length, control and wide characters. */
const HOSTILE = [
  '',
  '.',
  '..',
  '../../../../tmp',
  'a/b',
  '/abs',
  'a\\b',
  'a..b',
  '.hidden',
  'trailing.',
  '-lead',
  'trail-',
  'UPPER',
  'with space',
  'nul\u0000byte',
  'new\nline',
  'pct%2f',
  'ünï',
  'a'.repeat(254),
  '*',
  '?x=1',
];

describe('keys of the storage layout', () => {
  it('builds the documented keys from valid names', () => {
    expect(artifactKey(good, 'manifest')).toBe(`checkpoints/prod/StatefulSet/db/redis/${ID}/manifest.json`);
    expect(disruptionKey('prod', 'StatefulSet', 'db', 'db-0')).toBe('disruptions/prod/StatefulSet/db/db-0.json');
    expect(disruptionKey('prod', 'Deployment', 'web.v2', 'web.v2-5d9f8-abcde')).toBe('disruptions/prod/Deployment/web.v2/web.v2-5d9f8-abcde.json');
  });

  it.each(HOSTILE)('refuses %j in every position of every key, with a BadInputError naming it', (bad) => {
    const attempts: [string, () => string][] = [
      ['namespace', () => artifactKey({ ...good, namespace: bad }, 'archive')],
      ['workload', () => artifactKey({ ...good, workload: { kind: 'StatefulSet', name: bad } }, 'archive')],
      ['container', () => containerPrefix({ ...good, container: bad })],
      ['id', () => artifactKey({ ...good, id: bad }, 'image')],
      ['namespace', () => disruptionPrefix(bad, 'Deployment', 'web')],
      ['workload', () => disruptionKey('prod', 'Deployment', bad, 'web-1')],
      ['pod', () => disruptionKey('prod', 'Deployment', 'web', bad)],
    ];
    for (const [what, build] of attempts) {
      expect(build).toThrow(BadInputError);
      expect(build).toThrow(new RegExp(`^${what} `));
    }
  });

  it('refuses a 64-character label (namespace, container) but takes a 253-character subdomain (pod, workload)', () => {
    expect(() => keyName('namespace', 'a'.repeat(64))).toThrow(/DNS-1123 label/);
    expect(() => keyName('container', 'a'.repeat(64))).toThrow(/DNS-1123 label/);
    expect(keyName('namespace', 'a'.repeat(63))).toHaveLength(63);
    expect(keyName('pod', `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`)).toHaveLength(253);
  });

  it('refuses a workload kind that is not one of the three', () => {
    expect(() => containerPrefix({ ...good, workload: { kind: '../x' as 'Pod', name: 'db' } })).toThrow(/workload kind "..\/x"/);
  });

  it('does not parse a listed key whose names break the rules', () => {
    expect(parseArtifactKey(`checkpoints/prod/StatefulSet/db/redis/${ID}/manifest.json`)).toMatchObject({ namespace: 'prod', id: ID, file: 'manifest.json' });
    expect(parseArtifactKey(`checkpoints/Prod/StatefulSet/db/redis/${ID}/manifest.json`)).toBeUndefined();
    expect(parseArtifactKey(`checkpoints/prod/StatefulSet/db/redis/29991231-x/manifest.json`)).toBeUndefined();
  });
});
