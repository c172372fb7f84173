// Image resolution for the simulated kubelet: pulls a manifest (and for checkpoint images the
// single layer) from an OCI distribution registry over plain HTTP, or reads it from a local
// OCI image-layout directory mapped to a registry host. Digests are verified.

import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isRecord } from './types.js';

export type ImageSource = { kind: 'layout'; dir: string } | { kind: 'registry'; url: string; username?: string; password?: string };

interface ImageRef {
  /** Registry host (`docker.io` when none is given). */
  host: string;
  repository: string;
  tag?: string;
  digest?: string;
}

interface ResolvedImage {
  ref: string;
  /** `repo@sha256:…` recorded as the container's imageID. */
  imageID: string;
  manifestDigest: string;
  checkpoint?: {
    /** Container name the checkpoint was taken from (annotation). */
    containerName: string;
    /** The kubelet archive (the image's single layer, decompressed if gzip). */
    archive: Buffer;
    annotations: Record<string, string>;
  };
}

export class ImagePullError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImagePullError';
  }
}

// The keys CRI-O and containerd look for, written out here rather than taken from
// kcr's image builder, so that a wrong key in kcr fails the simulated restore.
const CRIO_CHECKPOINT_ANNOTATION = 'io.kubernetes.cri-o.annotations.checkpoint.name';
const CONTAINERD_CHECKPOINT_ANNOTATION = 'org.criu.checkpoint.container.name';

const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';

export function parseImageRef(ref: string): ImageRef {
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  const slash = rest.indexOf('/');
  let host = 'docker.io';
  const first = slash >= 0 ? rest.slice(0, slash) : '';
  if (slash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    host = first;
    rest = rest.slice(slash + 1);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  if (host === 'docker.io' && !rest.includes('/')) rest = `library/${rest}`;
  const out: ImageRef = { host, repository: rest };
  if (tag) out.tag = tag;
  if (digest) out.digest = digest;
  return out;
}

function sha256(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

function checkDigest(what: string, data: Buffer, expected: string): void {
  const got = sha256(data);
  if (got !== expected) throw new ImagePullError(`${what}: digest mismatch: expected ${expected}, got ${got}`);
}

function parseJson(what: string, b: Buffer): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(b.toString('utf8'));
    if (!isRecord(v)) throw new Error('not an object');
    return v;
  } catch (err) {
    throw new ImagePullError(`${what}: invalid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function annotationsOf(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (isRecord(v)) for (const [k, x] of Object.entries(v)) if (typeof x === 'string') out[k] = x;
  return out;
}

interface Fetcher {
  /** Manifest or index bytes and its media type, by tag or digest. */
  manifest(reference: string): Promise<{ data: Buffer; mediaType: string; digest: string }>;
  blob(digest: string): Promise<Buffer>;
}

function pickFromIndex(index: Record<string, unknown>, what: string): Record<string, unknown> {
  const manifests = Array.isArray(index.manifests) ? index.manifests.filter(isRecord) : [];
  const amd64 = manifests.find((m) => isRecord(m.platform) && m.platform.architecture === 'amd64' && m.platform.os === 'linux');
  const chosen = amd64 ?? manifests[0];
  if (!chosen || typeof chosen.digest !== 'string') throw new ImagePullError(`${what}: image index lists no manifest`);
  return chosen;
}

async function resolveWith(fetcher: Fetcher, ref: string, parsed: ImageRef): Promise<ResolvedImage> {
  const reference = parsed.digest ?? parsed.tag ?? 'latest';
  let top = await fetcher.manifest(reference);
  let indexAnnotations: Record<string, string> = {};
  let doc = parseJson(`manifest ${reference} of ${ref}`, top.data);
  let mediaType = typeof doc.mediaType === 'string' ? doc.mediaType : top.mediaType;
  // Follow an index (containerd puts the checkpoint annotation on the index and its descriptor).
  for (let depth = 0; (mediaType === OCI_INDEX || mediaType === DOCKER_LIST || Array.isArray(doc.manifests)) && depth < 3; depth++) {
    indexAnnotations = { ...indexAnnotations, ...annotationsOf(doc.annotations) };
    const desc = pickFromIndex(doc, ref);
    indexAnnotations = { ...indexAnnotations, ...annotationsOf(desc.annotations) };
    top = await fetcher.manifest(desc.digest as string);
    checkDigest(`manifest ${String(desc.digest)} of ${ref}`, top.data, desc.digest as string);
    doc = parseJson(`manifest ${String(desc.digest)} of ${ref}`, top.data);
    mediaType = typeof doc.mediaType === 'string' ? doc.mediaType : top.mediaType;
  }
  const manifestAnnotations = annotationsOf(doc.annotations);
  const repoName = `${parsed.host}/${parsed.repository}`;
  const out: ResolvedImage = { ref, imageID: `${repoName}@${top.digest}`, manifestDigest: top.digest };
  const containerName = manifestAnnotations[CRIO_CHECKPOINT_ANNOTATION] ?? indexAnnotations[CONTAINERD_CHECKPOINT_ANNOTATION];
  if (containerName === undefined) return out;
  const layers = Array.isArray(doc.layers) ? doc.layers.filter(isRecord) : [];
  const layer = layers[0];
  if (layers.length !== 1 || !layer || typeof layer.digest !== 'string') {
    throw new ImagePullError(`checkpoint image ${ref}: expected exactly one layer, found ${layers.length}`);
  }
  const blob = await fetcher.blob(layer.digest);
  checkDigest(`layer ${layer.digest} of ${ref}`, blob, layer.digest);
  out.checkpoint = { containerName, archive: blob, annotations: { ...indexAnnotations, ...manifestAnnotations } };
  return out;
}

function layoutFetcher(dir: string, ref: string, parsed: ImageRef): Fetcher {
  const blobPath = (digest: string): string => {
    const [alg, hex] = digest.split(':');
    if (!alg || !hex || !/^[a-f0-9]+$/.test(hex)) throw new ImagePullError(`invalid digest ${digest} in ${ref}`);
    return join(dir, 'blobs', alg, hex);
  };
  const readBlob = async (digest: string): Promise<Buffer> => {
    try {
      return await readFile(blobPath(digest));
    } catch (err) {
      if (err instanceof ImagePullError) throw err;
      throw new ImagePullError(`reading blob ${digest} of ${ref} from OCI layout ${dir}: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  return {
    async manifest(reference: string) {
      if (reference.startsWith('sha256:')) {
        const data = await readBlob(reference).catch(() => {
          throw new ImagePullError(`reading manifest ${reference} in ${parsed.host}/${parsed.repository}: manifest unknown (OCI layout ${dir})`);
        });
        checkDigest(`manifest ${reference} of ${ref}`, data, reference);
        const doc = parseJson(`manifest ${reference}`, data);
        return { data, mediaType: typeof doc.mediaType === 'string' ? doc.mediaType : OCI_MANIFEST, digest: reference };
      }
      let indexBuf: Buffer;
      try {
        indexBuf = await readFile(join(dir, 'index.json'));
      } catch (err) {
        throw new ImagePullError(`reading ${join(dir, 'index.json')} for ${ref}: ${err instanceof Error ? err.message : String(err)}`);
      }
      const index = parseJson(`index.json of ${dir}`, indexBuf);
      const manifests = Array.isArray(index.manifests) ? index.manifests.filter(isRecord) : [];
      const wanted = [reference, `${parsed.repository}:${reference}`, `${parsed.host}/${parsed.repository}:${reference}`];
      const desc = manifests.find((m) => wanted.includes(annotationsOf(m.annotations)['org.opencontainers.image.ref.name'] ?? ''));
      if (!desc || typeof desc.digest !== 'string') {
        throw new ImagePullError(`reading manifest ${reference} in ${parsed.host}/${parsed.repository}: manifest unknown (OCI layout ${dir})`);
      }
      const data = await readBlob(desc.digest);
      checkDigest(`manifest ${desc.digest} of ${ref}`, data, desc.digest);
      return { data, mediaType: typeof desc.mediaType === 'string' ? desc.mediaType : OCI_MANIFEST, digest: desc.digest };
    },
    blob: readBlob,
  };
}

function registryFetcher(src: { url: string; username?: string; password?: string }, ref: string, parsed: ImageRef): Fetcher {
  const base = src.url.replace(/\/+$/, '');
  let auth: string | undefined = src.username !== undefined ? `Basic ${Buffer.from(`${src.username}:${src.password ?? ''}`).toString('base64')}` : undefined;
  const get = async (path: string, accept?: string): Promise<Response> => {
    const doFetch = (authorization?: string): Promise<Response> => {
      const headers: Record<string, string> = {};
      if (accept) headers.accept = accept;
      if (authorization) headers.authorization = authorization;
      return fetch(`${base}${path}`, { headers, redirect: 'follow' });
    };
    let res: Response;
    try {
      res = await doFetch(auth);
      if (res.status === 401) {
        const challenge = res.headers.get('www-authenticate') ?? '';
        const bearer = /^Bearer\s+(.*)$/i.exec(challenge);
        if (bearer) {
          auth = await fetchToken(bearer[1]!, src);
          res = await doFetch(auth);
        }
      }
    } catch (err) {
      throw new ImagePullError(`pinging container registry ${parsed.host}: Get "${base}${path}": ${err instanceof Error ? err.message : String(err)}`);
    }
    return res;
  };
  return {
    async manifest(reference: string) {
      const res = await get(`/v2/${parsed.repository}/manifests/${reference}`, [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST].join(', '));
      const data = Buffer.from(await res.arrayBuffer());
      if (res.status === 401 || res.status === 403) {
        throw new ImagePullError(`reading manifest ${reference} in ${parsed.host}/${parsed.repository}: unauthorized: authentication required`);
      }
      if (!res.ok) {
        throw new ImagePullError(`reading manifest ${reference} in ${parsed.host}/${parsed.repository}: manifest unknown (HTTP ${res.status}: ${data.toString('utf8').slice(0, 200)})`);
      }
      const digest = reference.startsWith('sha256:') ? reference : (res.headers.get('docker-content-digest') ?? sha256(data));
      if (reference.startsWith('sha256:')) checkDigest(`manifest ${reference} of ${ref}`, data, reference);
      const mediaType = (res.headers.get('content-type') ?? OCI_MANIFEST).split(';')[0]!.trim();
      return { data, mediaType, digest };
    },
    async blob(digest: string) {
      const res = await get(`/v2/${parsed.repository}/blobs/${digest}`);
      const data = Buffer.from(await res.arrayBuffer());
      if (!res.ok) throw new ImagePullError(`fetching blob ${digest} of ${ref}: HTTP ${res.status}`);
      return data;
    },
  };
}

async function fetchToken(params: string, src: { username?: string; password?: string }): Promise<string> {
  const kv = Object.fromEntries([...params.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
  if (!kv.realm) throw new ImagePullError(`registry auth challenge without realm: ${params}`);
  const u = new URL(kv.realm);
  if (kv.service) u.searchParams.set('service', kv.service);
  if (kv.scope) u.searchParams.set('scope', kv.scope);
  const headers: Record<string, string> = {};
  if (src.username !== undefined) headers.authorization = `Basic ${Buffer.from(`${src.username}:${src.password ?? ''}`).toString('base64')}`;
  const res = await fetch(u, { headers });
  if (!res.ok) throw new ImagePullError(`fetching registry token from ${u.origin}${u.pathname}: HTTP ${res.status}`);
  const body: unknown = await res.json();
  const token = isRecord(body) ? (body.token ?? body.access_token) : undefined;
  if (typeof token !== 'string') throw new ImagePullError(`registry token response from ${u.origin} has no token`);
  return `Bearer ${token}`;
}

/**
 * Resolves an image for the kubelet. Returns undefined for images the simulation does not
 * pull (hosts with no configured source): those "are present on the node" and start fresh.
 */
export async function resolveImage(ref: string, sources: Record<string, ImageSource>): Promise<ResolvedImage | undefined> {
  const parsed = parseImageRef(ref);
  let source = sources[parsed.host];
  if (!source && /^(localhost|127\.0\.0\.1)(:\d+)?$/.test(parsed.host)) source = { kind: 'registry', url: `http://${parsed.host}` };
  if (!source) return undefined;
  const fetcher = source.kind === 'layout' ? layoutFetcher(source.dir, ref, parsed) : registryFetcher(source, ref, parsed);
  return resolveWith(fetcher, ref, parsed);
}

/** imageID for an image the simulation does not pull: stable, derived from the reference. */
export function syntheticImageId(ref: string): string {
  const p = parseImageRef(ref);
  const digest =
    p.digest ??
    `sha256:${createHash('sha256')
      .update(`${p.host}/${p.repository}:${p.tag ?? 'latest'}`)
      .digest('hex')}`;
  return `${p.host}/${p.repository}@${digest}`;
}
