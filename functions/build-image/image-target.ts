// Where build-image puts images: a registry (OCI distribution API) or an OCI
// image layout directory (the embedded default). Both speak this interface so
// the handler's push logic is written once.
import type { Readable } from 'node:stream';

export interface BlobRef {
  digest: string;
  size: number;
}

export interface PushedBlob extends BlobRef {
  /** How the blob got there: it was already present, mounted from another repository, or uploaded. */
  via: 'exists' | 'mounted' | 'uploaded';
}

export interface StoredManifest {
  mediaType: string;
  digest: string;
  bytes: Buffer;
}

/** The digests of one checkpoint image, as image.json records them. */
export interface ImageDigests {
  indexDigest: string;
  manifestDigest: string;
  configDigest: string;
  layerDigest: string;
}

export interface ImageTarget {
  readonly kind: 'registry' | 'oci-layout';
  /** The registry host (`host[:port]`) that references to this target start with. */
  readonly host: string;
  hasBlob(repo: string, digest: string): Promise<boolean>;
  /** Makes a blob present in `repo` without uploading it, when it already is in `from`; false when it is not. */
  mountBlob(repo: string, digest: string, from: string): Promise<boolean>;
  /**
   * Streams a blob in. With `expected`, the target refuses bytes that do not match
   * it (BlobMismatchError); without, the digest is computed while streaming.
   */
  uploadBlob(repo: string, body: Readable, expected?: BlobRef): Promise<BlobRef>;
  /** Stores a manifest or index under `reference`: its digest, or a tag (which also names it). */
  putManifest(repo: string, reference: string, mediaType: string, bytes: Buffer): Promise<void>;
  /** Whether the image named by `digest` can be pulled from `repo`. */
  hasManifest(repo: string, digest: string): Promise<boolean>;
  getManifest(repo: string, reference: string): Promise<StoredManifest | undefined>;
  /**
   * Deletes an image (retention): afterwards it cannot be pulled. A registry
   * frees the blobs at its next garbage collection; a layout deletes those no
   * other image there uses.
   */
  removeImage(repo: string, image: ImageDigests): Promise<void>;
}

/** The bytes streamed do not match the digest or size they were announced with. */
export class BlobMismatchError extends Error {
  override readonly name = 'BlobMismatchError';
}
