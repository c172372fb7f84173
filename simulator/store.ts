// In-memory object store with one global, monotonically increasing resourceVersion and an
// event log that watches replay from. Everything is synchronous: the API server and the
// in-process controllers see one consistent state.

import type { KubeObject } from './types.js';
import { clone } from './types.js';

type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface StoreEvent {
  type: WatchEventType;
  /** Store key of the resource type, `${group}/${plural}`. */
  resource: string;
  rv: number;
  object: KubeObject;
  /** The object before a MODIFIED change (watches with selectors need it). */
  oldObject?: KubeObject;
}

type StoreListener = (ev: StoreEvent) => void;

export class Store {
  private rv = 1;
  private readonly objects = new Map<string, Map<string, KubeObject>>();
  private readonly log: StoreEvent[] = [];
  private readonly listeners = new Set<StoreListener>();
  /** Lowest resourceVersion a watch may still resume from; older ones get 410 Gone. */
  private compactedRv = 1;

  constructor(private readonly maxLogEntries = 20_000) {}

  currentRv(): number {
    return this.rv;
  }

  oldestResumableRv(): number {
    return this.compactedRv;
  }

  /** Drop the event log up to now, as etcd compaction does (tests use it to provoke 410). */
  compact(): void {
    this.log.length = 0;
    this.compactedRv = this.rv;
  }

  private static key(namespace: string | undefined, name: string): string {
    return `${namespace ?? ''}/${name}`;
  }

  private bucket(resource: string): Map<string, KubeObject> {
    let b = this.objects.get(resource);
    if (!b) {
      b = new Map();
      this.objects.set(resource, b);
    }
    return b;
  }

  get(resource: string, namespace: string | undefined, name: string): KubeObject | undefined {
    const o = this.objects.get(resource)?.get(Store.key(namespace, name));
    return o ? clone(o) : undefined;
  }

  has(resource: string, namespace: string | undefined, name: string): boolean {
    return this.objects.get(resource)?.has(Store.key(namespace, name)) ?? false;
  }

  /** Copies of the objects (of `namespace`, when given) that `keep` accepts; `keep` sees the stored object and must not change it. */
  list(resource: string, namespace?: string, keep?: (o: KubeObject) => boolean): KubeObject[] {
    const b = this.objects.get(resource);
    if (!b) return [];
    const out: KubeObject[] = [];
    for (const o of b.values()) {
      // Filtering before copying: a namespace of a thousand pods is not cloned to find two.
      if ((namespace === undefined || o.metadata.namespace === namespace) && (!keep || keep(o))) out.push(clone(o));
    }
    out.sort((a, b2) => {
      const ka = Store.key(a.metadata.namespace, a.metadata.name ?? '');
      const kb = Store.key(b2.metadata.namespace, b2.metadata.name ?? '');
      return ka < kb ? -1 : ka > kb ? 1 : 0;
    });
    return out;
  }

  /** Every resource key that holds at least one object. */
  resources(): string[] {
    return [...this.objects.keys()];
  }

  /** Write (create or replace) an object; stamps a new resourceVersion. Returns the stored copy. */
  put(resource: string, obj: KubeObject): KubeObject {
    const name = obj.metadata.name;
    if (!name) throw new Error(`store.put(${resource}): object has no metadata.name`);
    const b = this.bucket(resource);
    const k = Store.key(obj.metadata.namespace, name);
    const previous = b.get(k);
    const stored = clone(obj);
    this.rv += 1;
    stored.metadata.resourceVersion = String(this.rv);
    b.set(k, stored);
    this.emit(previous ? { type: 'MODIFIED', resource, rv: this.rv, object: stored, oldObject: previous } : { type: 'ADDED', resource, rv: this.rv, object: stored });
    return clone(stored);
  }

  remove(resource: string, namespace: string | undefined, name: string): KubeObject | undefined {
    const b = this.objects.get(resource);
    const k = Store.key(namespace, name);
    const existing = b?.get(k);
    if (!b || !existing) return undefined;
    b.delete(k);
    this.rv += 1;
    const gone = clone(existing);
    gone.metadata.resourceVersion = String(this.rv);
    this.emit({ type: 'DELETED', resource, rv: this.rv, object: gone });
    return clone(gone);
  }

  /** Events with rv > after for a resource, or undefined when `after` is older than the log keeps. */
  eventsSince(resource: string, after: number): StoreEvent[] | undefined {
    if (after < this.compactedRv) return undefined;
    return this.log.filter((e) => e.resource === resource && e.rv > after).map((e) => ({ ...e, object: clone(e.object), oldObject: e.oldObject ? clone(e.oldObject) : undefined }));
  }

  subscribe(l: StoreListener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  private emit(ev: StoreEvent): void {
    this.log.push(ev);
    if (this.log.length > this.maxLogEntries) {
      const dropped = this.log.splice(0, this.log.length - this.maxLogEntries);
      const last = dropped[dropped.length - 1];
      if (last) this.compactedRv = last.rv;
    }
    for (const l of [...this.listeners]) {
      try {
        l({ ...ev, object: clone(ev.object), oldObject: ev.oldObject ? clone(ev.oldObject) : undefined });
      } catch (err) {
        // A failing listener must not break the write path; surface it loudly instead.
        console.error(`simulator: store listener failed on ${ev.type} ${ev.resource}:`, err);
      }
    }
  }
}
