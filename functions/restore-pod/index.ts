// Builds restore-pod from the environment.
import { ApiException, type V1NodeSystemInfo } from '@kubernetes/client-node';
import { isTransientStatus, KubeApiError, Kubernetes, statusMessage } from '../core/kubernetes/kubernetes.js';
import { S3ObjectStore, s3OptionsFromEnv } from '../core/storage/s3.js';
import { readEnv } from '../core/runtime/config.js';
import { TransientError } from '../core/runtime/errors.js';
import { requestFailure } from '../core/runtime/transient.js';
import { namespaceExclusion } from '../core/kubernetes/excluded-namespaces.js';
import type { FunctionHandler } from '../core/runtime/handler.js';
import { createRestorePod } from './handler.js';
import type { RestorePodKube } from './kube-port.js';

export async function restorePodFromEnv(env: NodeJS.ProcessEnv = process.env): Promise<FunctionHandler> {
  const c = readEnv(['KUBECONFIG', 'KCR_RESTORE_WINDOW_SECONDS', 'KCR_RESTORE_MAX_ATTEMPTS', 'KCR_EXCLUDED_NAMESPACES'], env);
  const store = new S3ObjectStore(s3OptionsFromEnv(env));
  await store.ensureBucket();
  return createRestorePod({
    kube: restorePodKube(Kubernetes.fromEnvironment(c.KUBECONFIG)),
    store,
    windowMs: c.KCR_RESTORE_WINDOW_SECONDS * 1000,
    maxAttempts: c.KCR_RESTORE_MAX_ATTEMPTS,
    excluded: namespaceExclusion(c.KCR_EXCLUDED_NAMESPACES),
  }) as FunctionHandler;
}

/** The Kubernetes adapter as restore-pod's port, with the node read the adapter has no call for. */
function restorePodKube(kube: Kubernetes): RestorePodKube {
  return {
    getPod: (namespace, name) => kube.getPod(namespace, name),
    getWorkload: (namespace, kind, name) => kube.getWorkload(namespace, kind, name),
    listPods: (namespace) => kube.listPods(namespace),
    patchPod: (namespace, name, patch) => kube.patchPod(namespace, name, patch),
    createEvent: (event) => kube.createEvent(event),
    nodeReady: (name) => kube.nodeReady(name),
    nodeInfo: (name) => readNodeInfo(kube, name),
  };
}

/**
 * GET /api/v1/nodes/{name} with the adapter's error mapping (404 → undefined,
 * 429/5xx and a connection error → TransientError, other 4xx → KubeApiError):
 * the adapter reads nodes only for nodeReady.
 */
async function readNodeInfo(kube: Kubernetes, name: string): Promise<V1NodeSystemInfo | undefined> {
  const what = `get node ${name}`;
  try {
    return (await kube.core.readNode({ name })).status?.nodeInfo;
  } catch (err) {
    if (err instanceof ApiException) {
      if (err.code === 404) return undefined;
      const message = `${what}: HTTP ${err.code}: ${statusMessage(err.body)}`;
      if (isTransientStatus(err.code)) throw new TransientError(message, { cause: err });
      throw new KubeApiError(message, err.code);
    }
    // No HTTP answer, or none that could be read.
    throw requestFailure(what, err);
  }
}
