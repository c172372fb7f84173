// The OCI checkpoint image of ARCHITECTURE.md, as pure data: one layer (the
// kubelet archive), a config, a manifest and an index, with the annotations
// CRI-O (manifest) and containerd (index) look for. Everything is derived from
// the checkpoint itself and serialized canonically, so a rebuild of the same
// checkpoint yields byte-identical JSON and therefore the same digests.
import { createHash } from 'node:crypto';
import type { CheckpointStoredData } from '../core/contract/events.js';
import type { ManifestArchive } from '../core/storage/records.js';

export const MediaTypes = {
  layerTar: 'application/vnd.oci.image.layer.v1.tar',
  layerTarGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  config: 'application/vnd.oci.image.config.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  index: 'application/vnd.oci.image.index.v1+json',
} as const;

export type LayerCompression = 'none' | 'gzip';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: Platform;
}

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
}

/** A small blob (config, manifest, index): its bytes and the descriptor naming them. */
export interface JsonBlob {
  descriptor: Descriptor;
  bytes: Buffer;
}

export const Annotations = {
  criOCheckpointName: 'io.kubernetes.cri-o.annotations.checkpoint.name',
  containerName: 'org.criu.checkpoint.container.name',
  podName: 'org.criu.checkpoint.pod.name',
  podNamespace: 'org.criu.checkpoint.pod.namespace',
  rootfsImageName: 'org.criu.checkpoint.rootfsImageName',
  rootfsImageId: 'org.criu.checkpoint.rootfsImageID',
  created: 'org.opencontainers.image.created',
  checkpointId: 'io.kcr.checkpoint.id',
  archiveSha256: 'io.kcr.archive.sha256',
  podUid: 'io.kcr.pod.uid',
  workloadKind: 'io.kcr.workload.kind',
  workloadName: 'io.kcr.workload.name',
  node: 'io.kcr.node',
  runtime: 'io.kcr.runtime',
} as const;

/** What build-image takes from the archive section of store-artifact's manifest.json. */
export type ArchiveFacts = Pick<ManifestArchive, 'rootfsImageName' | 'rootfsImageRef' | 'runtime'>;

export function checkpointAnnotations(data: CheckpointStoredData, facts: ArchiveFacts): Record<string, string> {
  const a: Record<string, string> = {
    [Annotations.criOCheckpointName]: data.container,
    [Annotations.containerName]: data.container,
    [Annotations.podName]: data.pod,
    [Annotations.podNamespace]: data.namespace,
    [Annotations.created]: normalizeTime(data.checkpointedAt),
    [Annotations.checkpointId]: data.id,
    [Annotations.archiveSha256]: data.artifact.sha256,
    [Annotations.podUid]: data.podUid,
    [Annotations.workloadKind]: data.workload.kind,
    [Annotations.workloadName]: data.workload.name,
    [Annotations.node]: data.node,
  };
  if (facts.rootfsImageName) a[Annotations.rootfsImageName] = facts.rootfsImageName;
  if (facts.rootfsImageRef) a[Annotations.rootfsImageId] = facts.rootfsImageRef;
  if (facts.runtime) a[Annotations.runtime] = facts.runtime;
  return a;
}

// Distribution spec: path components of lowercase alphanumerics joined by
// '.', '_', '__' or '-'+, separated by '/'; Docker caps the whole name at 255.
const REPO_COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;
const MAX_REPO_LENGTH = 255;

export function isValidRepository(name: string): boolean {
  return name.length > 0 && name.length <= MAX_REPO_LENGTH && name.split('/').every((c) => REPO_COMPONENT.test(c));
}

/**
 * `<prefix>/<ns>/<kind>-<name>-<container>`: one repository per container of a
 * workload, so its checkpoints share blobs and can be listed and pruned together.
 */
export function repositoryName(data: Pick<CheckpointStoredData, 'namespace' | 'workload' | 'container'>, prefix: string): string {
  const trimmed = prefix.replace(/^\/+|\/+$/g, '');
  const leaf = `${data.workload.kind}-${data.workload.name}-${data.container}`.toLowerCase();
  const repo = [trimmed, data.namespace, leaf].filter((p) => p.length > 0).join('/');
  if (!isValidRepository(repo)) {
    throw new Error(`repository name ${JSON.stringify(repo)} for ${data.namespace}/${data.workload.name}/${data.container} is not valid per the distribution spec (prefix ${JSON.stringify(prefix)})`);
  }
  return repo;
}

export interface LayerDescriptor {
  mediaType: typeof MediaTypes.layerTar | typeof MediaTypes.layerTarGzip;
  digest: string;
  size: number;
}

/** The uncompressed layer: the archive as is, whose digest store-artifact already computed. */
export function archiveLayer(data: CheckpointStoredData): LayerDescriptor {
  return { mediaType: MediaTypes.layerTar, digest: `sha256:${data.artifact.sha256}`, size: data.artifact.size };
}

export interface ImageInput {
  data: CheckpointStoredData;
  facts: ArchiveFacts;
  /** The layer as pushed: the archive itself, or its gzip (digest computed while compressing). */
  layer: LayerDescriptor;
  platform: Platform;
}

export interface CheckpointImage {
  config: JsonBlob;
  manifest: JsonBlob;
  index: JsonBlob;
  layer: LayerDescriptor;
  annotations: Record<string, string>;
}

export function buildCheckpointImage({ data, facts, layer, platform }: ImageInput): CheckpointImage {
  const created = normalizeTime(data.checkpointedAt);
  const annotations = checkpointAnnotations(data, facts);
  const config = jsonBlob(MediaTypes.config, {
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    created,
    config: { Labels: annotations },
    // diff_ids name the uncompressed layer: the archive, whatever the layer's compression.
    rootfs: { type: 'layers', diff_ids: [`sha256:${data.artifact.sha256}`] },
    history: [{ created, created_by: 'kcr build-image', comment: `checkpoint ${data.id} of ${data.namespace}/${data.pod}/${data.container}` }],
  });
  const manifest = jsonBlob(MediaTypes.manifest, {
    schemaVersion: 2,
    mediaType: MediaTypes.manifest,
    config: config.descriptor,
    layers: [{ mediaType: layer.mediaType, digest: layer.digest, size: layer.size }],
    annotations,
  });
  const index = jsonBlob(MediaTypes.index, {
    schemaVersion: 2,
    mediaType: MediaTypes.index,
    manifests: [{ ...manifest.descriptor, platform: cleanPlatform(platform), annotations }],
    annotations,
  });
  return { config, manifest, index, layer, annotations };
}

/** JSON with sorted keys and no whitespace: the same value always gives the same bytes. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

export function sha256Digest(bytes: Buffer | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

function jsonBlob(mediaType: string, value: unknown): JsonBlob {
  const bytes = Buffer.from(canonicalJson(value), 'utf8');
  return { bytes, descriptor: { mediaType, digest: sha256Digest(bytes), size: bytes.length } };
}

/** `linux/amd64` or `linux/arm64/v8`. */
export function parsePlatform(spec: string): Platform {
  const [os, architecture, variant, ...rest] = spec.split('/');
  if (!os || !architecture || rest.length > 0) throw new Error(`platform ${JSON.stringify(spec)} is not os/arch[/variant]`);
  return { os, architecture, ...(variant ? { variant } : {}) };
}

function cleanPlatform(p: Platform): Platform {
  return { architecture: p.architecture, os: p.os, ...(p.variant ? { variant: p.variant } : {}) };
}

/** The checkpoint time as RFC 3339 UTC, whatever offset the kubelet wrote. */
function normalizeTime(rfc3339: string): string {
  return new Date(rfc3339).toISOString().replace(/\.000Z$/, 'Z');
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (isRecord(value)) {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      if (value[key] !== undefined) out[key] = sortKeys(value[key]);
    }
    return out;
  }
  return value;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
