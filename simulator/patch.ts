// The three patch formats of the Kubernetes API: JSON merge patch (RFC 7386), strategic
// merge patch (lists merged by patchMergeKey, `$patch` directives) and JSON patch (RFC 6902).

import { ApiError, badRequest } from './errors.js';
import { clone, isRecord } from './types.js';

/** RFC 7386: objects merge recursively, null deletes, anything else replaces. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isRecord(patch)) return clone(patch);
  const out: Record<string, unknown> = isRecord(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/**
 * patchMergeKey of list fields in the built-in types, keyed by field name. Field names are
 * unique enough across the types the simulator serves (pods, workloads, nodes, events).
 * Lists not named here are replaced, as lists without patchStrategy=merge are in Kubernetes.
 */
const MERGE_KEYS: Record<string, string> = {
  containers: 'name',
  initContainers: 'name',
  ephemeralContainers: 'name',
  env: 'name',
  ports: 'containerPort',
  volumeMounts: 'mountPath',
  volumeDevices: 'devicePath',
  volumes: 'name',
  imagePullSecrets: 'name',
  ownerReferences: 'uid',
  conditions: 'type',
  hostAliases: 'ip',
  topologySpreadConstraints: 'topologyKey',
  resourceClaims: 'name',
  taints: 'key',
  addresses: 'type',
};

/** Primitive lists with patchStrategy=merge (set semantics). */
const MERGED_PRIMITIVE_LISTS = new Set(['finalizers']);

export function strategicMergePatch(target: unknown, patch: unknown): unknown {
  return smpValue(target, patch, undefined);
}

function smpValue(target: unknown, patch: unknown, field: string | undefined): unknown {
  if (Array.isArray(patch)) return smpList(Array.isArray(target) ? target : [], patch, field);
  if (!isRecord(patch)) return clone(patch);
  return smpMap(isRecord(target) ? target : {}, patch);
}

function smpMap(target: Record<string, unknown>, patch: Record<string, unknown>): Record<string, unknown> | undefined {
  const directive = patch.$patch;
  if (directive === 'delete') return undefined;
  if (directive === 'replace') {
    const rest = { ...patch };
    delete rest.$patch;
    return clone(rest);
  }
  const out: Record<string, unknown> = { ...target };
  const retainKeys = Array.isArray(patch.$retainKeys) ? patch.$retainKeys.map(String) : undefined;
  const orders: Record<string, unknown[]> = {};
  for (const [k, v] of Object.entries(patch)) {
    if (k === '$patch' || k === '$retainKeys') continue;
    if (k.startsWith('$setElementOrder/')) {
      if (Array.isArray(v)) orders[k.slice('$setElementOrder/'.length)] = v;
      continue;
    }
    if (k.startsWith('$deleteFromPrimitiveList/')) {
      const f = k.slice('$deleteFromPrimitiveList/'.length);
      const del = Array.isArray(v) ? v : [];
      const cur = out[f];
      if (Array.isArray(cur)) out[f] = cur.filter((x) => !del.some((d) => d === x));
      continue;
    }
    if (v === null) {
      delete out[k];
      continue;
    }
    const merged = smpValue(out[k], v, k);
    if (merged === undefined) delete out[k];
    else out[k] = merged;
  }
  if (retainKeys) {
    for (const k of Object.keys(out)) if (!retainKeys.includes(k) && !(k in patch)) delete out[k];
  }
  for (const [f, order] of Object.entries(orders)) {
    const cur = out[f];
    if (Array.isArray(cur)) out[f] = applyOrder(cur, order, MERGE_KEYS[f]);
  }
  return out;
}

function applyOrder(list: unknown[], order: unknown[], key: string | undefined): unknown[] {
  const idOf = (x: unknown): unknown => (key && isRecord(x) ? x[key] : x);
  const orderIds = order.map(idOf);
  const ordered: unknown[] = [];
  for (const id of orderIds) {
    const item = list.find((x) => idOf(x) === id);
    if (item !== undefined) ordered.push(item);
  }
  for (const x of list) if (!orderIds.includes(idOf(x))) ordered.push(x);
  return ordered;
}

function smpList(target: unknown[], patch: unknown[], field: string | undefined): unknown[] {
  const key = field ? MERGE_KEYS[field] : undefined;
  if (field && MERGED_PRIMITIVE_LISTS.has(field)) {
    const out = [...target];
    for (const p of patch) if (!out.includes(p)) out.push(p);
    return out;
  }
  // `$patch: replace` as a list element replaces the whole list with the other elements.
  if (patch.some((p) => isRecord(p) && p.$patch === 'replace')) {
    return clone(patch.filter((p) => !(isRecord(p) && p.$patch === 'replace')));
  }
  if (!key) return clone(patch.filter((p) => !(isRecord(p) && p.$patch !== undefined)));
  const out: unknown[] = target.map((x) => clone(x));
  for (const p of patch) {
    if (!isRecord(p)) throw badRequest(`strategic merge patch: element of list "${field}" is not an object`);
    const id = p[key];
    if (id === undefined) {
      throw badRequest(`map: ${JSON.stringify(p)} does not contain declared merge key: ${key}`);
    }
    const idx = out.findIndex((x) => isRecord(x) && x[key] === id);
    if (p.$patch === 'delete') {
      if (idx >= 0) out.splice(idx, 1);
      continue;
    }
    if (idx >= 0) {
      const merged = smpMap(out[idx] as Record<string, unknown>, p);
      if (merged === undefined) out.splice(idx, 1);
      else out[idx] = merged;
    } else {
      const fresh = smpMap({}, p);
      if (fresh !== undefined) out.push(fresh);
    }
  }
  return out;
}

// ---- RFC 6902 JSON patch ----

interface JsonPatchOp {
  op: string;
  path: string;
  from?: string;
  value?: unknown;
}

function parsePointer(ptr: string): string[] {
  if (ptr === '') return [];
  if (!ptr.startsWith('/')) throw badRequest(`json patch: invalid JSON pointer "${ptr}"`);
  return ptr
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function getAt(doc: unknown, segs: string[], ptr: string): unknown {
  let cur = doc;
  for (const s of segs) {
    if (Array.isArray(cur)) {
      const i = Number(s);
      if (!/^\d+$/.test(s) || i >= cur.length) throw jsonPatchError(`path "${ptr}" does not exist`);
      cur = cur[i];
    } else if (isRecord(cur)) {
      if (!(s in cur)) throw jsonPatchError(`path "${ptr}" does not exist`);
      cur = cur[s];
    } else throw jsonPatchError(`path "${ptr}" does not exist`);
  }
  return cur;
}

function jsonPatchError(msg: string): ApiError {
  // The real API server answers a JSON patch that cannot apply with 422 Invalid... except for
  // failed `test` ops and missing paths, which it reports as 422 too (via jsonpatch errors).
  return new ApiError(422, 'Invalid', `the server rejected our request due to an error in our request: ${msg}`);
}

function parentAndKey(doc: unknown, ptr: string): { parent: unknown; key: string } {
  const segs = parsePointer(ptr);
  if (segs.length === 0) throw jsonPatchError('cannot operate on the document root');
  const key = segs[segs.length - 1]!;
  const parent = getAt(doc, segs.slice(0, -1), ptr);
  return { parent, key };
}

function addAt(doc: unknown, ptr: string, value: unknown): unknown {
  if (ptr === '') return clone(value);
  const { parent, key } = parentAndKey(doc, ptr);
  if (Array.isArray(parent)) {
    const i = key === '-' ? parent.length : Number(key);
    if (!(key === '-' || /^\d+$/.test(key)) || i > parent.length) throw jsonPatchError(`index out of range in "${ptr}"`);
    parent.splice(i, 0, clone(value));
  } else if (isRecord(parent)) parent[key] = clone(value);
  else throw jsonPatchError(`path "${ptr}" does not exist`);
  return doc;
}

function removeAt(doc: unknown, ptr: string): unknown {
  const { parent, key } = parentAndKey(doc, ptr);
  if (Array.isArray(parent)) {
    const i = Number(key);
    if (!/^\d+$/.test(key) || i >= parent.length) throw jsonPatchError(`path "${ptr}" does not exist`);
    return parent.splice(i, 1)[0];
  }
  if (isRecord(parent)) {
    if (!(key in parent)) throw jsonPatchError(`path "${ptr}" does not exist`);
    const v = parent[key];
    delete parent[key];
    return v;
  }
  throw jsonPatchError(`path "${ptr}" does not exist`);
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  if (isRecord(a) && isRecord(b)) {
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    return ka.length === kb.length && ka.every((k) => deepEqual(a[k], b[k]));
  }
  return false;
}

export function jsonPatch(target: unknown, ops: unknown): unknown {
  if (!Array.isArray(ops)) throw badRequest('json patch: the patch document must be a JSON array of operations');
  let doc = clone(target);
  for (const raw of ops) {
    if (!isRecord(raw) || typeof raw.op !== 'string' || typeof raw.path !== 'string') {
      throw badRequest(`json patch: invalid operation ${JSON.stringify(raw)}`);
    }
    const op = raw as unknown as JsonPatchOp;
    switch (op.op) {
      case 'add':
        doc = addAt(doc, op.path, op.value);
        break;
      case 'remove':
        removeAt(doc, op.path);
        break;
      case 'replace':
        getAt(doc, parsePointer(op.path), op.path);
        if (op.path === '') doc = clone(op.value);
        else {
          removeAt(doc, op.path);
          doc = addAt(doc, op.path, op.value);
        }
        break;
      case 'move': {
        if (op.from === undefined) throw badRequest('json patch: move needs "from"');
        const v = removeAt(doc, op.from);
        doc = addAt(doc, op.path, v);
        break;
      }
      case 'copy': {
        if (op.from === undefined) throw badRequest('json patch: copy needs "from"');
        const v = getAt(doc, parsePointer(op.from), op.from);
        doc = addAt(doc, op.path, v);
        break;
      }
      case 'test': {
        const v = getAt(doc, parsePointer(op.path), op.path);
        if (!deepEqual(v, op.value)) {
          throw jsonPatchError(`testing value ${op.path} failed: test failed`);
        }
        break;
      }
      default:
        throw badRequest(`json patch: unknown operation "${op.op}"`);
    }
  }
  return doc;
}
