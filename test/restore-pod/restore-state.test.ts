// restore-pod's memory on the pod (functions/restore-pod/restore-state.ts):
// annotation keys that stay valid for any container name, and a state that is
// read only when it parses.
import { describe, expect, it } from 'vitest';
import type { V1ContainerStatus, V1Pod } from '@kubernetes/client-node';
import { containerImage, hasStarted, readRestoreState, restoredFromKey, restoreStateKey, type RestoreState } from '../../functions/restore-pod/restore-state.js';

/** An annotation key's name part: at most 63 characters, alphanumeric at both ends (apimachinery's qualified name). */
const QUALIFIED_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;

const STATE: RestoreState = {
  tried: ['20261130T113000Z-0123456789ab'],
  current: '20261130T113000Z-0123456789ab',
  restoredAt: '2026-11-30T12:00:00.000Z',
  seenRestarts: 2,
  originalImage: 'quay.io/kcr/app:1',
};

function annotated(annotations: Record<string, string>): V1Pod {
  return { metadata: { name: 'p', annotations }, spec: { containers: [{ name: 'app', image: 'quay.io/kcr/app:1' }] } };
}

describe('annotation keys', () => {
  it('a short container name is spelled out', () => {
    expect(restoreStateKey('app')).toBe('kcr.io/restore-state-app');
    expect(restoredFromKey('app')).toBe('kcr.io/restored-from-app');
  });

  it.each([
    ['the longest name spelled out (63 with the prefix)', 'c'.repeat(63 - 'restore-state-'.length), false],
    ['one character more', 'c'.repeat(64 - 'restore-state-'.length), true],
    ['a 63-character container name (the DNS label maximum)', `a${'b'.repeat(61)}z`, true],
  ])('%s: a valid key, hashed %s', (_what, container, hashed) => {
    for (const key of [restoreStateKey(container), restoredFromKey(container)]) {
      const [prefix, name] = key.split('/');
      expect(prefix).toBe('kcr.io');
      expect(name).toMatch(QUALIFIED_NAME);
      expect(name!.length).toBeLessThanOrEqual(63);
      expect(name!.includes(container)).toBe(!hashed);
    }
  });

  it('long names that share their first 54 characters get different keys, the same each time', () => {
    const a = `${'x'.repeat(55)}-alpha`;
    const b = `${'x'.repeat(55)}-bravo`;
    expect(restoreStateKey(a)).not.toBe(restoreStateKey(b));
    expect(restoreStateKey(a)).toBe(restoreStateKey(a));
    expect(restoreStateKey(a)).not.toBe(restoredFromKey(a));
  });
});

describe('readRestoreState', () => {
  it("reads the container's state", () => {
    expect(readRestoreState(annotated({ [restoreStateKey('app')]: JSON.stringify(STATE) }), 'app')).toEqual(STATE);
  });

  it("reads a long-named container's state under its hashed key", () => {
    const long = 'c'.repeat(63);
    expect(readRestoreState(annotated({ [restoreStateKey(long)]: JSON.stringify(STATE) }), long)).toEqual(STATE);
    expect(readRestoreState(annotated({ [`kcr.io/restore-state-${long}`]: JSON.stringify(STATE) }), long)).toBeUndefined();
  });

  it.each([
    ['no annotation', {}],
    ["another container's", { [restoreStateKey('sidecar')]: JSON.stringify(STATE) }],
    ['an empty value', { [restoreStateKey('app')]: '' }],
    ['not JSON', { [restoreStateKey('app')]: '{"tried":' }],
    ['JSON of another shape', { [restoreStateKey('app')]: JSON.stringify({ ...STATE, seenRestarts: '2' }) }],
    ['a state missing a field', { [restoreStateKey('app')]: JSON.stringify({ tried: [], restoredAt: STATE.restoredAt, seenRestarts: 1 }) }],
    ['a JSON string', { [restoreStateKey('app')]: '"restored"' }],
  ])('no state from %s', (_what, annotations) => {
    expect(readRestoreState(annotated(annotations), 'app')).toBeUndefined();
  });

  it('drops fields it does not know', () => {
    expect(readRestoreState(annotated({ [restoreStateKey('app')]: JSON.stringify({ ...STATE, extra: 'x' }) }), 'app')).toEqual(STATE);
  });
});

describe('containerImage and hasStarted', () => {
  const pod = (s?: Partial<V1ContainerStatus>): V1Pod => ({
    metadata: { name: 'p' },
    spec: { containers: [{ name: 'app', image: 'quay.io/kcr/app:1' }] },
    ...(s ? { status: { containerStatuses: [{ name: 'app', image: 'quay.io/kcr/app:1', imageID: '', ready: false, restartCount: 0, ...s }] } } : {}),
  });

  it('the image the pod spec gives the container', () => {
    expect(containerImage(pod(), 'app')).toBe('quay.io/kcr/app:1');
    expect(containerImage(pod(), 'sidecar')).toBeUndefined();
  });

  it.each([
    ['no status yet', undefined, false],
    ['waiting to be created', { state: { waiting: { reason: 'ContainerCreating' } } }, false],
    ['running', { state: { running: {} } }, true],
    ['terminated', { state: { terminated: { exitCode: 0 } } }, true],
    ['waiting after a run', { state: { waiting: { reason: 'CrashLoopBackOff' } }, lastState: { terminated: { exitCode: 1 } } }, true],
    ['restarted before', { state: { waiting: {} }, restartCount: 1 }, true],
  ])('hasStarted when %s: %s', (_what, s, started) => {
    expect(hasStarted(pod(s), 'app')).toBe(started);
  });
});
