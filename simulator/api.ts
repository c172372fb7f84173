// Object semantics of the API server, independent of HTTP: create/update/patch/delete with
// defaulting, validation, resourceVersion conflicts, generation, status subresources,
// graceful pod deletion, finalizers and owner-reference garbage collection.
// The HTTP layer (server.ts) and the in-process controllers both go through this class.

import { randomUUID } from 'node:crypto';
import { ApiError, alreadyExists, badRequest, conflict, invalid, notFound, unsupportedMediaType, type StatusCause } from './errors.js';
import { jsonPatch, mergePatch, strategicMergePatch } from './patch.js';
import { admitKnative } from './knative-admission.js';
import { apiVersionOf, resourceKey, type ResourceRegistry, type ResourceType } from './resources.js';
import { matchesFields, matchesLabels, type FieldRequirement, type LabelSelector } from './selectors.js';
import type { Store } from './store.js';
import { clone, isRecord, nowRfc3339, type KubeObject, type OwnerReference } from './types.js';

type PatchType = 'merge' | 'strategic' | 'json';

export function patchTypeFromContentType(contentType: string | undefined, t: ResourceType): PatchType {
  const ct = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  const accepted = ['application/json-patch+json', 'application/merge-patch+json'];
  if (!t.custom) accepted.push('application/strategic-merge-patch+json');
  accepted.push('application/apply-patch+yaml');
  switch (ct) {
    case 'application/merge-patch+json':
      return 'merge';
    case 'application/json-patch+json':
      return 'json';
    case 'application/strategic-merge-patch+json':
      if (t.custom) throw unsupportedMediaType(accepted);
      return 'strategic';
    default:
      throw unsupportedMediaType(accepted);
  }
}

export interface DeleteOptions {
  propagationPolicy?: 'Background' | 'Foreground' | 'Orphan';
  gracePeriodSeconds?: number;
  preconditions?: { uid?: string; resourceVersion?: string };
  dryRun?: boolean;
}

interface ListOptions {
  labelSelector?: LabelSelector;
  fieldSelector?: FieldRequirement[];
  /** In-process callers (the controllers): any other condition, applied before copying. */
  where?: (o: KubeObject) => boolean;
}

interface ApiServerTiming {
  /** Simulated seconds → real milliseconds for pod termination grace periods. */
  gracePeriodScaleMs: number;
  /** Upper bound on a pod's real termination delay, whatever its grace period. */
  maxGraceMs: number;
}

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

const SUBDOMAIN_MSG =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG =
  "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1035_MSG =
  "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

const RANDOM_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

/** The 5-character suffix the API server appends to generateName. */
export function randomSuffix(n = 5): string {
  let s = '';
  for (let i = 0; i < n; i++) s += RANDOM_ALPHABET[Math.floor(Math.random() * RANDOM_ALPHABET.length)];
  return s;
}

/** Returned objects always carry apiVersion and kind (the server sets them). */
function withTypeMeta(t: ResourceType, o: KubeObject): KubeObject {
  return { apiVersion: apiVersionOf(t), kind: t.kind, ...o, metadata: o.metadata };
}

function deepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export class ObjectApi {
  /** Pending timers for graceful pod deletion, keyed by uid. */
  private readonly graceTimers = new Map<string, NodeJS.Timeout>();
  private gcScheduled = false;
  private stopped = false;

  constructor(
    readonly store: Store,
    readonly registry: ResourceRegistry,
    private readonly timing: ApiServerTiming,
  ) {}

  stop(): void {
    this.stopped = true;
    for (const t of this.graceTimers.values()) clearTimeout(t);
    this.graceTimers.clear();
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
    const obj = this.decodeBody(t, input);
    const meta = obj.metadata;
    if (t.namespaced) {
      if (meta.namespace && namespace && meta.namespace !== namespace) {
        throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
      }
      meta.namespace = namespace ?? meta.namespace ?? 'default';
      this.requireNamespace(meta.namespace, t);
    } else {
      delete meta.namespace;
    }
    if (!meta.name && meta.generateName) {
      for (let i = 0; i < 10 && !meta.name; i++) {
        const candidate = `${meta.generateName}${randomSuffix()}`;
        if (!this.store.has(resourceKey(t), meta.namespace, candidate)) meta.name = candidate;
      }
    }
    this.validateMeta(t, obj, true);
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
    const obj = this.decodeBody(t, input);
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
    let patched: unknown;
    switch (type) {
      case 'merge':
        if (!isRecord(patchBody)) throw badRequest('merge patch: the patch must be a JSON object');
        patched = mergePatch(base, patchBody);
        break;
      case 'strategic':
        if (!isRecord(patchBody)) throw badRequest('strategic merge patch: the patch must be a JSON object');
        patched = strategicMergePatch(base, patchBody);
        break;
      case 'json':
        patched = jsonPatch(base, patchBody);
        break;
    }
    if (!isRecord(patched) || !isRecord(patched.metadata)) {
      throw new ApiError(422, 'Invalid', `${t.kind} "${name}" is invalid: the patch removed metadata`);
    }
    const obj = patched as KubeObject;
    // A resourceVersion inside the patch is a precondition, as for updates.
    const rv = obj.metadata.resourceVersion;
    if (rv !== undefined && rv !== current.metadata.resourceVersion) throw conflict(t.plural, t.group, name);
    if (obj.metadata.name !== name) {
      throw new ApiError(422, 'Invalid', `${t.kind} "${name}" is invalid: metadata.name: Invalid value: "${String(obj.metadata.name)}": field is immutable`);
    }
    return this.commitUpdate(t, current, obj, opts);
  }

  private commitUpdate(t: ResourceType, current: KubeObject, incoming: KubeObject, opts: { subresource?: string; dryRun?: boolean }): KubeObject {
    const hasStatus = t.subresources.includes('status');
    let next: KubeObject;
    if (opts.subresource === 'status') {
      // Status writes change only status (and never metadata beyond what the server owns).
      next = clone(current);
      if (incoming.status !== undefined) next.status = clone(incoming.status);
      else delete next.status;
    } else {
      next = clone(incoming);
      if (hasStatus) {
        if (current.status !== undefined) next.status = clone(current.status);
        else delete next.status;
      }
    }
    const m = next.metadata;
    const c = current.metadata;
    m.name = c.name;
    if (t.namespaced) m.namespace = c.namespace;
    else delete m.namespace;
    m.uid = c.uid;
    m.creationTimestamp = c.creationTimestamp;
    if (c.deletionTimestamp) {
      m.deletionTimestamp = c.deletionTimestamp;
      if (c.deletionGracePeriodSeconds !== undefined) m.deletionGracePeriodSeconds = c.deletionGracePeriodSeconds;
    } else {
      delete m.deletionTimestamp;
      delete m.deletionGracePeriodSeconds;
    }
    if (c.generation !== undefined) {
      m.generation = !deepEqual(current.spec, next.spec) ? c.generation + 1 : c.generation;
    }
    applyDefaults(t, next);
    if (t.kind === 'Pod' && opts.subresource !== 'status') validatePodUpdate(current, next);
    this.validateMeta(t, next, false);
    validateObject(t, next);
    admitKnative(t, next);
    if (opts.dryRun) return withTypeMeta(t, next);
    // No-op writes keep the resourceVersion, as the real server does.
    const strip = (o: KubeObject): KubeObject => {
      const x = clone(o);
      delete x.metadata.resourceVersion;
      delete x.apiVersion;
      delete x.kind;
      return x;
    };
    if (deepEqual(strip(current), strip(next))) return withTypeMeta(t, current);
    // Removing the last finalizer of an object being deleted completes the deletion.
    if (m.deletionTimestamp && (m.finalizers ?? []).length === 0 && t.kind !== 'Pod') {
      const gone = this.store.remove(resourceKey(t), m.namespace, m.name!);
      this.scheduleGc();
      return withTypeMeta(t, gone ?? next);
    }
    const stored = this.store.put(resourceKey(t), withTypeMeta(t, next));
    if (stored.metadata.deletionTimestamp && t.kind === 'Pod') this.maybeFinishPodDeletion(t, stored);
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
    if (policy === 'Orphan') this.orphanDependents(current);

    const finalizers = [...(current.metadata.finalizers ?? [])];
    if (policy === 'Foreground' && !finalizers.includes('foregroundDeletion')) finalizers.push('foregroundDeletion');

    if (t.kind === 'Pod') return this.deletePod(t, current, opts, finalizers);
    if (t.kind === 'Namespace') return this.deleteNamespace(t, current);

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

  private deletePod(t: ResourceType, current: KubeObject, opts: DeleteOptions, finalizers: string[]): { object: KubeObject; removed: boolean } {
    const spec = current.spec ?? {};
    const status = current.status ?? {};
    const defaultGrace = typeof spec.terminationGracePeriodSeconds === 'number' ? spec.terminationGracePeriodSeconds : 30;
    let grace = opts.gracePeriodSeconds ?? defaultGrace;
    // Unscheduled and finished pods have nothing to stop: the real server deletes them at once.
    if (!spec.nodeName || status.phase === 'Succeeded' || status.phase === 'Failed') grace = 0;
    if (current.metadata.deletionTimestamp && current.metadata.deletionGracePeriodSeconds !== undefined) {
      grace = Math.min(grace, current.metadata.deletionGracePeriodSeconds);
    }
    if (grace === 0 && finalizers.length === 0) {
      const gone = this.store.remove(resourceKey(t), current.metadata.namespace, current.metadata.name!)!;
      this.clearGraceTimer(current.metadata.uid);
      this.scheduleGc();
      return { object: withTypeMeta(t, gone), removed: true };
    }
    const next = clone(current);
    next.metadata.deletionTimestamp = nowRfc3339(new Date(Date.now() + grace * 1000));
    next.metadata.deletionGracePeriodSeconds = grace;
    if (finalizers.length > 0) next.metadata.finalizers = finalizers;
    const stored = this.store.put(resourceKey(t), next);
    this.armGraceTimer(t, stored, grace);
    this.scheduleGc();
    return { object: withTypeMeta(t, stored), removed: false };
  }

  private armGraceTimer(t: ResourceType, pod: KubeObject, graceSeconds: number): void {
    const uid = pod.metadata.uid!;
    this.clearGraceTimer(uid);
    const ms = Math.min(this.timing.maxGraceMs, graceSeconds * this.timing.gracePeriodScaleMs);
    const timer = setTimeout(() => {
      this.graceTimers.delete(uid);
      if (this.stopped) return;
      this.finishPodDeletion(t, pod.metadata.namespace!, pod.metadata.name!, uid);
    }, ms);
    timer.unref();
    this.graceTimers.set(uid, timer);
  }

  private clearGraceTimer(uid: string | undefined): void {
    if (!uid) return;
    const timer = this.graceTimers.get(uid);
    if (timer) clearTimeout(timer);
    this.graceTimers.delete(uid);
  }

  /** The kubelet confirmed termination (or the grace period ran out): remove the pod. */
  finishPodDeletion(t: ResourceType, namespace: string, name: string, uid: string): void {
    const cur = this.store.get(resourceKey(t), namespace, name);
    if (!cur || cur.metadata.uid !== uid || !cur.metadata.deletionTimestamp) return;
    if ((cur.metadata.finalizers ?? []).filter((f) => f !== 'foregroundDeletion').length > 0) return;
    this.store.remove(resourceKey(t), namespace, name);
    this.clearGraceTimer(uid);
    this.scheduleGc();
  }

  private maybeFinishPodDeletion(t: ResourceType, pod: KubeObject): void {
    if ((pod.metadata.finalizers ?? []).length === 0 && !this.graceTimers.has(pod.metadata.uid!)) {
      this.finishPodDeletion(t, pod.metadata.namespace!, pod.metadata.name!, pod.metadata.uid!);
    }
  }

  private deleteNamespace(t: ResourceType, current: KubeObject): { object: KubeObject; removed: boolean } {
    const name = current.metadata.name!;
    if (['default', 'kube-system', 'kube-public', 'kube-node-lease'].includes(name)) {
      throw new ApiError(403, 'Forbidden', `namespaces "${name}" is forbidden: this namespace may not be deleted`, {
        name,
        kind: 'namespaces',
      });
    }
    const next = clone(current);
    next.metadata.deletionTimestamp = nowRfc3339();
    next.status = { ...(next.status ?? {}), phase: 'Terminating' };
    const stored = this.store.put(resourceKey(t), next);
    // The namespace controller empties it, then removes it.
    setImmediate(() => {
      if (this.stopped) return;
      for (const rt of this.registry.all()) {
        if (!rt.namespaced) continue;
        for (const o of this.store.list(resourceKey(rt), name)) this.store.remove(resourceKey(rt), name, o.metadata.name!);
      }
      this.store.remove(resourceKey(t), undefined, name);
      this.scheduleGc();
    });
    return { object: withTypeMeta(t, stored), removed: false };
  }

  // ---------- garbage collection ----------

  scheduleGc(): void {
    if (this.gcScheduled || this.stopped) return;
    this.gcScheduled = true;
    setImmediate(() => {
      this.gcScheduled = false;
      if (!this.stopped) this.collectGarbage();
    });
  }

  private ownerAlive(ns: string | undefined, ref: OwnerReference): boolean {
    const rt = this.registry.byKind(ref.apiVersion, ref.kind);
    if (!rt) return false;
    const o = this.store.get(resourceKey(rt), rt.namespaced ? ns : undefined, ref.name);
    return !!o && o.metadata.uid === ref.uid;
  }

  private dependentsOf(owner: KubeObject): { t: ResourceType; o: KubeObject }[] {
    const out: { t: ResourceType; o: KubeObject }[] = [];
    for (const rt of this.registry.all()) {
      for (const o of this.store.list(resourceKey(rt))) {
        if ((o.metadata.ownerReferences ?? []).some((r) => r.uid === owner.metadata.uid)) out.push({ t: rt, o });
      }
    }
    return out;
  }

  private orphanDependents(owner: KubeObject): void {
    for (const { t, o } of this.dependentsOf(owner)) {
      const next = clone(o);
      next.metadata.ownerReferences = (o.metadata.ownerReferences ?? []).filter((r) => r.uid !== owner.metadata.uid);
      if (next.metadata.ownerReferences.length === 0) delete next.metadata.ownerReferences;
      this.store.put(resourceKey(t), next);
    }
  }

  /** One pass of the garbage collector (background propagation, plus foreground finalizers). */
  collectGarbage(): void {
    for (const rt of this.registry.all()) {
      for (const o of this.store.list(resourceKey(rt))) {
        const refs = o.metadata.ownerReferences ?? [];
        if (refs.length > 0 && !o.metadata.deletionTimestamp && refs.every((r) => !this.ownerAlive(o.metadata.namespace, r))) {
          try {
            this.delete(rt, o.metadata.namespace, o.metadata.name!, { propagationPolicy: 'Background' });
          } catch (err) {
            if (!(err instanceof ApiError && err.code === 404)) throw err;
          }
        }
        // Foreground deletion: the owner goes once its dependents are gone.
        if (o.metadata.deletionTimestamp && (o.metadata.finalizers ?? []).includes('foregroundDeletion')) {
          const deps = this.dependentsOf(o);
          for (const d of deps) {
            if (!d.o.metadata.deletionTimestamp) {
              this.delete(d.t, d.o.metadata.namespace, d.o.metadata.name!, { propagationPolicy: 'Foreground' });
            }
          }
          if (this.dependentsOf(o).length === 0) {
            const next = clone(o);
            next.metadata.finalizers = (o.metadata.finalizers ?? []).filter((f) => f !== 'foregroundDeletion');
            if (next.metadata.finalizers.length === 0) {
              this.store.remove(resourceKey(rt), o.metadata.namespace, o.metadata.name!);
              this.scheduleGc();
            } else this.store.put(resourceKey(rt), next);
          }
        }
      }
    }
  }

  // ---------- helpers ----------

  private decodeBody(t: ResourceType, input: unknown): KubeObject {
    if (!isRecord(input)) throw badRequest(`the body of the request must be a JSON object for ${t.kind}`);
    const obj = clone(input) as KubeObject;
    if (!isRecord(obj.metadata)) obj.metadata = {};
    const expected = apiVersionOf(t);
    if (obj.kind !== undefined && obj.kind !== t.kind) {
      throw badRequest(`the API version in the data (${String(obj.apiVersion)}) does not match the expected API version (${expected})`);
    }
    if (obj.apiVersion !== undefined && obj.apiVersion !== expected) {
      throw badRequest(`the API version in the data (${String(obj.apiVersion)}) does not match the expected API version (${expected})`);
    }
    return obj;
  }

  private requireNamespace(ns: string, t: ResourceType): void {
    const nsType = this.registry.find('', 'v1', 'namespaces')!;
    const nsObj = this.store.get(resourceKey(nsType), undefined, ns);
    if (!nsObj) throw notFound('namespaces', '', ns);
    if (nsObj.metadata.deletionTimestamp) {
      throw new ApiError(403, 'Forbidden', `${t.plural} is forbidden: unable to create new content in namespace ${ns} because it is being terminated`, { kind: t.plural });
    }
  }

  private validateMeta(t: ResourceType, obj: KubeObject, creating: boolean): void {
    const name = obj.metadata.name;
    const causes: StatusCause[] = [];
    if (!name) {
      causes.push({ reason: 'FieldValueRequired', message: 'Required value: name or generateName is required', field: 'metadata.name' });
    } else {
      let ok = DNS1123_SUBDOMAIN.test(name) && name.length <= 253;
      let msg = SUBDOMAIN_MSG;
      if (t.kind === 'Namespace' || t.kind === 'StatefulSet') {
        ok = DNS1123_LABEL.test(name) && name.length <= 63;
        msg = LABEL_MSG;
      } else if (t.kind === 'Service') {
        ok = DNS1035_LABEL.test(name) && name.length <= 63;
        msg = DNS1035_MSG;
      }
      if (!ok) causes.push({ reason: 'FieldValueInvalid', message: `Invalid value: "${name}": ${msg}`, field: 'metadata.name' });
    }
    for (const [k, v] of Object.entries(obj.metadata.labels ?? {})) {
      if (typeof v !== 'string' || v.length > 63 || !/^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/.test(v)) {
        causes.push({
          reason: 'FieldValueInvalid',
          message: `Invalid value: "${String(v)}": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')`,
          field: `metadata.labels`,
        });
        break;
      }
      if (!/^([a-z0-9.-]+\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(k)) {
        causes.push({ reason: 'FieldValueInvalid', message: `Invalid value: "${k}": name part must consist of alphanumeric characters, '-', '_' or '.'`, field: 'metadata.labels' });
        break;
      }
    }
    if (causes.length > 0) throw invalid(t.kind, t.group, name ?? '', causes);
    void creating;
  }
}

// ---------- defaults ----------

function podSpecDefaults(spec: Record<string, unknown>): void {
  spec.restartPolicy ??= 'Always';
  spec.terminationGracePeriodSeconds ??= 30;
  spec.dnsPolicy ??= 'ClusterFirst';
  spec.schedulerName ??= 'default-scheduler';
  spec.securityContext ??= {};
  spec.enableServiceLinks ??= true;
  spec.preemptionPolicy ??= 'PreemptLowerPriority';
  spec.priority ??= 0;
  if (spec.serviceAccountName === undefined && spec.serviceAccount === undefined) spec.serviceAccountName = 'default';
  for (const field of ['containers', 'initContainers']) {
    const list = spec[field];
    if (!Array.isArray(list)) continue;
    for (const c of list) {
      if (!isRecord(c)) continue;
      c.terminationMessagePath ??= '/dev/termination-log';
      c.terminationMessagePolicy ??= 'File';
      c.resources ??= {};
      if (c.imagePullPolicy === undefined && typeof c.image === 'string') {
        const lastSeg = c.image.split('/').pop() ?? '';
        c.imagePullPolicy = c.image.includes('@') || (lastSeg.includes(':') && !lastSeg.endsWith(':latest')) ? 'IfNotPresent' : 'Always';
      }
    }
  }
}

function templateDefaults(spec: Record<string, unknown>): void {
  const tpl = spec.template;
  if (isRecord(tpl)) {
    if (!isRecord(tpl.metadata)) tpl.metadata = {};
    if (isRecord(tpl.spec)) podSpecDefaults(tpl.spec);
  }
}

function applyDefaults(t: ResourceType, obj: KubeObject): void {
  if (t.custom) return;
  const spec = obj.spec;
  switch (t.kind) {
    case 'Pod':
      if (isRecord(spec)) podSpecDefaults(spec);
      obj.status ??= { phase: 'Pending', qosClass: 'BestEffort' };
      break;
    case 'Deployment':
      if (isRecord(spec)) {
        spec.replicas ??= 1;
        spec.revisionHistoryLimit ??= 10;
        spec.progressDeadlineSeconds ??= 600;
        spec.strategy ??= { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' } };
        templateDefaults(spec);
      }
      obj.status ??= {};
      break;
    case 'ReplicaSet':
      if (isRecord(spec)) {
        spec.replicas ??= 1;
        templateDefaults(spec);
      }
      obj.status ??= { replicas: 0 };
      break;
    case 'StatefulSet':
      if (isRecord(spec)) {
        spec.replicas ??= 1;
        spec.podManagementPolicy ??= 'OrderedReady';
        spec.revisionHistoryLimit ??= 10;
        spec.updateStrategy ??= { type: 'RollingUpdate', rollingUpdate: { partition: 0 } };
        spec.persistentVolumeClaimRetentionPolicy ??= { whenDeleted: 'Retain', whenScaled: 'Retain' };
        templateDefaults(spec);
      }
      obj.status ??= { replicas: 0, availableReplicas: 0 };
      break;
    case 'Namespace':
      obj.spec ??= { finalizers: ['kubernetes'] };
      obj.status ??= { phase: 'Active' };
      obj.metadata.labels = { ...(obj.metadata.labels ?? {}), 'kubernetes.io/metadata.name': obj.metadata.name ?? '' };
      break;
    default:
      break;
  }
}

// ---------- validation ----------

function validateContainers(kind: string, group: string, name: string, podSpec: unknown, prefix: string): void {
  const causes: StatusCause[] = [];
  if (!isRecord(podSpec)) {
    throw invalid(kind, group, name, [{ reason: 'FieldValueRequired', message: 'Required value', field: prefix }]);
  }
  const containers = podSpec.containers;
  if (!Array.isArray(containers) || containers.length === 0) {
    causes.push({ reason: 'FieldValueRequired', message: 'Required value', field: `${prefix}.containers` });
  } else {
    const seen = new Set<string>();
    containers.forEach((c, i) => {
      const f = `${prefix}.containers[${i}]`;
      if (!isRecord(c) || typeof c.name !== 'string' || !c.name) {
        causes.push({ reason: 'FieldValueRequired', message: 'Required value', field: `${f}.name` });
        return;
      }
      if (!DNS1123_LABEL.test(c.name)) {
        causes.push({ reason: 'FieldValueInvalid', message: `Invalid value: "${c.name}": ${LABEL_MSG}`, field: `${f}.name` });
      }
      if (seen.has(c.name)) causes.push({ reason: 'FieldValueDuplicate', message: `Duplicate value: "${c.name}"`, field: `${f}.name` });
      seen.add(c.name);
      if (typeof c.image !== 'string' || !c.image.trim()) {
        causes.push({ reason: 'FieldValueRequired', message: 'Required value', field: `${f}.image` });
      }
    });
  }
  if (causes.length > 0) throw invalid(kind, group, name, causes);
}

function validateObject(t: ResourceType, obj: KubeObject): void {
  const name = obj.metadata.name ?? '';
  if (t.kind === 'Pod') validateContainers(t.kind, t.group, name, obj.spec, 'spec');
  if (t.kind === 'Deployment' || t.kind === 'ReplicaSet' || t.kind === 'StatefulSet') {
    const spec = obj.spec;
    if (!isRecord(spec)) throw invalid(t.kind, t.group, name, [{ reason: 'FieldValueRequired', message: 'Required value', field: 'spec' }]);
    const selector = spec.selector;
    if (!isRecord(selector) || (!isRecord(selector.matchLabels) && !Array.isArray(selector.matchExpressions))) {
      throw invalid(t.kind, t.group, name, [{ reason: 'FieldValueRequired', message: 'Required value', field: 'spec.selector' }]);
    }
    const tpl = isRecord(spec.template) ? spec.template : {};
    const tplMeta = isRecord(tpl.metadata) ? tpl.metadata : {};
    const labels = (isRecord(tplMeta.labels) ? tplMeta.labels : {}) as Record<string, string>;
    const ml = (isRecord(selector.matchLabels) ? selector.matchLabels : {}) as Record<string, string>;
    if (Object.entries(ml).some(([k, v]) => labels[k] !== v)) {
      throw invalid(t.kind, t.group, name, [
        {
          reason: 'FieldValueInvalid',
          message: `Invalid value: ${JSON.stringify(labels)}: \`selector\` does not match template \`labels\``,
          field: 'spec.template.metadata.labels',
        },
      ]);
    }
    if (typeof spec.replicas === 'number' && spec.replicas < 0) {
      throw invalid(t.kind, t.group, name, [{ reason: 'FieldValueInvalid', message: `Invalid value: ${spec.replicas}: must be greater than or equal to 0`, field: 'spec.replicas' }]);
    }
    validateContainers(t.kind, t.group, name, tpl.spec, 'spec.template.spec');
  }
}

/** Pod spec is immutable except for container images and a few scheduling fields. */
function validatePodUpdate(current: KubeObject, next: KubeObject): void {
  const norm = (spec: unknown): unknown => {
    if (!isRecord(spec)) return spec;
    const s = clone(spec);
    for (const f of ['containers', 'initContainers']) {
      const list = s[f];
      if (Array.isArray(list)) for (const c of list) if (isRecord(c)) delete c.image;
    }
    delete s.activeDeadlineSeconds;
    delete s.tolerations;
    delete s.terminationGracePeriodSeconds;
    // The scheduler binds once: setting nodeName on an unbound pod is allowed.
    if (isRecord(current.spec) && !current.spec.nodeName) delete s.nodeName;
    return s;
  };
  if (!deepEqual(norm(current.spec), norm(next.spec))) {
    throw invalid('Pod', '', current.metadata.name ?? '', [
      {
        reason: 'FieldValueForbidden',
        message:
          'Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)',
        field: 'spec',
      },
    ]);
  }
}
