// Watch streams: the initial ADDED events or the replay from a resourceVersion
// (410 Expired when it is too old), live store events filtered by selectors, BOOKMARKs, timeouts.

import type http from 'node:http';
import type { Status } from '../errors.js';
import { apiVersionOf, resourceKey, type ResourceType } from '../resources.js';
import { matchesFields, matchesLabels, parseFieldSelector, parseLabelSelector } from '../selectors.js';
import type { StoreEvent } from '../store.js';
import type { KubeObject } from '../types.js';
import type { Serving } from './context.js';
import type { RequestInfo } from './request-info.js';

export function watch(ctx: Serving, req: http.IncomingMessage, res: http.ServerResponse, t: ResourceType, ns: string | undefined, info: RequestInfo, query: URLSearchParams): void {
  const labelSelector = parseLabelSelector(query.get('labelSelector'));
  const fieldSelector = parseFieldSelector(query.get('fieldSelector'));
  // Watching one object by name (legacy path, or fieldSelector metadata.name).
  if (info.name) fieldSelector.push({ path: 'metadata.name', op: 'eq', value: info.name });
  const matches = (o: KubeObject | undefined): boolean =>
    !!o && (ns === undefined || o.metadata.namespace === ns) && matchesLabels(labelSelector, o.metadata.labels) && matchesFields(fieldSelector, { apiVersion: apiVersionOf(t), kind: t.kind, ...o });
  const key = resourceKey(t);
  const rvParam = query.get('resourceVersion');
  const bookmarks = query.get('allowWatchBookmarks') === 'true';
  const timeoutSeconds = Number(query.get('timeoutSeconds') ?? '0');

  res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-cache, private', 'transfer-encoding': 'chunked' });
  res.flushHeaders();
  const write = (type: string, object: unknown): void => {
    if (!res.writableEnded) res.write(`${JSON.stringify({ type, object })}\n`);
  };
  const typed = (o: KubeObject): KubeObject => ({ apiVersion: apiVersionOf(t), kind: t.kind, ...o });
  const deliver = (ev: StoreEvent): void => {
    if (ev.resource !== key) return;
    const now = matches(ev.object);
    const before = ev.type === 'MODIFIED' ? matches(ev.oldObject) : ev.type === 'DELETED';
    if (ev.type === 'ADDED' && now) write('ADDED', typed(ev.object));
    else if (ev.type === 'DELETED' && now) write('DELETED', typed(ev.object));
    else if (ev.type === 'MODIFIED') {
      if (now && before) write('MODIFIED', typed(ev.object));
      else if (now && !before) write('ADDED', typed(ev.object));
      else if (!now && before) write('DELETED', typed(ev.object));
    }
  };

  if (!rvParam || rvParam === '0') {
    // No starting point: synthetic ADDED for the current state, as the watch cache does.
    for (const o of ctx.api.list(t, ns)) if (matches(o)) write('ADDED', o);
  } else {
    const after = Number(rvParam);
    const replay = Number.isFinite(after) ? ctx.api.store.eventsSince(key, after) : undefined;
    if (!replay) {
      const status: Status = {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: `too old resource version: ${rvParam} (${ctx.api.store.oldestResumableRv()})`,
        reason: 'Expired',
        code: 410,
      };
      write('ERROR', status);
      res.end();
      return;
    }
    for (const ev of replay) deliver(ev);
  }

  const unsubscribe = ctx.api.store.subscribe(deliver);
  let bookmarkTimer: NodeJS.Timeout | undefined;
  if (bookmarks) {
    bookmarkTimer = setInterval(() => {
      write('BOOKMARK', { kind: t.kind, apiVersion: apiVersionOf(t), metadata: { resourceVersion: String(ctx.api.store.currentRv()) } });
    }, ctx.bookmarkIntervalMs);
    bookmarkTimer.unref();
  }
  let timeout: NodeJS.Timeout | undefined;
  const close = (): void => {
    unsubscribe();
    if (bookmarkTimer) clearInterval(bookmarkTimer);
    if (timeout) clearTimeout(timeout);
    ctx.closers.delete(close);
    if (!res.writableEnded) res.end();
  };
  if (timeoutSeconds > 0) {
    timeout = setTimeout(close, timeoutSeconds * 1000);
    timeout.unref();
  }
  ctx.closers.add(close);
  req.on('close', close);
  res.on('close', close);
}
