// core/v1 Events recorded by the simulated controllers and kubelets (what `kubectl describe` shows).

import { randomBytes } from 'node:crypto';
import type { ObjectApi } from './api.js';
import { nowRfc3339, type KubeObject } from './types.js';

export class EventRecorder {
  constructor(private readonly api: ObjectApi) {}

  record(obj: KubeObject, type: 'Normal' | 'Warning', reason: string, message: string, component: string, host?: string): void {
    const t = this.api.registry.find('', 'v1', 'events')!;
    const ns = obj.metadata.namespace ?? 'default';
    const now = nowRfc3339();
    const source: Record<string, string> = { component };
    if (host) source.host = host;
    try {
      this.api.create(t, ns, {
        metadata: { name: `${obj.metadata.name}.${randomBytes(8).toString('hex')}`, namespace: ns },
        involvedObject: {
          apiVersion: obj.apiVersion,
          kind: obj.kind,
          name: obj.metadata.name,
          namespace: obj.metadata.namespace,
          uid: obj.metadata.uid,
          resourceVersion: obj.metadata.resourceVersion,
        },
        reason,
        message,
        source,
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
        type,
        eventTime: null,
        reportingComponent: component,
        reportingInstance: host ?? '',
      });
    } catch {
      // Events are best effort, as in Kubernetes (e.g. the namespace is being deleted).
    }
  }
}
