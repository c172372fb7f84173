// core/v1 Events that make `kubectl describe` tell kcr's story.
import { randomBytes } from 'node:crypto';
import type { CoreV1Event, V1ObjectMeta } from '@kubernetes/client-node';

interface EventTarget {
  apiVersion: string;
  kind: string;
  metadata?: V1ObjectMeta;
}

interface EventSpec {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
  /** e.g. `spec.containers{app}` */
  fieldPath?: string;
  component: string;
  now?: Date;
}

export function buildEvent(target: EventTarget, spec: EventSpec): CoreV1Event {
  const name = target.metadata?.name ?? 'unknown';
  const namespace = target.metadata?.namespace ?? 'default';
  const now = spec.now ?? new Date();
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name: `${name}.${now.getTime().toString(16)}${randomBytes(3).toString('hex')}`, namespace },
    involvedObject: {
      apiVersion: target.apiVersion,
      kind: target.kind,
      name,
      namespace,
      ...(target.metadata?.uid ? { uid: target.metadata.uid } : {}),
      ...(spec.fieldPath ? { fieldPath: spec.fieldPath } : {}),
    },
    type: spec.type,
    reason: spec.reason,
    message: spec.message.slice(0, 1024),
    source: { component: spec.component },
    reportingComponent: `kcr.io/${spec.component}`,
    reportingInstance: process.env.HOSTNAME ?? spec.component,
    firstTimestamp: now,
    lastTimestamp: now,
    count: 1,
  };
}
