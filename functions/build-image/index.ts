// build-image as a process: the S3 store from KCR_S3_*, the image target from
// KCR_REGISTRY_* (a registry) or KCR_OCI_LAYOUT_* (a layout directory), the
// API (in-cluster or KUBECONFIG) for retention, then the runtime.
import { resolve } from 'node:path';
import { podsApiFromEnv } from '../core/kubernetes/in-cluster-pods.js';
import { S3ObjectStore, s3OptionsFromEnv } from '../core/storage/s3.js';
import type { ImageTarget } from './image-target.js';
import { OciLayout } from './oci-layout.js';
import { loadRegistryCredentials, RegistryClient, registryLocation, type RegistryCredentials } from './registry.js';
import { parsePlatform } from './checkpoint-image.js';
import { readEnv } from '../core/runtime/config.js';
import { ConfigError, errorMessage } from '../core/runtime/errors.js';
import { createBuildImage, NAME } from './handler.js';

/** A registry when KCR_REGISTRY_URL is set, else the OCI layout directory. */
export async function imageTargetFromEnv(env: NodeJS.ProcessEnv = process.env): Promise<ImageTarget> {
  const e = readEnv(
    ['KCR_REGISTRY_URL', 'KCR_REGISTRY_INSECURE', 'KCR_REGISTRY_USERNAME', 'KCR_REGISTRY_PASSWORD', 'KCR_REGISTRY_AUTH_FILE', 'KCR_REGISTRY_TIMEOUT_MS', 'KCR_OCI_LAYOUT_DIR', 'KCR_OCI_LAYOUT_HOST'],
    env,
  );
  if (!e.KCR_REGISTRY_URL) {
    const layout = new OciLayout(resolve(e.KCR_OCI_LAYOUT_DIR), e.KCR_OCI_LAYOUT_HOST);
    await layout.init();
    return layout;
  }
  let location: { baseUrl: string; host: string };
  try {
    location = registryLocation(e.KCR_REGISTRY_URL, e.KCR_REGISTRY_INSECURE);
  } catch (err) {
    throw new ConfigError(`invalid configuration: KCR_REGISTRY_URL=${JSON.stringify(e.KCR_REGISTRY_URL)}: ${errorMessage(err)}`);
  }
  let credentials: RegistryCredentials | undefined;
  try {
    credentials = await loadRegistryCredentials({
      host: location.host,
      ...(e.KCR_REGISTRY_USERNAME ? { username: e.KCR_REGISTRY_USERNAME } : {}),
      ...(e.KCR_REGISTRY_PASSWORD ? { password: e.KCR_REGISTRY_PASSWORD } : {}),
      ...(e.KCR_REGISTRY_AUTH_FILE ? { dockerConfigPath: e.KCR_REGISTRY_AUTH_FILE } : {}),
    });
  } catch (err) {
    throw new ConfigError(`invalid configuration: KCR_REGISTRY_AUTH_FILE=${JSON.stringify(e.KCR_REGISTRY_AUTH_FILE)}: ${errorMessage(err)}`);
  }
  return new RegistryClient({
    baseUrl: location.baseUrl,
    timeoutMs: e.KCR_REGISTRY_TIMEOUT_MS,
    userAgent: `kcr-${NAME}`,
    ...(credentials ? { credentials } : {}),
  });
}

export async function buildImageFromEnv(env: NodeJS.ProcessEnv = process.env) {
  const e = readEnv(['KCR_REGISTRY_REPO_PREFIX', 'KCR_IMAGE_LAYER_COMPRESSION', 'KCR_IMAGE_PLATFORM', 'KCR_CHECKPOINT_RETENTION', 'KCR_CHECKPOINT_RETENTION_BYTES'], env);
  const retentionOn = e.KCR_CHECKPOINT_RETENTION > 0 || e.KCR_CHECKPOINT_RETENTION_BYTES > 0;
  const api = retentionOn ? await podsApiFromEnv(env) : undefined;
  return createBuildImage({
    store: new S3ObjectStore(s3OptionsFromEnv(env)),
    target: await imageTargetFromEnv(env),
    repoPrefix: e.KCR_REGISTRY_REPO_PREFIX,
    compression: e.KCR_IMAGE_LAYER_COMPRESSION,
    platform: parsePlatform(e.KCR_IMAGE_PLATFORM),
    // Retention lists pods (an image a pod uses is never pruned) and reads workloads (their own limits).
    ...(api ? { retention: { keep: e.KCR_CHECKPOINT_RETENTION, maxBytes: e.KCR_CHECKPOINT_RETENTION_BYTES, pods: api, workloads: api } } : {}),
  });
}
