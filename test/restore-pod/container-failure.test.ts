// Which container statuses are failures restore-pod acts on, and which pod
// endings are disruptions whose checkpoints a replacement inherits
// (functions/restore-pod/container-failure.ts).
import { describe, expect, it } from 'vitest';
import type { V1ContainerStatus, V1Pod, V1PodCondition } from '@kubernetes/client-node';
import { disruptionOf, recentFailures } from '../../functions/restore-pod/container-failure.js';

const NOW = new Date('2026-11-30T12:00:00Z');
const WINDOW = 120_000;
const ago = (ms: number) => new Date(NOW.getTime() - ms);

function status(name: string, s: Partial<V1ContainerStatus>): V1ContainerStatus {
  return { name, image: 'quay.io/kcr/app:1', imageID: '', ready: false, restartCount: 3, ...s };
}

function podWith(...statuses: V1ContainerStatus[]): V1Pod {
  return { metadata: { name: 'cart-7d9f-aaaaa', namespace: 'shop' }, status: { phase: 'Running', containerStatuses: statuses } };
}

describe('recentFailures', () => {
  it.each([
    {
      what: 'terminated non-zero, when it finished',
      s: { state: { terminated: { exitCode: 137, reason: 'Error', finishedAt: ago(5_000) } } },
      failure: { reason: 'exit code 137 (Error)', at: ago(5_000) },
    },
    {
      what: 'OOMKilled, whatever the exit code says',
      s: { state: { terminated: { exitCode: 0, reason: 'OOMKilled', finishedAt: ago(5_000) } } },
      failure: { reason: 'OOMKilled', at: ago(5_000) },
    },
    {
      what: 'waiting in CrashLoopBackOff after a failed run: now',
      s: { state: { waiting: { reason: 'CrashLoopBackOff' } }, lastState: { terminated: { exitCode: 1, reason: 'Error', finishedAt: ago(60 * 60_000) } } },
      failure: { reason: 'CrashLoopBackOff after exit code 1 (Error)', at: NOW },
    },
    {
      what: 'waiting in CrashLoopBackOff with no last state',
      s: { state: { waiting: { reason: 'CrashLoopBackOff' } } },
      failure: { reason: 'CrashLoopBackOff', at: NOW },
    },
    {
      what: 'running again after a failed run that ended within the window',
      s: { state: { running: { startedAt: ago(1_000) } }, lastState: { terminated: { exitCode: 2, finishedAt: ago(2_000) } } },
      failure: { reason: 'exit code 2', at: ago(2_000) },
    },
    {
      what: 'terminated without a finish time: now',
      s: { state: { terminated: { exitCode: 1 } } },
      failure: { reason: 'exit code 1', at: NOW },
    },
    {
      what: 'terminated with a finish time that is no date: now',
      s: { state: { terminated: { exitCode: 1, finishedAt: 'yesterday' as unknown as Date } } },
      failure: { reason: 'exit code 1', at: NOW },
    },
  ])('a failure: $what', ({ s, failure }) => {
    expect(recentFailures(podWith(status('app', s)), NOW, WINDOW)).toEqual([{ container: 'app', restartCount: 3, ...failure }]);
  });

  it.each([
    { what: 'running, never failed', s: { state: { running: {} } } },
    { what: 'terminated with exit code 0 (Completed)', s: { state: { terminated: { exitCode: 0, reason: 'Completed', finishedAt: ago(1_000) } } } },
    { what: 'running after a clean exit', s: { state: { running: {} }, lastState: { terminated: { exitCode: 0, finishedAt: ago(1_000) } } } },
    { what: 'running after a failure older than the window', s: { state: { running: {} }, lastState: { terminated: { exitCode: 137, finishedAt: ago(WINDOW + 1) } } } },
    { what: 'terminated longer ago than the window', s: { state: { terminated: { exitCode: 137, finishedAt: ago(WINDOW + 1) } } } },
    { what: 'waiting for its image', s: { state: { waiting: { reason: 'ImagePullBackOff' } } } },
    { what: 'waiting to be created', s: { state: { waiting: { reason: 'ContainerCreating' } } } },
  ])('no failure: $what', ({ s }) => {
    expect(recentFailures(podWith(status('app', s)), NOW, WINDOW)).toEqual([]);
  });

  it("a failure exactly at the window's edge still counts", () => {
    expect(recentFailures(podWith(status('app', { state: { terminated: { exitCode: 1, finishedAt: ago(WINDOW) } } })), NOW, WINDOW)).toHaveLength(1);
  });

  it('reports each failed container of the pod, and only those', () => {
    const pod = podWith(
      status('app', { state: { running: {} } }),
      status('sidecar', { restartCount: 1, state: { terminated: { exitCode: 143, finishedAt: ago(1_000) } } }),
      status('cache', { restartCount: 7, state: { waiting: { reason: 'CrashLoopBackOff' } } }),
    );
    expect(recentFailures(pod, NOW, WINDOW).map((f) => [f.container, f.restartCount])).toEqual([
      ['sidecar', 1],
      ['cache', 7],
    ]);
  });

  it('a pod without statuses has no failures', () => {
    expect(recentFailures({ metadata: { name: 'p' } }, NOW, WINDOW)).toEqual([]);
  });
});

describe('disruptionOf', () => {
  const ended = (phase: string, conditions: V1PodCondition[] = [], reason?: string): V1Pod => ({
    metadata: { name: 'web-0', namespace: 'shop' },
    status: { phase, conditions, ...(reason ? { reason } : {}) },
  });
  const target = (reason?: string, status = 'True'): V1PodCondition => ({ type: 'DisruptionTarget', status, ...(reason ? { reason } : {}) });

  it.each([['EvictionByEvictionAPI'], ['DeletionByTaintManager'], ['TerminationByKubelet'], ['PreemptionByScheduler'], ['DeletionByPodGC']])('DisruptionTarget %s is a disruption', (reason) => {
    expect(disruptionOf(ended('Running', [target(reason)]), undefined)).toBe(reason);
  });

  it.each([
    { what: 'DisruptionTarget without a reason', pod: ended('Running', [target()]), nodeReady: undefined, is: 'DisruptionTarget' },
    { what: 'a node-pressure eviction (Failed, Evicted)', pod: ended('Failed', [], 'Evicted'), nodeReady: undefined, is: 'Evicted' },
    { what: 'a pod lost with its node (Failed, NodeLost)', pod: ended('Failed', [], 'NodeLost'), nodeReady: undefined, is: 'NodeLost' },
    { what: 'deleted while its node is not Ready', pod: ended('Running'), nodeReady: false, is: 'NodeNotReady' },
    { what: 'an unknown DisruptionTarget reason on a pod whose node is gone', pod: ended('Running', [target('SomethingNew')]), nodeReady: false, is: 'NodeNotReady' },
  ])('a disruption: $what', ({ pod, nodeReady, is }) => {
    expect(disruptionOf(pod, nodeReady)).toBe(is);
  });

  it.each([
    { what: 'a deletion on a Ready node (scale-down, rollout, kubectl delete)', pod: ended('Running'), nodeReady: true },
    { what: 'a running pod, node not asked', pod: ended('Running'), nodeReady: undefined },
    { what: 'a DisruptionTarget that is False', pod: ended('Running', [target('EvictionByEvictionAPI', 'False')]), nodeReady: true },
    { what: 'a DisruptionTarget reason kcr does not know', pod: ended('Running', [target('SomethingNew')]), nodeReady: true },
    { what: 'Failed for another reason', pod: ended('Failed', [], 'DeadlineExceeded'), nodeReady: true },
    { what: 'Succeeded', pod: ended('Succeeded'), nodeReady: undefined },
  ])('on purpose, not a disruption: $what', ({ pod, nodeReady }) => {
    expect(disruptionOf(pod, nodeReady)).toBeUndefined();
  });
});
