// The REST verbs on a resource once the request is routed, authenticated and
// authorized: get, list (paging, tables), watch, create, update, patch, delete,
// deletecollection, and the pod subresources (log, eviction, binding), scale and node proxy.

import type http from 'node:http';
import { ApiError, badRequest, methodNotAllowed } from '../errors.js';
import { patchTypeFromContentType, type DeleteOptions } from '../api.js';
import { apiVersionOf, type ResourceType } from '../resources.js';
import { parseFieldSelector, parseLabelSelector } from '../selectors.js';
import { toTable, wantsTable } from '../tables.js';
import { isRecord, type KubeObject } from '../types.js';
import type { Serving } from './context.js';
import { evictPod } from './eviction.js';
import { nodeProxy } from './node-proxy.js';
import { podLog } from './pod-log.js';
import type { RequestInfo } from './request-info.js';
import { parseJson, sendJson } from './responses.js';
import { scale } from './scale.js';
import { watch } from './watch.js';

export async function dispatch(ctx: Serving, req: http.IncomingMessage, res: http.ServerResponse, t: ResourceType, info: RequestInfo, query: URLSearchParams, body: Buffer): Promise<void> {
  const ns = t.namespaced ? info.namespace : undefined;
  if (t.namespaced && !ns && info.name) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
  const dryRun = query.getAll('dryRun').includes('All');
  const accept = req.headers.accept;
  const sub = info.subresource;

  if (sub === 'proxy' && t.kind === 'Node') {
    await nodeProxy(ctx, res, info, query, body);
    return;
  }
  if (sub === 'log' && t.kind === 'Pod') {
    if (info.verb !== 'get') throw methodNotAllowed();
    podLog(ctx, req, res, ns!, info.name!, query);
    return;
  }
  if (sub === 'eviction' && t.kind === 'Pod') {
    if (info.verb !== 'create') throw methodNotAllowed();
    const ev = parseJson(body);
    const deleteOptions = isRecord(ev) && isRecord(ev.deleteOptions) ? ev.deleteOptions : {};
    evictPod(ctx.api, t, ns!, info.name!, deleteOptionsFrom(deleteOptions, new URLSearchParams()));
    sendJson(res, 201, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 });
    return;
  }
  if (sub === 'binding' && t.kind === 'Pod') {
    if (info.verb !== 'create') throw methodNotAllowed();
    const b = parseJson(body);
    const target = isRecord(b) && isRecord(b.target) ? b.target : {};
    const node = typeof target.name === 'string' ? target.name : '';
    ctx.api.mutate(t, ns, info.name!, (p) => {
      p.spec = { ...(p.spec ?? {}), nodeName: node };
    });
    sendJson(res, 201, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 });
    return;
  }
  if (sub === 'scale') {
    await scale(ctx, res, t, ns, info, req, body, dryRun);
    return;
  }

  switch (info.verb) {
    case 'get': {
      const o = ctx.api.get(t, ns, info.name!);
      const view = sub === 'status' || !sub ? o : o;
      if (wantsTable(accept)) sendJson(res, 200, toTable(t, [view], view.metadata.resourceVersion ?? '', query.get('includeObject')));
      else sendJson(res, 200, view);
      return;
    }
    case 'list':
      list(ctx, res, t, ns, query, accept);
      return;
    case 'watch':
      watch(ctx, req, res, t, ns, info, query);
      return;
    case 'create': {
      if (info.name && !sub) throw methodNotAllowed();
      const o = ctx.api.create(t, ns, parseJson(body), { dryRun });
      sendJson(res, 201, o);
      return;
    }
    case 'update': {
      const o = ctx.api.update(t, ns, info.name!, parseJson(body), { subresource: sub, dryRun });
      sendJson(res, 200, o);
      return;
    }
    case 'patch': {
      const type = patchTypeFromContentType(req.headers['content-type'], t);
      const o = ctx.api.patch(t, ns, info.name!, type, parseJson(body), { subresource: sub, dryRun });
      sendJson(res, 200, o);
      return;
    }
    case 'delete': {
      const opts = deleteOptionsFrom(body.length ? parseJson(body) : {}, query);
      opts.dryRun = dryRun;
      const { object, removed } = ctx.api.delete(t, ns, info.name!, opts);
      // Pods, namespaces and custom resources answer with the object; others with a Status.
      if (!removed || t.kind === 'Pod' || t.kind === 'Namespace' || t.custom) sendJson(res, 200, object);
      else {
        sendJson(res, 200, {
          kind: 'Status',
          apiVersion: 'v1',
          metadata: {},
          status: 'Success',
          details: { name: info.name, group: t.group || undefined, kind: t.plural, uid: object.metadata.uid },
        });
      }
      return;
    }
    case 'deletecollection': {
      const opts = deleteOptionsFrom(body.length ? parseJson(body) : {}, query);
      const items = ctx.api.list(t, ns, {
        labelSelector: parseLabelSelector(query.get('labelSelector')),
        fieldSelector: parseFieldSelector(query.get('fieldSelector')),
      });
      const out: KubeObject[] = [];
      for (const o of items) {
        try {
          out.push(ctx.api.delete(t, o.metadata.namespace, o.metadata.name!, { ...opts }).object);
        } catch (err) {
          if (!(err instanceof ApiError && err.code === 404)) throw err;
        }
      }
      sendJson(res, 200, { kind: `${t.kind}List`, apiVersion: apiVersionOf(t), metadata: { resourceVersion: String(ctx.api.store.currentRv()) }, items: out });
      return;
    }
    default:
      throw methodNotAllowed();
  }
}

function list(ctx: Serving, res: http.ServerResponse, t: ResourceType, ns: string | undefined, query: URLSearchParams, accept: string | undefined): void {
  const labelSelector = parseLabelSelector(query.get('labelSelector'));
  const fieldSelector = parseFieldSelector(query.get('fieldSelector'));
  const rv = String(ctx.api.store.currentRv());
  let items = ctx.api.list(t, ns, { labelSelector, fieldSelector });
  const limit = Number(query.get('limit') ?? '0');
  const cont = query.get('continue');
  const metadata: Record<string, unknown> = { resourceVersion: rv };
  if (cont) {
    let start: string;
    try {
      const parsed: unknown = JSON.parse(Buffer.from(cont, 'base64url').toString('utf8'));
      if (!isRecord(parsed) || typeof parsed.start !== 'string') throw new Error('bad token');
      start = parsed.start;
    } catch {
      throw badRequest('continue key is not valid: illegal base64 data or malformed token');
    }
    items = items.filter((o) => `${o.metadata.namespace ?? ''}/${o.metadata.name}` > start);
  }
  if (limit > 0 && items.length > limit) {
    const last = items[limit - 1]!;
    metadata.continue = Buffer.from(JSON.stringify({ start: `${last.metadata.namespace ?? ''}/${last.metadata.name}`, rv })).toString('base64url');
    metadata.remainingItemCount = items.length - limit;
    items = items.slice(0, limit);
  }
  if (wantsTable(accept)) {
    sendJson(res, 200, { ...toTable(t, items, rv, query.get('includeObject')), metadata });
    return;
  }
  sendJson(res, 200, { kind: `${t.kind}List`, apiVersion: apiVersionOf(t), metadata, items });
}

function deleteOptionsFrom(body: unknown, query: URLSearchParams): DeleteOptions {
  const b = isRecord(body) ? body : {};
  const opts: DeleteOptions = {};
  const pp = query.get('propagationPolicy') ?? (typeof b.propagationPolicy === 'string' ? b.propagationPolicy : undefined);
  if (pp !== undefined && pp !== null) {
    if (pp !== 'Background' && pp !== 'Foreground' && pp !== 'Orphan') {
      throw new ApiError(422, 'Invalid', `DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: "${pp}": supported values: "Foreground", "Background", "Orphan"`);
    }
    opts.propagationPolicy = pp;
  } else if (b.orphanDependents === true || query.get('orphanDependents') === 'true') opts.propagationPolicy = 'Orphan';
  const gp = query.get('gracePeriodSeconds') ?? (typeof b.gracePeriodSeconds === 'number' ? String(b.gracePeriodSeconds) : null);
  if (gp !== null && gp !== '') opts.gracePeriodSeconds = Math.max(0, Number(gp));
  if (isRecord(b.preconditions)) {
    opts.preconditions = {};
    if (typeof b.preconditions.uid === 'string') opts.preconditions.uid = b.preconditions.uid;
    if (typeof b.preconditions.resourceVersion === 'string') opts.preconditions.resourceVersion = b.preconditions.resourceVersion;
  }
  if (Array.isArray(b.dryRun) && b.dryRun.includes('All')) opts.dryRun = true;
  return opts;
}
