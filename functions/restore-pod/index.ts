// Builds restore-pod from the environment.
import { Kubernetes } from '../core/kubernetes/kubernetes.js';
import { S3ObjectStore, s3OptionsFromEnv } from '../core/storage/s3.js';
import { readEnv } from '../core/runtime/config.js';
import { namespaceExclusion } from '../core/kubernetes/excluded-namespaces.js';
import type { FunctionHandler } from '../core/runtime/handler.js';
import { createRestorePod } from './handler.js';

export async function restorePodFromEnv(env: NodeJS.ProcessEnv = process.env): Promise<FunctionHandler> {
  const c = readEnv(['KUBECONFIG', 'KCR_RESTORE_WINDOW_SECONDS', 'KCR_RESTORE_MAX_ATTEMPTS', 'KCR_EXCLUDED_NAMESPACES'], env);
  const store = new S3ObjectStore(s3OptionsFromEnv(env));
  await store.ensureBucket();
  return createRestorePod({
    kube: Kubernetes.fromEnvironment(c.KUBECONFIG),
    store,
    windowMs: c.KCR_RESTORE_WINDOW_SECONDS * 1000,
    maxAttempts: c.KCR_RESTORE_MAX_ATTEMPTS,
    excluded: namespaceExclusion(c.KCR_EXCLUDED_NAMESPACES),
  }) as FunctionHandler;
}
