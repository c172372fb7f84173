// The scale subresource (autoscaling/v1 Scale) of Deployments, StatefulSets and
// ReplicaSets: get, update and patch of spec.replicas.

import type http from 'node:http';
import { patchTypeFromContentType } from '../api.js';
import { badRequest, methodNotAllowed } from '../errors.js';
import type { ResourceType } from '../resources.js';
import { clone, isRecord, type KubeObject } from '../types.js';
import type { Serving } from './context.js';
import type { RequestInfo } from './request-info.js';
import { parseJson, sendJson } from './responses.js';

export async function scale(
  ctx: Serving,
  res: http.ServerResponse,
  t: ResourceType,
  ns: string | undefined,
  info: RequestInfo,
  req: http.IncomingMessage,
  body: Buffer,
  dryRun: boolean,
): Promise<void> {
  const toScale = (o: KubeObject): Record<string, unknown> => {
    const spec = o.spec ?? {};
    const sel = isRecord(spec.selector) && isRecord(spec.selector.matchLabels) ? spec.selector.matchLabels : {};
    return {
      kind: 'Scale',
      apiVersion: 'autoscaling/v1',
      metadata: { name: o.metadata.name, namespace: o.metadata.namespace, uid: o.metadata.uid, resourceVersion: o.metadata.resourceVersion, creationTimestamp: o.metadata.creationTimestamp },
      spec: { replicas: spec.replicas ?? 0 },
      status: {
        replicas: isRecord(o.status) && typeof o.status.replicas === 'number' ? o.status.replicas : 0,
        selector: Object.entries(sel)
          .map(([k, v]) => `${k}=${String(v)}`)
          .join(','),
      },
    };
  };
  const cur = ctx.api.get(t, ns, info.name!);
  if (info.verb === 'get') {
    sendJson(res, 200, toScale(cur));
    return;
  }
  let desired: unknown;
  if (info.verb === 'update') desired = parseJson(body);
  else if (info.verb === 'patch') {
    const type = patchTypeFromContentType(req.headers['content-type'], t);
    const { mergePatch, strategicMergePatch, jsonPatch } = await import('../patch.js');
    const base = toScale(cur);
    const p = parseJson(body);
    desired = type === 'json' ? jsonPatch(base, p) : type === 'merge' ? mergePatch(base, p) : strategicMergePatch(base, p);
  } else throw methodNotAllowed();
  const replicas = isRecord(desired) && isRecord(desired.spec) ? desired.spec.replicas : undefined;
  if (typeof replicas !== 'number') throw badRequest('Scale: spec.replicas must be a number');
  const next = clone(cur);
  next.spec = { ...(next.spec ?? {}), replicas };
  const rv = isRecord(desired) && isRecord(desired.metadata) ? desired.metadata.resourceVersion : undefined;
  if (typeof rv === 'string') next.metadata.resourceVersion = rv;
  else delete next.metadata.resourceVersion;
  const stored = ctx.api.update(t, ns, info.name!, next, { dryRun });
  sendJson(res, 200, toScale(stored));
}
