// Validation per kind: object names (RFC 1123 / RFC 1035 by kind) and labels, containers of
// pods and pod templates, workload selectors against their template labels, replicas, and
// the immutability of a pod's spec on update. Each failure is a 422 Invalid with its causes.

import { invalid, type StatusCause } from '../errors.js';
import type { ResourceType } from '../resources.js';
import { clone, isRecord, type KubeObject } from '../types.js';
import { deepEqual } from './object-meta.js';

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

const SUBDOMAIN_MSG =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG =
  "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1035_MSG =
  "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

export function validateMeta(t: ResourceType, obj: KubeObject, creating: boolean): void {
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
    } else if (t.group === 'rbac.authorization.k8s.io') {
      // RBAC names are path segments (ValidatePathSegmentName): `system:node` is one.
      ok = name !== '.' && name !== '..' && !/[/%]/.test(name);
      msg = `may not contain '/' or '%'`;
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
export function validateObject(t: ResourceType, obj: KubeObject): void {
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
export function validatePodUpdate(current: KubeObject, next: KubeObject): void {
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
