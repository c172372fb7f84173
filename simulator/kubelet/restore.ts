// Restoring a container from a checkpoint image: once ../images.ts has pulled the image
// (from a registry or an OCI layout), the checks CRI-O makes before restoring (the image
// was taken from a container of this name, the archive has its pages and a config.dump
// naming the rootfs image) and the state the restored container resumes with. A failed
// check is a CreateContainerError, which the kubelet reports and retries (containers.ts).

import { readTar } from '../archive.js';
import { decodePages, type ContainerState } from '../state.js';
import { isRecord } from '../types.js';
import type { RootfsImage } from './runtime.js';

export class CreateContainerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CreateContainerError';
  }
}

/** What a container restored from a checkpoint image resumes with. */
export interface RestoredContainer {
  state: ContainerState;
  ref: string;
  checkpointedAt: string;
  rootfs: RootfsImage;
}

/**
 * The checks CRI-O makes on a pulled checkpoint image before any runtime restores it: it was
 * taken from a container of this name, and its archive's identity (spec.dump's
 * annotations) names this pod's namespace: one namespace's memory never lands in another's.
 */
export async function checkCheckpointFor(checkpoint: { containerName: string; archive: Buffer }, image: string, namespace: string, containerName: string): Promise<void> {
  if (checkpoint.containerName !== containerName) {
    throw new CreateContainerError(`checkpoint image ${image} was created for container "${checkpoint.containerName}", cannot restore it into container "${containerName}"`);
  }
  const files = await readTar(checkpoint.archive, new Set(['spec.dump'])).catch((err: unknown) => {
    throw new CreateContainerError(`failed to read checkpoint archive of ${image}: ${err instanceof Error ? err.message : String(err)}`);
  });
  let spec: unknown;
  try {
    spec = JSON.parse(files.get('spec.dump')?.toString('utf8') ?? 'null');
  } catch (err) {
    throw new CreateContainerError(`checkpoint image ${image}: spec.dump is not JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  const annotations = isRecord(spec) && isRecord(spec.annotations) ? spec.annotations : undefined;
  if (!annotations) throw new CreateContainerError(`checkpoint image ${image}: the archive has no spec.dump with annotations`);
  const archiveNamespace = annotations['io.kubernetes.pod.namespace'];
  if (archiveNamespace !== namespace) {
    throw new CreateContainerError(`checkpoint image ${image} holds a container of namespace "${String(archiveNamespace)}": refusing to restore it into a pod of namespace "${namespace}"`);
  }
}

/** Reads and checks a pulled checkpoint image (its single layer, the kubelet archive) for container `containerName`. */
export async function restoreFromCheckpoint(checkpoint: { containerName: string; archive: Buffer }, image: string, containerName: string): Promise<RestoredContainer> {
  const files = await readTar(checkpoint.archive).catch((err: unknown) => {
    throw new CreateContainerError(`failed to read checkpoint archive of ${image}: ${err instanceof Error ? err.message : String(err)}`);
  });
  const pages = files.get('checkpoint/pages-1.img');
  if (!pages) throw new CreateContainerError(`checkpoint image ${image}: archive has no checkpoint/pages-1.img`);
  let decoded;
  try {
    decoded = decodePages(pages);
  } catch (err) {
    throw new CreateContainerError(`restoring container ${containerName} from ${image}: ${err instanceof Error ? err.message : String(err)}`);
  }
  return { state: decoded.state, ref: image, checkpointedAt: decoded.header.checkpointedAt, rootfs: rootfsOf(files.get('config.dump'), image) };
}

/** The base image a checkpoint archive's config.dump names, which CRI-O restores the container's root filesystem from. */
function rootfsOf(configDump: Buffer | undefined, image: string): RootfsImage {
  let config: unknown;
  try {
    config = configDump ? JSON.parse(configDump.toString('utf8')) : undefined;
  } catch (err) {
    throw new CreateContainerError(`checkpoint image ${image}: config.dump is not JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  const name = isRecord(config) ? (config.rootfsImageName ?? config.rootfsImage) : undefined;
  const ref = isRecord(config) ? config.rootfsImageRef : undefined;
  if (typeof name !== 'string' || !name || typeof ref !== 'string' || !ref) {
    throw new CreateContainerError(`checkpoint image ${image}: the archive's config.dump names no rootfs image to restore onto`);
  }
  return { name, ref };
}
