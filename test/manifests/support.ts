// Loads the cluster YAML (eventing/, sources/, manifests/) and validates objects
// against the published schemas: kubernetes-models for Kubernetes kinds,
// @kubernetes-models/knative (generated from Knative's Go types) for Knative's.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { ConfigMap, Namespace, Secret, Service as CoreService, ServiceAccount } from 'kubernetes-models/v1';
import { DaemonSet, StatefulSet } from 'kubernetes-models/apps/v1';
import { ClusterRole, ClusterRoleBinding, Role, RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { Service as KnativeService } from '@kubernetes-models/knative/serving.knative.dev/v1';
import { Broker, Trigger } from '@kubernetes-models/knative/eventing.knative.dev/v1';
import { ApiServerSource, PingSource, SinkBinding } from '@kubernetes-models/knative/sources.knative.dev/v1';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const YAML_DIRS = ['eventing', 'sources', 'manifests'] as const;

/** A Kubernetes object as read from YAML: only the fields the tests look at are typed. */
export interface KubeDoc {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

export interface LoadedDoc {
  /** Where it came from: `path#n` (1-based document number). */
  origin: string;
  doc: KubeDoc;
}

/** Optional kustomize components, outside the default install: manifests/options/<name>. */
export const OPTIONS_DIR = join(REPO, 'manifests', 'options');

function yamlFiles(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const path = join(dir, name);
      if (path === OPTIONS_DIR) return [];
      if (statSync(path).isDirectory()) return yamlFiles(path);
      return /\.ya?ml$/.test(name) && name !== 'kustomization.yaml' ? [path] : [];
    });
}

/** Every YAML document of the text, as Kubernetes objects; throws on YAML errors or non-objects. */
export function parseDocs(text: string, origin: string): LoadedDoc[] {
  return parseAllDocuments(text).flatMap((d, i) => {
    const where = `${origin}#${i + 1}`;
    if (d.errors.length) throw new Error(`${where}: invalid YAML: ${d.errors[0]?.message}`);
    const value: unknown = d.toJS();
    if (value === null || value === undefined) return [];
    if (typeof value !== 'object' || Array.isArray(value)) throw new Error(`${where}: not a Kubernetes object`);
    const o = value as Partial<KubeDoc>;
    if (typeof o.apiVersion !== 'string' || typeof o.kind !== 'string' || typeof o.metadata?.name !== 'string') {
      throw new Error(`${where}: apiVersion, kind and metadata.name are required`);
    }
    return [{ origin: where, doc: o as KubeDoc }];
  });
}

/** Every Kubernetes object in eventing/, sources/ and manifests/ (kustomization.yaml and the optional components aside). */
export function loadRepoDocs(): LoadedDoc[] {
  return YAML_DIRS.flatMap((d) => yamlFiles(join(REPO, d))).flatMap((file) => parseDocs(readFileSync(file, 'utf8'), relative(REPO, file)));
}

type Model = new (data: never) => { validate(): void };

const MODELS: Record<string, Model> = {
  'v1/Namespace': Namespace,
  'v1/ServiceAccount': ServiceAccount,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': CoreService,
  'apps/v1/DaemonSet': DaemonSet,
  'apps/v1/StatefulSet': StatefulSet,
  'rbac.authorization.k8s.io/v1/ClusterRole': ClusterRole,
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': ClusterRoleBinding,
  'rbac.authorization.k8s.io/v1/Role': Role,
  'rbac.authorization.k8s.io/v1/RoleBinding': RoleBinding,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'serving.knative.dev/v1/Service': KnativeService,
  'eventing.knative.dev/v1/Broker': Broker,
  'eventing.knative.dev/v1/Trigger': Trigger,
  'sources.knative.dev/v1/ApiServerSource': ApiServerSource,
  'sources.knative.dev/v1/PingSource': PingSource,
  'sources.knative.dev/v1/SinkBinding': SinkBinding,
};

// Knative's Go type declares SinkBinding's `status` without omitempty, so the
// generated schema requires it although the API server never does: an empty
// status stands in for it (everything else is validated as written).
const STATUS_REQUIRED_BY_GENERATOR = new Set(['sources.knative.dev/v1/SinkBinding']);

/** Validates against the published schema of its apiVersion/kind; throws naming the object and the violation. */
export function validateDoc({ origin, doc }: LoadedDoc): void {
  const key = `${doc.apiVersion}/${doc.kind}`;
  const Ctor = MODELS[key];
  if (!Ctor) throw new Error(`${origin}: no schema known for ${key} (${doc.metadata.name}); add its model to test/manifests/support.ts`);
  const data = STATUS_REQUIRED_BY_GENERATOR.has(key) && doc.status === undefined ? { ...doc, status: {} } : doc;
  try {
    new Ctor(data as never).validate();
  } catch (err) {
    throw new Error(`${origin}: ${key} ${doc.metadata.name} fails its schema: ${(err as Error).message}`, { cause: err });
  }
}

export function ofKind(docs: readonly LoadedDoc[], apiVersion: string, kind: string): KubeDoc[] {
  return docs.filter((d) => d.doc.apiVersion === apiVersion && d.doc.kind === kind).map((d) => d.doc);
}

export function named(docs: readonly LoadedDoc[], apiVersion: string, kind: string, name: string): KubeDoc {
  const found = ofKind(docs, apiVersion, kind).find((d) => d.metadata.name === name);
  if (!found) throw new Error(`no ${apiVersion} ${kind} named ${name}`);
  return found;
}

/** The kcr functions, each a Knative Service with its own ServiceAccount of the same name. */
export const FUNCTIONS = ['schedule-sync', 'request-checkpoint', 'store-artifact', 'build-image', 'restore-pod', 'event-archive'] as const;
