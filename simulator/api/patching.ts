// PATCH bodies: which patch type a Content-Type names (strategic merge only for built-in
// kinds, 415 otherwise), and applying a merge, strategic merge or JSON patch to an object.

import { ApiError, badRequest, unsupportedMediaType } from '../errors.js';
import { jsonPatch, mergePatch, strategicMergePatch } from '../patch.js';
import type { ResourceType } from '../resources.js';
import { isRecord, type KubeObject } from '../types.js';

export type PatchType = 'merge' | 'strategic' | 'json';

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

/** `base` with the patch applied; a 422 when the patch removed metadata. */
export function applyPatch(t: ResourceType, name: string, base: KubeObject, type: PatchType, patchBody: unknown): KubeObject {
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
  return patched as KubeObject;
}
