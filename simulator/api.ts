// Object semantics of the API server, independent of HTTP: create/update/patch/delete with
// defaulting, validation, resourceVersion conflicts, generation, status subresources,
// graceful pod deletion, finalizers and owner-reference garbage collection.
// The HTTP layer (server.ts) and the in-process controllers both go through this class.
//
// The parts, under api/:
//   api/object-meta.ts        decoding a body, apiVersion/kind on what is returned, generateName's suffix
//   api/defaults.ts           defaulting per kind
//   api/validation.ts         names, labels, containers, selectors, pod spec immutability
//   api/patching.ts           patch types from Content-Type, applying a patch
//   api/update-merge.ts       status subresource vs main resource, server-owned metadata, generation
//   api/namespaces.ts         creating into a namespace, deleting one
//   api/pod-deletion.ts       graceful pod deletion and its timers
//   api/garbage-collector.ts  owner references: background, foreground, orphan
//   api/context.ts            what those parts share with ObjectApi

import { randomUUID } from 'node:crypto';
import { alreadyExists, ApiError, badRequest, conflict, notFound } from './errors.js';
import { admitKnative } from './knative-admission.js';
import { resourceKey, type ResourceRegistry, type ResourceType } from './resources.js';
import { matchesFields, matchesLabels, type FieldRequirement, type LabelSelector } from './selectors.js';
import type { Store } from './store.js';
import { clone, nowRfc3339, type KubeObject } from './types.js';
import type { ApiContext, DeleteOptions } from './api/context.js';
import { applyDefaults } from './api/defaults.js';
import { GarbageCollector } from './api/garbage-collector.js';
import { deleteNamespace, requireNamespace } from './api/namespaces.js';
import { decodeBody, randomSuffix, withTypeMeta } from './api/object-meta.js';
import { applyPatch, type PatchType } from './api/patching.js';
import { PodDeletion, type ApiServerTiming } from './api/pod-deletion.js';
import { mergeUpdate, sameExceptResourceVersion } from './api/update-merge.js';
import { validateMeta, validateObject, validatePodUpdate } from './api/validation.js';

export type { DeleteOptions } from './api/context.js';
export { randomSuffix } from './api/object-meta.js';
export { patchTypeFromContentType } from './api/patching.js';

interface ListOptions {
  labelSelector?: LabelSelector;
  fieldSelector?: FieldRequirement[];
  /** In-process callers (the controllers): any other condition, applied before copying. */
  where?: (o: KubeObject) => boolean;
}

export class ObjectApi {
  private stopped = false;
  private readonly gc: GarbageCollector;
  private readonly pods: PodDeletion;

  constructor(
    readonly store: Store,
    readonly registry: ResourceRegistry,
    timing: ApiServerTiming,
  ) {
    this.gc = new GarbageCollector({ store, registry, isStopped: () => this.stopped }, (t, ns, name, opts) => this.delete(t, ns, name, opts));
    this.pods = new PodDeletion(this.context(), timing);
  }

  /** What the parts under api/ see of this server. */
  private context(): ApiContext {
    return { store: this.store, registry: this.registry, isStopped: () => this.stopped, scheduleGc: () => this.scheduleGc() };
  }

  stop(): void {
    this.stopped = true;
    this.pods.stop();
  }

  // ---------- reads ----------

  get(t: ResourceType, namespace: string | undefined, name: string): KubeObject {
    const o = this.store.get(resourceKey(t), t.namespaced ? namespace : undefined, name);
    if (!o) throw notFound(t.plural, t.group, name);
    return withTypeMeta(t, o);
  }

  tryGet(t: ResourceType, namespace: string | undefined, name: string): KubeObject | undefined {
    const o = this.store.get(resourceKey(t), t.namespaced ? namespace : undefined, name);
    return o ? withTypeMeta(t, o) : undefined;
  }

  list(t: ResourceType, namespace: string | undefined, opts: ListOptions = {}): KubeObject[] {
    const keep = (o: KubeObject) => matchesLabels(opts.labelSelector ?? [], o.metadata.labels) && matchesFields(opts.fieldSelector ?? [], withTypeMeta(t, o)) && (!opts.where || opts.where(o));
    return this.store.list(resourceKey(t), t.namespaced ? namespace : undefined, keep).map((o) => withTypeMeta(t, o));
  }

  // ---------- create ----------

  create(t: ResourceType, namespace: string | undefined, input: unknown, opts: { dryRun?: boolean } = {}): KubeObject {
    const obj = decodeBody(t, input);
    const meta = obj.metadata;
    if (t.namespaced) {
      if (meta.namespace && namespace && meta.namespace !== namespace) {
        throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
      }
      meta.namespace = namespace ?? meta.namespace ?? 'default';
      requireNamespace(this.context(), meta.namespace, t);
    } else {
      delete meta.namespace;
    }
    if (!meta.name && meta.generateName) {
      for (let i = 0; i < 10 && !meta.name; i++) {
        const candidate = `${meta.generateName}${randomSuffix()}`;
        if (!this.store.has(resourceKey(t), meta.namespace, candidate)) meta.name = candidate;
      }
    }
    validateMeta(t, obj, true);
    if (this.store.has(resourceKey(t), meta.namespace, meta.name!)) throw alreadyExists(t.plural, t.group, meta.name!);
    meta.uid = randomUUID();
    meta.creationTimestamp = nowRfc3339();
    delete meta.resourceVersion;
    delete meta.deletionTimestamp;
    delete meta.deletionGracePeriodSeconds;
    if (t.kind !== 'Pod' && obj.spec !== undefined) meta.generation = 1;
    applyDefaults(t, obj);
    validateObject(t, obj);
    admitKnative(t, obj);
    if (opts.dryRun) return withTypeMeta(t, obj);
    const stored = this.store.put(resourceKey(t), withTypeMeta(t, obj));
    return withTypeMeta(t, stored);
  }

  // ---------- update ----------

  /**
   * PUT semantics. `subresource` is undefined for the main resource or `status`.
   * A body carrying a resourceVersion different from the stored one is a 409 Conflict.
   */
  update(t: ResourceType, namespace: string | undefined, name: string, input: unknown, opts: { subresource?: string; dryRun?: boolean } = {}): KubeObject {
    const obj = decodeBody(t, input);
    const ns = t.namespaced ? namespace : undefined;
    if (obj.metadata.name && obj.metadata.name !== name) {
      throw badRequest(`the name of the object (${obj.metadata.name}) does not match the name on the URL (${name})`);
    }
    if (t.namespaced && obj.metadata.namespace && ns && obj.metadata.namespace !== ns) {
      throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
    }
    const current = this.store.get(resourceKey(t), ns, name);
    if (!current) throw notFound(t.plural, t.group, name);
    const rv = obj.metadata.resourceVersion;
    if (rv !== undefined && rv !== '' && rv !== current.metadata.resourceVersion) throw conflict(t.plural, t.group, name);
    return this.commitUpdate(t, current, obj, opts);
  }

  patch(t: ResourceType, namespace: string | undefined, name: string, type: PatchType, patchBody: unknown, opts: { subresource?: string; dryRun?: boolean } = {}): KubeObject {
    const ns = t.namespaced ? namespace : undefined;
    const current = this.store.get(resourceKey(t), ns, name);
    if (!current) throw notFound(t.plural, t.group, name);
    const base = withTypeMeta(t, current);
    const obj = applyPatch(t, name, base, type, patchBody);
    // A resourceVersion inside the patch is a precondition, as for updates.
    const rv = obj.metadata.resourceVersion;
    if (rv !== undefined && rv !== current.metadata.resourceVersion) throw conflict(t.plural, t.group, name);
    if (obj.metadata.name !== name) {
      throw new ApiError(422, 'Invalid', `${t.kind} "${name}" is invalid: metadata.name: Invalid value: "${String(obj.metadata.name)}": field is immutable`);
    }
    return this.commitUpdate(t, current, obj, opts);
  }

  private commitUpdate(t: ResourceType, current: KubeObject, incoming: KubeObject, opts: { subresource?: string; dryRun?: boolean }): KubeObject {
    const next = mergeUpdate(t, current, incoming, opts.subresource);
    const m = next.metadata;
    applyDefaults(t, next);
    if (t.kind === 'Pod' && opts.subresource !== 'status') validatePodUpdate(current, next);
    validateMeta(t, next, false);
    validateObject(t, next);
    admitKnative(t, next);
    if (opts.dryRun) return withTypeMeta(t, next);
    // No-op writes keep the resourceVersion, as the real server does.
    if (sameExceptResourceVersion(current, next)) return withTypeMeta(t, current);
    // Removing the last finalizer of an object being deleted completes the deletion.
    if (m.deletionTimestamp && (m.finalizers ?? []).length === 0 && t.kind !== 'Pod') {
      const gone = this.store.remove(resourceKey(t), m.namespace, m.name!);
      this.scheduleGc();
      return withTypeMeta(t, gone ?? next);
    }
    const stored = this.store.put(resourceKey(t), withTypeMeta(t, next));
    if (stored.metadata.deletionTimestamp && t.kind === 'Pod') this.pods.maybeFinish(t, stored);
    return withTypeMeta(t, stored);
  }

  /**
   * Read-modify-write for in-process controllers: applies `fn` to the latest copy and writes
   * through the normal update path (status or main). Returns undefined when the object is gone.
   */
  mutate(t: ResourceType, namespace: string | undefined, name: string, fn: (o: KubeObject) => void, subresource?: 'status'): KubeObject | undefined {
    const cur = this.tryGet(t, namespace, name);
    if (!cur) return undefined;
    const next = clone(cur);
    fn(next);
    return this.update(t, namespace, name, next, { subresource });
  }

  // ---------- delete ----------

  /** Returns the object as it stands after the call, and whether it is gone already. */
  delete(t: ResourceType, namespace: string | undefined, name: string, opts: DeleteOptions = {}): { object: KubeObject; removed: boolean } {
    const ns = t.namespaced ? namespace : undefined;
    const current = this.store.get(resourceKey(t), ns, name);
    if (!current) throw notFound(t.plural, t.group, name);
    const pre = opts.preconditions;
    if (pre?.uid && pre.uid !== current.metadata.uid) {
      throw new ApiError(
        409,
        'Conflict',
        `Operation cannot be fulfilled on ${t.group ? `${t.plural}.${t.group}` : t.plural} "${name}": Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${current.metadata.uid}`,
        { name, group: t.group || undefined, kind: t.plural },
      );
    }
    if (pre?.resourceVersion && pre.resourceVersion !== current.metadata.resourceVersion) {
      throw conflict(t.plural, t.group, name);
    }
    if (opts.dryRun) return { object: withTypeMeta(t, current), removed: false };
    const policy = opts.propagationPolicy ?? 'Background';
    if (policy === 'Orphan') this.gc.orphanDependents(current);

    const finalizers = [...(current.metadata.finalizers ?? [])];
    if (policy === 'Foreground' && !finalizers.includes('foregroundDeletion')) finalizers.push('foregroundDeletion');

    if (t.kind === 'Pod') return this.pods.delete(t, current, opts, finalizers);
    if (t.kind === 'Namespace') return deleteNamespace(this.context(), t, current);

    if (finalizers.length > 0) {
      const next = clone(current);
      next.metadata.finalizers = finalizers;
      next.metadata.deletionTimestamp ??= nowRfc3339();
      next.metadata.deletionGracePeriodSeconds ??= 0;
      const stored = this.store.put(resourceKey(t), next);
      this.scheduleGc();
      return { object: withTypeMeta(t, stored), removed: false };
    }
    const gone = this.store.remove(resourceKey(t), ns, name)!;
    this.scheduleGc();
    return { object: withTypeMeta(t, gone), removed: true };
  }

  /** The kubelet confirmed termination (or the grace period ran out): remove the pod. */
  finishPodDeletion(t: ResourceType, namespace: string, name: string, uid: string): void {
    this.pods.finish(t, namespace, name, uid);
  }

  // ---------- garbage collection ----------

  scheduleGc(): void {
    this.gc.schedule();
  }

  /** One pass of the garbage collector (background propagation, plus foreground finalizers). */
  collectGarbage(): void {
    this.gc.collect();
  }
}
