// Shared helpers for the simulator tests (client-node error unpacking, OCI layout building).

import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApiException } from '@kubernetes/client-node';

export interface StatusBody {
  kind: string;
  apiVersion: string;
  status: string;
  message: string;
  reason: string;
  code: number;
  details?: Record<string, unknown>;
}

/** Runs `fn`, expects an ApiException, returns its HTTP code and parsed Status body. */
export async function apiError(fn: () => Promise<unknown>): Promise<{ code: number; body: StatusBody; raw: string }> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof ApiException) {
      const raw = typeof err.body === 'string' ? err.body : JSON.stringify(err.body);
      let body: StatusBody;
      try {
        body = JSON.parse(raw) as StatusBody;
      } catch {
        body = { kind: '', apiVersion: '', status: '', message: raw, reason: '', code: err.code };
      }
      return { code: err.code, body, raw };
    }
    throw err;
  }
  throw new Error('expected the call to fail with an ApiException, but it succeeded');
}

function sha256(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

/**
 * Writes a checkpoint image (one layer = the kubelet archive) into an OCI image layout,
 * annotated as ARCHITECTURE.md describes. Returns the manifest and index digests.
 */
export function writeCheckpointImageLayout(
  dir: string,
  opts: { archive: Buffer; containerName: string; tag?: string; annotateManifest?: boolean; annotateIndex?: boolean },
): { manifestDigest: string; indexDigest: string } {
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  const put = (b: Buffer): string => {
    const d = sha256(b);
    writeFileSync(join(dir, 'blobs', 'sha256', d.slice(7)), b);
    return d;
  };
  const layerDigest = put(opts.archive);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layerDigest] } }));
  const configDigest = put(config);
  const checkpointAnnotations: Record<string, string> = {
    'io.kubernetes.cri-o.annotations.checkpoint.name': opts.containerName,
    'org.criu.checkpoint.container.name': opts.containerName,
  };
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size: opts.archive.length }],
      annotations: opts.annotateManifest === false ? {} : { 'io.kubernetes.cri-o.annotations.checkpoint.name': opts.containerName },
    }),
  );
  const manifestDigest = put(manifest);
  const nested = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: manifestDigest, size: manifest.length, platform: { architecture: 'amd64', os: 'linux' } }],
      annotations: opts.annotateIndex === false ? {} : checkpointAnnotations,
    }),
  );
  const indexDigest = put(nested);
  const index = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      {
        mediaType: 'application/vnd.oci.image.index.v1+json',
        digest: indexDigest,
        size: nested.length,
        annotations: { 'org.opencontainers.image.ref.name': opts.tag ?? 'latest' },
      },
    ],
  };
  writeFileSync(join(dir, 'index.json'), JSON.stringify(index));
  writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  return { manifestDigest, indexDigest };
}
