import { describe, expect, it } from 'vitest';
import { namespaceExclusion } from '../../functions/core/kubernetes/excluded-namespaces.js';
import { ENV } from '../../functions/core/runtime/config.js';

describe('KCR_EXCLUDED_NAMESPACES', () => {
  const byDefault = namespaceExclusion(ENV.KCR_EXCLUDED_NAMESPACES.default!);

  it.each([
    ['kube-system', true],
    ['kube-public', true],
    ['kube-node-lease', true],
    ['knative-serving', true],
    ['knative-eventing', true],
    ['kcr-system', true],
    ['default', false],
    ['kube-systems', false],
    ['prod', false],
    ['knative', false],
  ])('by default %s excluded: %s', (ns, want) => {
    expect(byDefault(ns)).toBe(want);
  });

  it('takes exact names and prefixes with a trailing *, ignoring blanks and spaces', () => {
    const ex = namespaceExclusion(' team-a , ci-* ,, ');
    expect([ex('team-a'), ex('team-ab'), ex('ci-1'), ex('ci'), ex('')]).toEqual([true, false, true, false, false]);
    expect(namespaceExclusion('')('kube-system')).toBe(false);
  });
});
