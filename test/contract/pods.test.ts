// Which workload owns a pod, and what of it can be checkpointed
// (functions/core/kubernetes/pods.ts): read from the pod alone, with no
// ReplicaSet read, so the names must be parsed exactly.
import { describe, expect, it } from 'vitest';
import type { V1OwnerReference, V1Pod } from '@kubernetes/client-node';
import { isCheckpointable, isContainerRunning, isServing, ownedBy, podOwner, selectContainers } from '../../functions/core/kubernetes/pods.js';

function ref(kind: string, name: string, controller?: boolean): V1OwnerReference {
  return { apiVersion: kind === 'ReplicaSet' || kind === 'StatefulSet' ? 'apps/v1' : 'v1', kind, name, uid: `uid-${name}`, ...(controller === undefined ? {} : { controller }) };
}

function pod(name: string, owners: V1OwnerReference[] = [], labels: Record<string, string> = {}): V1Pod {
  return { metadata: { name, namespace: 'shop', ownerReferences: owners, labels } };
}

describe('podOwner', () => {
  it.each([
    { what: "a Deployment's pod", pod: pod('cart-7d9f8b6c4-x2x4z', [ref('ReplicaSet', 'cart-7d9f8b6c4', true)], { 'pod-template-hash': '7d9f8b6c4' }), owner: { kind: 'Deployment', name: 'cart' } },
    {
      what: 'a Deployment whose name has dashes and the hash inside it',
      pod: pod('web-7d9f-api-7d9f-abcde', [ref('ReplicaSet', 'web-7d9f-api-7d9f', true)], { 'pod-template-hash': '7d9f' }),
      owner: { kind: 'Deployment', name: 'web-7d9f-api' },
    },
    { what: "a StatefulSet's pod", pod: pod('db-0', [ref('StatefulSet', 'db', true)], { 'controller-revision-hash': 'db-6b8f' }), owner: { kind: 'StatefulSet', name: 'db' } },
    { what: 'a StatefulSet whose name ends in a number', pod: pod('redis-2-1', [ref('StatefulSet', 'redis-2', true)]), owner: { kind: 'StatefulSet', name: 'redis-2' } },
    {
      what: 'the controller among several owners',
      pod: pod('db-0', [ref('ConfigMap', 'not-the-controller'), ref('StatefulSet', 'db', true)]),
      owner: { kind: 'StatefulSet', name: 'db' },
    },
    { what: 'the first owner when none is the controller', pod: pod('db-0', [ref('StatefulSet', 'db')]), owner: { kind: 'StatefulSet', name: 'db' } },
    { what: 'a bare pod', pod: pod('debug'), owner: { kind: 'Pod', name: 'debug' } },
    { what: 'a ReplicaSet of no Deployment (no pod-template-hash)', pod: pod('rs-abcde', [ref('ReplicaSet', 'rs', true)]), owner: { kind: 'Pod', name: 'rs-abcde' } },
    {
      what: 'a ReplicaSet whose name does not end in the hash',
      pod: pod('cart-abcde', [ref('ReplicaSet', 'cart-5c4b', true)], { 'pod-template-hash': '7d9f' }),
      owner: { kind: 'Pod', name: 'cart-abcde' },
    },
    { what: 'a ReplicaSet named only the hash', pod: pod('7d9f-abcde', [ref('ReplicaSet', '7d9f', true)], { 'pod-template-hash': '7d9f' }), owner: { kind: 'Pod', name: '7d9f-abcde' } },
    {
      what: 'a hash that only ends the name without its dash',
      pod: pod('cart7d9f-abcde', [ref('ReplicaSet', 'cart7d9f', true)], { 'pod-template-hash': '7d9f' }),
      owner: { kind: 'Pod', name: 'cart7d9f-abcde' },
    },
    { what: "a DaemonSet's pod", pod: pod('agent-xyz', [ref('DaemonSet', 'agent', true)]), owner: { kind: 'Pod', name: 'agent-xyz' } },
    { what: "a Job's pod", pod: pod('batch-xyz', [ref('Job', 'batch', true)], { 'pod-template-hash': 'xyz' }), owner: { kind: 'Pod', name: 'batch-xyz' } },
    { what: 'a pod without metadata', pod: {}, owner: { kind: 'Pod', name: '' } },
  ])('$what', ({ pod: p, owner }) => {
    expect(podOwner(p)).toEqual(owner);
  });

  it('ownedBy compares kind and name', () => {
    const p = pod('cart-7d9f-x', [ref('ReplicaSet', 'cart-7d9f', true)], { 'pod-template-hash': '7d9f' });
    expect(ownedBy(p, { kind: 'Deployment', name: 'cart' })).toBe(true);
    expect(ownedBy(p, { kind: 'StatefulSet', name: 'cart' })).toBe(false);
    expect(ownedBy(p, { kind: 'Deployment', name: 'cart-7d9f' })).toBe(false);
  });
});

describe('isCheckpointable, isServing, isContainerRunning', () => {
  const base = (extra: Partial<V1Pod> = {}, phase = 'Running'): V1Pod => ({
    metadata: { name: 'p', namespace: 'shop', ...extra.metadata },
    spec: { nodeName: 'node-a', containers: [{ name: 'app' }], ...extra.spec },
    status: {
      phase,
      podIP: '10.244.0.5',
      conditions: [{ type: 'Ready', status: 'True' }],
      containerStatuses: [{ name: 'app', image: 'i', imageID: '', ready: true, restartCount: 0, state: { running: {} } }],
      ...extra.status,
    },
  });

  it.each([
    { what: 'running on a node', pod: base(), checkpointable: true, serving: true },
    { what: 'pending', pod: base({}, 'Pending'), checkpointable: false, serving: false },
    { what: 'not bound to a node', pod: base({ spec: { nodeName: '', containers: [{ name: 'app' }] } }), checkpointable: false, serving: true },
    { what: 'being deleted', pod: base({ metadata: { deletionTimestamp: new Date('2026-11-30T12:00:00Z') } }), checkpointable: false, serving: false },
    { what: 'succeeded', pod: base({}, 'Succeeded'), checkpointable: false, serving: false },
    { what: 'running but not Ready', pod: base({ status: { phase: 'Running', podIP: '10.244.0.5', conditions: [{ type: 'Ready', status: 'False' }] } }), checkpointable: true, serving: false },
    { what: 'running without an IP', pod: base({ status: { phase: 'Running', podIP: '', conditions: [{ type: 'Ready', status: 'True' }] } }), checkpointable: true, serving: false },
  ])('$what: checkpointable $checkpointable, serving $serving', ({ pod: p, checkpointable, serving }) => {
    expect(isCheckpointable(p)).toBe(checkpointable);
    expect(isServing(p)).toBe(serving);
  });

  it('a container runs only with a running state', () => {
    expect(isContainerRunning(base(), 'app')).toBe(true);
    expect(isContainerRunning(base(), 'sidecar')).toBe(false);
    expect(
      isContainerRunning(base({ status: { containerStatuses: [{ name: 'app', image: 'i', imageID: '', ready: false, restartCount: 1, state: { waiting: { reason: 'CrashLoopBackOff' } } }] } }), 'app'),
    ).toBe(false);
  });
});

describe('selectContainers', () => {
  const p: V1Pod = { metadata: { name: 'p' }, spec: { initContainers: [{ name: 'init' }], containers: [{ name: 'app' }, { name: 'sidecar' }, { name: 'cache' }] } };

  it.each([
    { what: 'no list: every app container, init containers never', wanted: undefined, selected: ['app', 'sidecar', 'cache'] },
    { what: "a list: those present, in the pod's order", wanted: ['cache', 'app'], selected: ['app', 'cache'] },
    { what: 'names the pod lacks are dropped', wanted: ['app', 'gone', 'init'], selected: ['app'] },
    { what: 'an empty list selects nothing', wanted: [], selected: [] },
  ])('$what', ({ wanted, selected }) => {
    expect(selectContainers(p, wanted)).toEqual(selected);
  });

  it('a pod without a spec has nothing to select', () => {
    expect(selectContainers({ metadata: { name: 'p' } }, undefined)).toEqual([]);
  });
});
