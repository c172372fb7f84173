// Every environment variable kcr reads, in one catalog: the README table is
// checked against it, and a bad value fails start-up with the variable's name.
import { z } from 'zod';
import { ConfigError } from './errors.js';
import { parseQuantityBytes } from './quantity.js';

interface EnvVar<S extends z.ZodType = z.ZodType> {
  description: string;
  /** Used when the variable is unset or empty; absent means required (unless the schema is optional). */
  default?: string;
  schema: S;
  /** Who reads it: `all` for the runtime, or the function/component names. */
  usedBy: readonly string[];
}

const port = z.coerce.number().int().min(0).max(65535); // 0: any free port (local mode, tests)
const positiveInt = z.coerce.number().int().positive();
const nonNegativeInt = z.coerce.number().int().nonnegative();
const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });
const quantityBytes = z.string().transform((v, ctx) => {
  const bytes = parseQuantityBytes(v);
  if (bytes === undefined) ctx.addIssue({ code: 'custom', message: 'must be a quantity of bytes (2Gi, 500M, 0)' });
  return bytes ?? 0;
});
const bool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');

// manifests/secrets/ commits these values until generate.sh replaces them: a
// credential anyone can read in git must not reach S3 or the node-agent.
const SECRET_PLACEHOLDER_PREFIX = 'CHANGE-ME';

export function isSecretPlaceholder(value: string): boolean {
  return value.trim().startsWith(SECRET_PLACEHOLDER_PREFIX);
}

/** Why a placeholder is refused: where it comes from and what replaces it. */
export function placeholderHint(file: string, secret: string): string {
  return `is the placeholder from manifests/secrets/${file} (Secret ${secret}): run manifests/secrets/generate.sh`;
}

const notPlaceholder = (value: string | undefined) => value === undefined || !isSecretPlaceholder(value);

function v<S extends z.ZodType>(usedBy: readonly string[], description: string, schema: S, dflt?: string): EnvVar<S> {
  return { usedBy, description, schema, ...(dflt !== undefined ? { default: dflt } : {}) };
}

export const ENV = {
  KCR_FUNCTION: v(['image'], 'Which function the shared container image runs (or the first argument)', z.string().optional()),
  PORT: v(['all'], 'HTTP port the function listens on (Knative sets it)', port, '8080'),
  K_SINK: v(['all'], 'Broker URL that result events are sent to (the SinkBinding sets it)', httpUrl.optional()),
  KCR_EMIT_RETRIES: v(['all'], 'Retries when sending an event to K_SINK fails, before answering 503', nonNegativeInt, '4'),
  KCR_EMIT_BACKOFF_MS: v(['all'], 'First retry delay for sending to K_SINK; doubles each retry', positiveInt, '100'),
  KCR_EMIT_TIMEOUT_MS: v(['all'], 'Timeout of one send to K_SINK', positiveInt, '5000'),
  KCR_SHUTDOWN_TIMEOUT_MS: v(['all'], 'On SIGTERM, how long in-flight events may take before the process exits', positiveInt, '30000'),
  KCR_LOG_LEVEL: v(['all'], 'Log level (fatal, error, warn, info, debug, trace)', z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']), 'info'),
  KCR_S3_ENDPOINT: v(
    ['store-artifact', 'build-image', 'event-archive', 'restore-pod', 'local mode'],
    'S3-compatible endpoint URL (MinIO in the cluster), e.g. http://minio.kcr-system:9000; set for the local mode, it uses that S3 instead of starting Swift or s3rver',
    httpUrl,
  ),
  KCR_S3_ACCESS_KEY: v(
    ['store-artifact', 'build-image', 'event-archive', 'restore-pod', 'local mode'],
    'S3 access key (from a Secret)',
    z.string().min(1).refine(notPlaceholder, placeholderHint('s3.env', 'kcr-s3')),
  ),
  KCR_S3_SECRET_KEY: v(
    ['store-artifact', 'build-image', 'event-archive', 'restore-pod', 'local mode'],
    'S3 secret key (from a Secret)',
    z.string().min(1).refine(notPlaceholder, placeholderHint('s3.env', 'kcr-s3')),
  ),
  KCR_S3_REGION: v(['store-artifact', 'build-image', 'event-archive', 'restore-pod', 'local mode'], 'S3 region used for request signing', z.string().min(1), 'us-east-1'),
  KCR_S3_BUCKET: v(['store-artifact', 'build-image', 'event-archive', 'restore-pod'], 'Bucket holding checkpoints and archived events; created when missing', z.string().min(3), 'kcr-checkpoints'),
  KCR_S3_PART_SIZE_MB: v(
    ['store-artifact', 'build-image'],
    'Multipart upload part size in MiB (S3 minimum 5); memory ≈ part size × (parts in flight + 1)',
    z.coerce.number().int().min(5).max(5120),
    '8',
  ),
  KCR_S3_PARTS_IN_FLIGHT: v(['store-artifact', 'build-image'], 'Multipart parts uploaded in parallel', z.coerce.number().int().min(1).max(64), '2'),
  KCR_NODE_AGENT_URL_TEMPLATE: v(
    ['store-artifact', 'request-checkpoint'],
    'URL of the node-agent of a node; {node} is replaced by the node name (e.g. a hostPort reachable through node DNS names)',
    z.string().includes('{node}'),
    'http://{node}:10380',
  ),
  KCR_NODE_AGENT_URLS: v(
    ['store-artifact', 'request-checkpoint'],
    'JSON map of node name → node-agent URL; nodes listed here override KCR_NODE_AGENT_SELECTOR and KCR_NODE_AGENT_URL_TEMPLATE (the simulated cluster and local mode use it)',
    z.string().optional(),
  ),
  KCR_NODE_AGENT_SELECTOR: v(
    ['store-artifact', 'request-checkpoint'],
    "Label selector of the node-agent pods: store-artifact finds the Ready agent pod on the archive's node through the API and calls its pod IP on KCR_NODE_AGENT_PORT; overrides KCR_NODE_AGENT_URL_TEMPLATE",
    z.string().min(1).optional(),
  ),
  KCR_NODE_AGENT_NAMESPACE: v(['store-artifact', 'request-checkpoint'], 'Namespace of the node-agent pods that KCR_NODE_AGENT_SELECTOR selects', z.string().min(1), 'kcr-system'),
  KCR_NODE_AGENT_TOKEN: v(
    ['store-artifact', 'request-checkpoint', 'node-agent'],
    'Bearer token shared by node-agent and its callers, store-artifact and request-checkpoint (prefer KCR_NODE_AGENT_TOKEN_FILE)',
    z.string().optional().refine(notPlaceholder, placeholderHint('node-agent.env', 'kcr-node-agent-token')),
  ),
  KCR_NODE_AGENT_TOKEN_FILE: v(
    ['store-artifact', 'request-checkpoint', 'node-agent'],
    'File holding the node-agent bearer token (a mounted Secret); re-read on each use so rotation needs no restart',
    z.string().optional(),
  ),
  KCR_NODE_AGENT_TIMEOUT_MS: v(['store-artifact'], 'How long a node-agent connection may stay idle (connect, headers, or between body chunks) before it counts as unreachable', positiveInt, '30000'),
  KCR_NODE_AGENT_DIR: v(
    ['node-agent'],
    'Checkpoint directory the node-agent serves (a hostPath mount; read-only unless KCR_NODE_AGENT_ALLOW_DELETE, which needs write access)',
    z.string().startsWith('/'),
    '/var/lib/kubelet/checkpoints',
  ),
  KCR_NODE_AGENT_HOST: v(['node-agent'], 'Address the node-agent listens on', z.string().min(1), '0.0.0.0'),
  KCR_NODE_AGENT_PORT: v(
    ['node-agent', 'store-artifact', 'request-checkpoint'],
    'Port the node-agent listens on (store-artifact and request-checkpoint call it there on a discovered pod)',
    port,
    '10380',
  ),
  KCR_KUBELET_URL: v(
    ['node-agent'],
    "Its own node's kubelet API, called directly for checkpoints (the DaemonSet: https://$(KCR_HOST_IP):10250, status.hostIP); unset: the node-agent takes no checkpoints (501)",
    httpUrl.optional(),
  ),
  KCR_KUBELET_CA_FILE: v(
    ['node-agent'],
    "CA bundle that verifies the kubelet's serving certificate (the cluster CA when kubelets use serverTLSBootstrap); re-read when it changes",
    z.string().min(1),
    '/var/run/secrets/kcr/kubelet/ca.crt',
  ),
  KCR_KUBELET_TOKEN_FILE: v(
    ['node-agent'],
    "The node-agent's ServiceAccount token (a projected, short-lived token; nodes/checkpoint create only) presented to the kubelet; re-read on every call, as the kubelet rotates it",
    z.string().min(1),
    '/var/run/secrets/kcr/kubelet/token',
  ),
  KCR_NODE_AGENT_ALLOW_DELETE: v(['node-agent'], 'Whether the node-agent deletes an archive when store-artifact asks (after it is stored)', bool, 'true'),
  KUBECONFIG: v(
    ['schedule-sync', 'request-checkpoint', 'restore-pod', 'store-artifact', 'build-image'],
    'Kubeconfig file; unset in a cluster, where the ServiceAccount is used',
    z.string().optional(),
  ),
  KUBERNETES_SERVICE_HOST: v(
    ['store-artifact', 'build-image'],
    "The API server's address, set by Kubernetes in every pod; store-artifact and build-image read pods there with their ServiceAccount token when KUBECONFIG is unset",
    z.string().optional(),
  ),
  KUBERNETES_SERVICE_PORT: v(['store-artifact', 'build-image'], "The API server's port, set by Kubernetes in every pod", port, '443'),
  KCR_BROKER_URL: v(['schedule-sync'], 'Sink of the PingSources schedule-sync creates (the broker); defaults to K_SINK', httpUrl.optional()),
  KCR_CHECKPOINT_TIMEOUT_SECONDS: v(['request-checkpoint'], 'The kubelet checkpoint timeout (?timeout=): how long CRIU may take', positiveInt, '60'),
  KCR_EXCLUDED_NAMESPACES: v(
    ['request-checkpoint', 'restore-pod'],
    'Comma-separated namespaces kcr never checkpoints or restores, whatever their annotations say; a trailing * matches a prefix',
    z.string(),
    'kube-system,kube-public,kube-node-lease,knative-*,kcr-system',
  ),
  KCR_CHECKPOINT_CONCURRENCY: v(['request-checkpoint'], 'Kubelet checkpoint calls in flight at once, per instance', positiveInt, '8'),
  KCR_CHECKPOINT_VIA: v(
    ['request-checkpoint'],
    "How request-checkpoint reaches the kubelet: node-agent (the pod's node's agent calls its kubelet with a nodes/checkpoint-only identity) or apiserver-proxy (POST nodes/{node}/proxy/checkpoint: needs nodes/proxy, which reaches /run and /exec on every node; only for networks that block pod → node:10250)",
    z.enum(['node-agent', 'apiserver-proxy']),
    'node-agent',
  ),
  KCR_REGISTRY_URL: v(
    ['build-image'],
    'Registry build-image pushes checkpoint images to: host[:port] or http(s)://host[:port]; unset writes them to the OCI layout KCR_OCI_LAYOUT_DIR instead',
    z.string().min(1).optional(),
  ),
  KCR_REGISTRY_INSECURE: v(['build-image'], 'Speak plain HTTP to KCR_REGISTRY_URL (loopback hosts always get HTTP when no scheme is given)', bool, 'false'),
  KCR_REGISTRY_REPO_PREFIX: v(
    ['build-image'],
    'First path of every checkpoint repository: <registry>/<prefix>/<namespace>/<kind>-<name>-<container> (empty for none)',
    z.string().regex(/^$|^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/, 'must be lowercase repository path components'),
    'kcr',
  ),
  KCR_REGISTRY_USERNAME: v(['build-image'], 'Registry user for Basic auth or the Bearer token endpoint (from a Secret); wins over KCR_REGISTRY_AUTH_FILE', z.string().optional()),
  KCR_REGISTRY_PASSWORD: v(['build-image'], 'Password or token of KCR_REGISTRY_USERNAME (from a Secret)', z.string().optional()),
  KCR_REGISTRY_AUTH_FILE: v(['build-image'], 'Docker config.json with an `auths` entry for the registry (a mounted kubernetes.io/dockerconfigjson Secret)', z.string().optional()),
  KCR_REGISTRY_TIMEOUT_MS: v(['build-image'], 'Timeout of each registry request that does not stream a layer', positiveInt, '30000'),
  KCR_OCI_LAYOUT_DIR: v(['build-image'], 'OCI image layout directory build-image writes to when KCR_REGISTRY_URL is unset (a shared volume in a cluster)', z.string().min(1), '.state/oci-layout'),
  KCR_OCI_LAYOUT_HOST: v(
    ['build-image'],
    'Pseudo-registry host of image references into the OCI layout (<host>/<repo>@sha256:…); the simulated kubelet maps it to the layout',
    z.string().regex(/^[a-z0-9.-]+(?::\d+)?$/, 'must be a host name'),
    'kcr.local',
  ),
  KCR_IMAGE_LAYER_COMPRESSION: v(['build-image'], 'Checkpoint image layer: none (the archive as is, digest known from S3) or gzip (compressed while pushing)', z.enum(['none', 'gzip']), 'none'),
  KCR_IMAGE_PLATFORM: v(
    ['build-image'],
    "os/arch[/variant] of the checkpoint images (CRIU images are architecture-specific: the nodes' platform)",
    z.string().regex(/^[a-z0-9]+\/[a-z0-9_]+(?:\/[a-z0-9]+)?$/, 'must be os/arch[/variant]'),
    'linux/amd64',
  ),
  KCR_CHECKPOINT_RETENTION: v(
    ['build-image'],
    "Committed checkpoints kept per workload container: after each build, older ones leave S3 and their images the registry (blobs until its garbage collection) or the OCI layout, except pinned ones (kcr pin) and those whose image a pod uses; a workload's kcr.io/checkpoint-retention annotation overrides it; 0 no count limit",
    nonNegativeInt,
    '10',
  ),
  KCR_CHECKPOINT_RETENTION_BYTES: v(
    ['build-image'],
    "Bytes of archives kept per workload container (a Kubernetes quantity: 2Gi, 500M): the newest checkpoints that fit stay (the one just built always), pinned ones are not counted; a workload's kcr.io/checkpoint-retention-bytes annotation overrides it; 0 no limit. Both limits 0: retention is off",
    quantityBytes,
    '0',
  ),
  KCR_RESTORE_WINDOW_SECONDS: v(['restore-pod'], 'A restored container that fails again within this many seconds blames its checkpoint (loop guard)', positiveInt, '120'),
  KCR_RESTORE_MAX_ATTEMPTS: v(['restore-pod'], 'Checkpoints tried for one failure before a cold start from the original image', positiveInt, '2'),
} satisfies Record<string, EnvVar>;

type EnvName = keyof typeof ENV;
type EnvValues<K extends EnvName> = { [N in K]: z.infer<(typeof ENV)[N]['schema']> };

/** Reads and validates the named variables; throws a ConfigError naming every bad one. */
export function readEnv<K extends EnvName>(names: readonly K[], source: NodeJS.ProcessEnv = process.env): EnvValues<K> {
  const out: Partial<Record<EnvName, unknown>> = {};
  const problems: string[] = [];
  for (const name of names) {
    const spec: EnvVar = ENV[name];
    const raw = source[name] === undefined || source[name] === '' ? spec.default : source[name];
    const result = spec.schema.safeParse(raw);
    if (result.success) out[name] = result.data;
    else problems.push(`${name}=${raw === undefined ? '(unset)' : JSON.stringify(raw)}: ${result.error.issues.map((i) => i.message).join('; ')}`);
  }
  if (problems.length) throw new ConfigError(`invalid configuration: ${problems.join(', ')}`);
  return out as EnvValues<K>;
}
