// Label and field selectors with the syntax of k8s.io/apimachinery/pkg/labels and /fields.

import { badRequest } from './errors.js';
import type { KubeObject } from './types.js';
import { isRecord } from './types.js';

type Requirement = { key: string; op: 'eq' | 'neq'; values: [string] } | { key: string; op: 'in' | 'notin'; values: string[] } | { key: string; op: 'exists' | 'notexists'; values: [] };

export type LabelSelector = Requirement[];

/** Splits on commas that are not inside parentheses (`a in (x,y),b`). */
function splitTopLevel(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out.map((x) => x.trim()).filter((x) => x.length > 0);
}

export function parseLabelSelector(raw: string | null | undefined): LabelSelector {
  if (!raw) return [];
  const reqs: Requirement[] = [];
  for (const part of splitTopLevel(raw)) {
    let m: RegExpMatchArray | null;
    if ((m = part.match(/^([^\s!=()]+)\s+(in|notin)\s+\(([^)]*)\)$/))) {
      const values = m[3]!
        .split(',')
        .map((v) => v.trim())
        .filter((v) => v.length > 0);
      reqs.push({ key: m[1]!, op: m[2] as 'in' | 'notin', values });
    } else if ((m = part.match(/^([^\s!=()]+)\s*(==|!=|=)\s*([^\s!=()]*)$/))) {
      reqs.push({ key: m[1]!, op: m[2] === '!=' ? 'neq' : 'eq', values: [m[3]!] });
    } else if ((m = part.match(/^!\s*([^\s!=()]+)$/))) {
      reqs.push({ key: m[1]!, op: 'notexists', values: [] });
    } else if ((m = part.match(/^([^\s!=()]+)$/))) {
      reqs.push({ key: m[1]!, op: 'exists', values: [] });
    } else {
      throw badRequest(`unable to parse requirement: invalid label selector "${raw}": found '${part}'`);
    }
  }
  return reqs;
}

export function matchesLabels(sel: LabelSelector, labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  return sel.every((r) => {
    const has = Object.prototype.hasOwnProperty.call(l, r.key);
    const v = l[r.key];
    switch (r.op) {
      case 'eq':
        return has && v === r.values[0];
      case 'neq':
        return !has || v !== r.values[0];
      case 'in':
        return has && r.values.includes(v!);
      case 'notin':
        return !has || !r.values.includes(v!);
      case 'exists':
        return has;
      case 'notexists':
        return !has;
    }
    return false;
  });
}

/** A structured `metav1.LabelSelector` (matchLabels + matchExpressions), as in workload specs. */
export function matchesLabelSelectorObject(selector: unknown, labels: Record<string, string> | undefined): boolean {
  if (!isRecord(selector)) return false;
  const l = labels ?? {};
  const ml = isRecord(selector.matchLabels) ? selector.matchLabels : {};
  for (const [k, v] of Object.entries(ml)) if (l[k] !== v) return false;
  const exprs = Array.isArray(selector.matchExpressions) ? selector.matchExpressions : [];
  for (const e of exprs) {
    if (!isRecord(e) || typeof e.key !== 'string') return false;
    const values = Array.isArray(e.values) ? e.values.map(String) : [];
    const has = Object.prototype.hasOwnProperty.call(l, e.key);
    const v = l[e.key];
    switch (e.operator) {
      case 'In':
        if (!has || !values.includes(v!)) return false;
        break;
      case 'NotIn':
        if (has && values.includes(v!)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}

export interface FieldRequirement {
  path: string;
  op: 'eq' | 'neq';
  value: string;
}

export function parseFieldSelector(raw: string | null | undefined): FieldRequirement[] {
  if (!raw) return [];
  return raw
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p.length > 0)
    .map((p) => {
      const m = p.match(/^([^!=]+?)\s*(==|!=|=)\s*(.*)$/);
      if (!m) throw badRequest(`invalid field selector: '${p}': expected "field=value", "field==value" or "field!=value"`);
      return { path: m[1]!.trim(), op: m[2] === '!=' ? 'neq' : 'eq', value: m[3]!.trim() };
    });
}

function fieldValue(obj: KubeObject, path: string): string {
  let cur: unknown = obj;
  for (const seg of path.split('.')) {
    if (!isRecord(cur)) return '';
    cur = cur[seg];
  }
  if (cur === undefined || cur === null) return '';
  return typeof cur === 'string' ? cur : String(cur);
}

export function matchesFields(reqs: FieldRequirement[], obj: KubeObject): boolean {
  return reqs.every((r) => {
    const v = fieldValue(obj, r.path);
    return r.op === 'eq' ? v === r.value : v !== r.value;
  });
}
