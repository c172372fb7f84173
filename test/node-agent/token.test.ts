// The node-agent token reader refuses the placeholder committed in
// manifests/secrets/node-agent.env, from a file (the mounted Secret) or a value.
import { mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../functions/core/runtime/errors.js';
import { tokenGetter } from '../../functions/core/runtime/token.js';

/** The Secret's `token` key as kustomize mounts it: the value after `token=`. */
const PLACEHOLDER = /^token=(.*)$/m.exec(readFileSync(new URL('../../manifests/secrets/node-agent.env', import.meta.url), 'utf8'))![1]!;
const HINT = /is the placeholder from manifests\/secrets\/node-agent\.env \(Secret kcr-node-agent-token\): run manifests\/secrets\/generate\.sh/;

describe('tokenGetter', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kcr-token-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses a token file holding the placeholder at start-up', () => {
    const file = join(dir, 'placeholder');
    writeFileSync(file, `${PLACEHOLDER}\n`);
    expect(() => tokenGetter({ tokenFile: file })).toThrow(ConfigError);
    expect(() => tokenGetter({ tokenFile: file })).toThrow(HINT);
    expect(() => tokenGetter({ tokenFile: file })).toThrow(file);
  });

  it('refuses the placeholder as a plain value', () => {
    expect(() => tokenGetter({ token: PLACEHOLDER })).toThrow(/KCR_NODE_AGENT_TOKEN is the placeholder/);
  });

  it('serves a generated token, and refuses a rotation back to the placeholder', () => {
    const file = join(dir, 'rotated');
    writeFileSync(file, 'c0ffee'.repeat(10));
    const get = tokenGetter({ tokenFile: file });
    expect(get()).toBe('c0ffee'.repeat(10));
    writeFileSync(file, PLACEHOLDER);
    utimesSync(file, new Date(), new Date(Date.now() + 10_000)); // a distinct mtime, whatever the clock's resolution
    expect(() => get()).toThrow(HINT);
  });
});
