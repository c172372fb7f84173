// The whole kcr chain on one machine, no cluster: the simulated cluster, a
// node-agent process per node (with its own ServiceAccount token, checkpointing
// through its node's kubelet port), an S3 (Swift, s3rver or an external one), a registry (Debian's docker-registry when
// installed, its storage under the state directory and its garbage collected
// on a schedule; else an OCI layout directory), every function as its own HTTP
// server, the local broker routing by eventing/*.yaml, the ping scheduler and
// the ApiServerSources of sources/*.yaml. The functions are configured through
// the same environment variables as in a cluster.
import { mkdirSync, createWriteStream, writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { pino } from 'pino';
import { startSimulatedCluster, type SimulatedCluster, type SimulatedClusterOptions } from '../simulator/index.js';
import { PodmanEngine, type RuntimeKind } from '../simulator/podman/engine.js';
import { FUNCTIONS, type FunctionName } from '../functions/catalog.js';
import { serveFunction, type RunningFunction } from '../functions/core/runtime/server.js';
import { createLogger, type Logger } from '../functions/core/runtime/logger.js';
import { errorMessage } from '../functions/core/runtime/errors.js';
import { S3ObjectStore } from '../functions/core/storage/s3.js';
import { DEFAULT_BUCKET } from '../functions/core/storage/layout.js';
import { startLocalS3, type ExternalS3, type LocalS3, type S3Choice } from './s3-server.js';
import { applyNodeAgentIdentity, projectNodeAgentToken } from './node-agent-identity.js';
import { startNodeAgentProcess, type NodeAgentProcess } from './node-agent-process.js';
import { startRegistryServer, type RegistryServer } from './registry-server.js';
import { startLocalBroker, type LocalBroker } from './broker.js';
import { startPingScheduler, type PingScheduler } from './ping-scheduler.js';
import { startApiServerSources, type ApiServerSourceAdapter } from './apiserver-source.js';
import { brokerSinkResolver, loadSourcesDir } from './sources.js';

const LAYOUT_HOST = 'kcr.local';
const KCR_NAMESPACE = 'kcr-system';

interface StackOptions {
  /** Where everything is kept: S3 objects, the OCI layout, node checkpoint dirs, logs. */
  stateDir: string;
  nodes?: string[];
  /** `auto`: docker-registry when a binary is given and found, else the OCI layout. */
  registryBinary?: string;
  /** Extra environment for every function (e.g. KCR_RESTORE_WINDOW_SECONDS). */
  env?: Record<string, string>;
  /** Simulated kubelet timings. */
  kubelet?: SimulatedClusterOptions['kubelet'];
  podEvictionTimeoutMs?: number;
  /** Multiplies the broker's retry backoff (tests make it small). */
  backoffScale?: number;
  /** Function logs: a level and where the JSON lines go (default: one file per function under stateDir/logs). */
  logLevel?: string;
  logToStderr?: boolean;
  /** Which S3: Swift, s3rver, `auto` (Swift when installed; the default), or an external one. */
  s3?: S3Choice | ExternalS3;
  /** Where Swift keeps its rings between runs (default: under stateDir). */
  swiftRingsDir?: string;
  /** Sees every request to the S3 (the demo's upload progress); not for an external S3. */
  onS3Request?: (req: IncomingMessage, url: URL) => void;
  /** Simulated container memory per container (the checkpoint size). */
  containerDataBytes?: number;
  /**
   * How often docker-registry's garbage collection runs (stop, collect, start
   * on the same port), which frees the blobs of the images retention deleted;
   * 0 never (tests call `registry.server.collectGarbage()` themselves).
   */
  registryGcIntervalMs?: number;
  /** The kubelets' container runtime (default simulated): podman runs real containers checkpointed by CRIU. */
  runtime?: RuntimeKind;
  /** podman's storage, kept between runs so the demo images keep their IDs (default stateDir/podman). */
  podmanDir?: string;
}

/** The images the demo's pod specs name: in podman's storage, tags of the counter image built at start-up. */
export const DEMO_COUNTER_IMAGES = ['quay.io/kcr/counter:1', 'quay.io/kcr/web:1'];

/** Until collected, every layer ever pushed stays on disk (the demo's 10 s checkpoints grew it ~290 MB a minute). */
const DEFAULT_REGISTRY_GC_INTERVAL_MS = 5 * 60_000;

export interface Stack {
  cluster: SimulatedCluster;
  s3: LocalS3;
  store: S3ObjectStore;
  registry: { kind: 'docker-registry'; server: RegistryServer } | { kind: 'oci-layout'; dir: string; host: string };
  /** One node-agent process per simulated node. */
  agents: Map<string, NodeAgentProcess>;
  broker: LocalBroker;
  functions: Map<FunctionName, RunningFunction>;
  pings: PingScheduler;
  apiSources: ApiServerSourceAdapter;
  /** The environment the functions run with (the CLI uses it too). */
  env: Record<string, string>;
  /** The podman engine behind the kubelets, when the runtime is podman. */
  podman?: PodmanEngine;
  stop(): Promise<void>;
}

export async function startStack(options: StackOptions): Promise<Stack> {
  const stateDir = resolve(options.stateDir);
  const logsDir = join(stateDir, 'logs');
  mkdirSync(logsDir, { recursive: true });
  const stops: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch(() => undefined);
  };
  try {
    const layoutDir = join(stateDir, 'oci-layout');
    const registryServer = options.registryBinary ? await startRegistryServer({ binary: options.registryBinary, dir: join(stateDir, 'registry') }) : undefined;
    if (registryServer) {
      stops.push(() => registryServer.stop());
      const every = options.registryGcIntervalMs ?? DEFAULT_REGISTRY_GC_INTERVAL_MS;
      if (every > 0) stops.push(scheduleGarbageCollection(registryServer, every, fileLogger('registry')));
    }

    let podman: PodmanEngine | undefined;
    if (options.runtime === 'podman') {
      podman = await PodmanEngine.open({ dir: options.podmanDir ?? join(stateDir, 'podman'), counterAliases: DEMO_COUNTER_IMAGES });
      const engine = podman;
      stops.push(() => engine.close());
    }
    const cluster = await startSimulatedCluster({
      ...(podman ? { podman } : {}),
      stateDir: join(stateDir, 'cluster'),
      ...(options.nodes ? { nodes: options.nodes } : {}),
      kubelet: { ...options.kubelet, ...(options.containerDataBytes !== undefined ? { dataSize: options.containerDataBytes } : {}) },
      ...(options.podEvictionTimeoutMs !== undefined ? { podEvictionTimeoutMs: options.podEvictionTimeoutMs } : {}),
      imageSources: { [LAYOUT_HOST]: { kind: 'layout', dir: layoutDir } },
    });
    stops.push(() => cluster.stop());
    await cluster.kubeConfig.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: KCR_NAMESPACE } } });

    const onS3Request = options.onS3Request;
    const s3 = await startLocalS3(options.s3 ?? 'auto', {
      dir: join(stateDir, 's3'),
      ...(options.swiftRingsDir ? { ringsDir: options.swiftRingsDir } : {}),
      ...(onS3Request ? { onRequest: (req, _res, url) => onS3Request(req, url) } : {}),
    });
    stops.push(() => s3.stop());

    const token = randomBytes(24).toString('hex');
    // The agents read it from a file, as the DaemonSet reads its mounted Secret.
    const tokenFile = join(stateDir, 'node-agent-token');
    writeFileSync(tokenFile, token, { mode: 0o600 });
    // Each agent's own identity for its kubelet (nodes/checkpoint only), as the DaemonSet's projected token.
    await applyNodeAgentIdentity(cluster.kubeConfig);
    const tokenLog = fileLogger('node-agent-token');
    const kubeletTokens = new Map<string, string>();
    for (const node of cluster.nodes) {
      const file = join(stateDir, `node-agent-${node}-kubelet-token`);
      const projected = await projectNodeAgentToken(cluster.kubeConfig, file, (message) => tokenLog.error(message));
      stops.push(async () => projected.stop());
      kubeletTokens.set(node, file);
    }
    const agents = new Map<string, NodeAgentProcess>();
    const started = await Promise.all(
      cluster.nodes.map((node) =>
        startNodeAgentProcess({
          dir: cluster.checkpointDir(node),
          tokenFile,
          allowDelete: true,
          kubelet: { url: cluster.kubeletUrl(node), caFile: cluster.kubeletCaFile, tokenFile: kubeletTokens.get(node)! },
          ...(options.logToStderr ? {} : { logPath: join(logsDir, `node-agent-${node}.log`) }),
          logLevel: options.logLevel ?? 'info',
        }).then((agent) => {
          stops.push(() => agent.close());
          return [node, agent] as const;
        }),
      ),
    );
    for (const [node, agent] of started) agents.set(node, agent);

    const broker = await startLocalBroker({ ...(options.backoffScale !== undefined ? { backoffScale: options.backoffScale } : {}) });
    stops.push(() => broker.close());

    const env: Record<string, string> = {
      K_SINK: broker.url,
      KUBECONFIG: cluster.kubeconfigPath,
      KCR_S3_ENDPOINT: s3.endpoint,
      KCR_S3_ACCESS_KEY: s3.accessKey,
      KCR_S3_SECRET_KEY: s3.secretKey,
      KCR_S3_REGION: s3.region,
      KCR_S3_BUCKET: DEFAULT_BUCKET,
      KCR_NODE_AGENT_URLS: JSON.stringify(Object.fromEntries([...agents].map(([n, a]) => [n, a.url]))),
      KCR_NODE_AGENT_TOKEN: token,
      ...(registryServer ? { KCR_REGISTRY_URL: registryServer.url, KCR_REGISTRY_INSECURE: 'true' } : { KCR_OCI_LAYOUT_DIR: layoutDir, KCR_OCI_LAYOUT_HOST: LAYOUT_HOST }),
      ...options.env,
    };

    // What the manifests install for users' `kcr`/`kubectl kcr` (manifests/config.yaml, the kcr-s3 Secret), pointing at this stack: a kubeconfig is all the CLI needs.
    await installCliSettings(cluster, env);

    const functions = new Map<FunctionName, RunningFunction>();
    for (const name of Object.keys(FUNCTIONS) as FunctionName[]) {
      const handler = await FUNCTIONS[name](env);
      const running = await serveFunction(handler, { port: 0, host: '127.0.0.1', sink: broker.url, logger: fileLogger(name), emitBackoffMs: 50 });
      functions.set(name, running);
      broker.setService(name, running.url);
      broker.setService(`${KCR_NAMESPACE}/${name}`, running.url);
      stops.push(() => running.close());
    }

    const services = Object.fromEntries([...functions].map(([n, f]) => [n, f.url]));
    const resolveSink = brokerSinkResolver(broker.url, services);
    // The PingSources of sources/ (the resync) live in the cluster like any other.
    const custom = cluster.kubeConfig.makeApiClient(CustomObjectsApi);
    for (const ps of loadSourcesDir().pingSources) {
      const namespace = ps.metadata.namespace ?? KCR_NAMESPACE;
      await custom.createNamespacedCustomObject({ group: 'sources.knative.dev', version: 'v1', namespace, plural: 'pingsources', body: { ...ps, metadata: { ...ps.metadata, namespace } } });
    }
    const pings = startPingScheduler({ kubeConfig: cluster.kubeConfig, resolveSink });
    stops.push(() => pings.stop());
    const apiSources = startApiServerSources({ kubeConfig: cluster.kubeConfig, resolveSink });
    stops.push(() => apiSources.stop());
    await Promise.all([pings.synced, apiSources.synced]);

    const store = new S3ObjectStore({ endpoint: s3.endpoint, accessKey: s3.accessKey, secretKey: s3.secretKey, region: s3.region, bucket: DEFAULT_BUCKET });
    await store.ensureBucket();
    return {
      cluster,
      s3,
      store,
      registry: registryServer ? { kind: 'docker-registry', server: registryServer } : { kind: 'oci-layout', dir: layoutDir, host: LAYOUT_HOST },
      agents,
      broker,
      functions,
      pings,
      apiSources,
      env,
      ...(podman ? { podman } : {}),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }

  function fileLogger(name: string): Logger {
    const level = options.logLevel ?? 'info';
    if (options.logToStderr) return createLogger(name, level, pino.destination(2));
    return createLogger(name, level, createWriteStream(join(logsDir, `${name}.log`), { flags: 'a' }));
  }
}

/** ConfigMap kcr-system/kcr-config and Secret kcr-system/kcr-s3 as manifests/ has them, with this stack's endpoints. */
async function installCliSettings(cluster: SimulatedCluster, env: Record<string, string>): Promise<void> {
  const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
  const labels = { 'app.kubernetes.io/part-of': 'kcr' };
  const registry = env.KCR_REGISTRY_URL;
  await core.createNamespacedConfigMap({
    namespace: KCR_NAMESPACE,
    body: {
      metadata: { name: 'kcr-config', namespace: KCR_NAMESPACE, labels },
      data: {
        's3-endpoint': env.KCR_S3_ENDPOINT ?? '',
        's3-region': env.KCR_S3_REGION ?? '',
        's3-bucket': env.KCR_S3_BUCKET ?? DEFAULT_BUCKET,
        'broker-url': env.K_SINK ?? '',
        // `kcr doctor` checks no Broker, Knative Services or node-agent pods here: they are this process's.
        'local-mode': 'the local broker routes by eventing/*.yaml; the functions and node-agents run as processes (npm start), not as Knative Services and DaemonSet pods',
        ...(registry ? { 'registry-url': registry, 'registry-insecure': env.KCR_REGISTRY_INSECURE ?? 'false' } : {}),
      },
    },
  });
  await core.createNamespacedSecret({
    namespace: KCR_NAMESPACE,
    body: { metadata: { name: 'kcr-s3', namespace: KCR_NAMESPACE, labels }, data: { 'access-key': b64(env.KCR_S3_ACCESS_KEY), 'secret-key': b64(env.KCR_S3_SECRET_KEY) } },
  });
}

const b64 = (v: string | undefined) => Buffer.from(v ?? '', 'utf8').toString('base64');

/** Collects the registry's garbage every `everyMs`; returns what stops it. */
export function scheduleGarbageCollection(registry: RegistryServer, everyMs: number, log: Logger): () => Promise<void> {
  const timer = setInterval(() => {
    const started = performance.now();
    registry.collectGarbage().then(
      () => log.info({ ms: Math.round(performance.now() - started) }, `garbage collection of ${registry.host} done`),
      (err: unknown) => log.error({ err: errorMessage(err) }, `garbage collection of ${registry.host} failed: ${errorMessage(err)}`),
    );
  }, everyMs);
  timer.unref();
  return async () => clearInterval(timer);
}
