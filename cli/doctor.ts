// `kcr doctor`: checks a cluster for what kcr needs and prints a pass/fail
// table with the fix for each failure. Exit 1 when any check fails. Each
// check reads what a real installation has: /version; a probe checkpoint call
// through each node's proxy (kubelet 404 "page not found": the
// ContainerCheckpoint gate is off; 404 "pod does not exist": on; 403 from the
// kubelet: the API server's kubelet-client lacks nodes/checkpoint; 403 from
// the API server: the caller lacks nodes/proxy); each node's runtime against
// the support matrix; each node-agent's reach to its kubelet and its
// nodes/checkpoint authorization, and which kcr identities hold nodes/proxy
// (doctor-kubelet.ts); the Broker and the Knative Services' Ready conditions;
// a ready node-agent pod on every node; S3 with the resolved credentials; the
// registry's /v2/ and its pull secret.
import { ApiException, CustomObjectsApi, VersionApi, type V1Node } from '@kubernetes/client-node';
import { statusMessage } from '../functions/core/kubernetes/errors.js';
import type { Command } from 'commander';
import { FUNCTIONS } from '../functions/catalog.js';
import { errorMessage } from '../functions/core/runtime/errors.js';
import { runtimeSupport } from '../functions/restore-pod/runtime-support.js';
import { addKubeFlags } from './kube.js';
import { nodeAgentKubeletChecks, nodesProxyChecks } from './doctor-kubelet.js';
import { addSettingsFlags, commandContext, type CommandContext } from './context.js';
import { CONFIG_MAP, KCR_NAMESPACE } from './settings.js';
import { API_VERSION, examples, printOne, table } from './output.js';
import type { CliIo } from './io.js';

/** ContainerCheckpoint is beta and on by default since Kubernetes 1.30 (KEP-2008). */
const MIN_MINOR = 30;
const MIN_KNATIVE_MINOR = 15;
const PROBE = { namespace: KCR_NAMESPACE, pod: 'kcr-doctor-probe', container: 'probe' };
const NODE_AGENT_SELECTOR = 'app.kubernetes.io/part-of=kcr,app.kubernetes.io/component=node-agent';
const REGISTRY_SECRET = 'kcr-registry';

export type Result = 'pass' | 'fail' | 'warn';

export interface CheckResult {
  check: string;
  target: string;
  result: Result;
  detail: string;
  fix?: string;
}

const EXAMPLES = `
Examples:
  # check the current context's cluster
  %s doctor

  # as JSON, for CI
  %s doctor -o json`;

export function addDoctorCommand(program: Command, io: CliIo): void {
  const cmd = program
    .command('doctor')
    .description('check the cluster for what kcr needs: checkpoint API, runtimes, node-agent → kubelet access, nodes/proxy grants, Knative, node-agents, S3, registry (exit 1 on a failure)')
    .addHelpText('after', examples(io, EXAMPLES))
    .action(async (_opts: object, c: Command) => doctor(commandContext(io, c)));
  addSettingsFlags(addKubeFlags(cmd, { output: true }));
}

const pass = (check: string, target: string, detail: string): CheckResult => ({ check, target, result: 'pass', detail });
const fail = (check: string, target: string, detail: string, fix: string): CheckResult => ({ check, target, result: 'fail', detail, fix });

/** What /version's gitVersion means for kcr. */
export function versionCheck(gitVersion: string): CheckResult {
  const m = /^v?(\d+)\.(\d+)/.exec(gitVersion);
  if (!m) return fail('kubernetes', 'api-server', `version ${JSON.stringify(gitVersion)} not understood`, 'kcr needs Kubernetes ≥ 1.30');
  const ok = Number(m[1]) > 1 || Number(m[2]) >= MIN_MINOR;
  return ok ? pass('kubernetes', 'api-server', gitVersion) : fail('kubernetes', 'api-server', `${gitVersion}: the kubelet checkpoint API is beta from 1.30`, 'upgrade to Kubernetes ≥ 1.30');
}

/** Knative's release manifests label their namespace with the version; kcr needs ≥ 1.15 (the Triggers' `filters`). */
export function knativeVersionCheck(component: string, version: string | undefined): CheckResult {
  const m = /^v?(\d+)\.(\d+)/.exec(version ?? '');
  if (!m) return { check: component, target: component, result: 'warn', detail: `version not known (namespace label app.kubernetes.io/version: ${JSON.stringify(version ?? null)})` };
  return Number(m[1]) > 1 || Number(m[2]) >= MIN_KNATIVE_MINOR
    ? pass(component, component, `v${m[1]}.${m[2]}`)
    : fail(component, component, `${version}: kcr's Triggers use filters, GA in Knative 1.15`, `upgrade ${component} to ≥ 1.15`);
}

/** What the probe checkpoint call's answer says about the node's checkpoint API. */
export function probeCheck(node: string, status: number, body: string): CheckResult {
  const name = 'checkpoint-api';
  if (status === 404 && /404 page not found/.test(body))
    return fail(
      name,
      node,
      'the kubelet has no /checkpoint endpoint: the ContainerCheckpoint feature gate is off',
      'set featureGates: {ContainerCheckpoint: true} in the kubelet configuration and restart the kubelet',
    );
  if (status === 404) return pass(name, node, 'the kubelet checkpoint endpoint answers (probe pod not found, as expected)');
  if (status === 403 && /kube-apiserver-kubelet-client|subresource=checkpoint/.test(body))
    return fail(
      name,
      node,
      "the API server's kubelet client may not create nodes/checkpoint, so this probe (through the API server) cannot see the endpoint; kcr's default route, node-agent → kubelet, does not need it",
      'kubectl apply -f manifests/options/apiserver-proxy/kubelet-checkpoint-rbac.yaml (the proxy route needs it; with the default route, read the node-agent → kubelet lines instead)',
    );
  if (status === 403)
    return fail(
      name,
      node,
      `forbidden by the API server: ${firstLine(body)}`,
      'run doctor as a user with create on nodes/proxy (only this probe needs it; no kcr identity does by default), or read the node-agent → kubelet lines, which reach the same endpoint',
    );
  if (status === 401) return fail(name, node, 'unauthorized: the kubeconfig credentials were refused', 'refresh your kubeconfig credentials');
  return fail(name, node, `HTTP ${status}: ${firstLine(body)}`, 'check the kubelet on this node (journalctl -u kubelet)');
}

/** The node's container runtime against the support matrix (functions/restore-pod/runtime-support.ts). */
export function runtimeCheck(node: V1Node): CheckResult {
  const name = node.metadata?.name ?? '';
  const version = node.status?.nodeInfo?.containerRuntimeVersion ?? '';
  const support = runtimeSupport(version);
  if (support.restores) return pass('node-runtime', name, version || support.why);
  return fail('node-runtime', name, support.why, 'run CRI-O (checkpoint_restore enabled) or containerd 2.1–2.3 with restore enabled on nodes that run opted-in workloads');
}

function firstLine(text: string): string {
  const t = text.trim();
  try {
    const status = JSON.parse(t) as { message?: unknown };
    if (typeof status.message === 'string') return status.message;
  } catch {
    // not a Status: plain text
  }
  return t.split('\n')[0]?.slice(0, 200) ?? '';
}

type Condition = { type?: string; status?: string; reason?: string; message?: string };

function readyOf(obj: unknown): Condition | undefined {
  const conditions = (obj as { status?: { conditions?: Condition[] } } | undefined)?.status?.conditions;
  return conditions?.find((c) => c.type === 'Ready');
}

async function attempt(check: string, target: string, fix: string, run: () => Promise<CheckResult | CheckResult[]>): Promise<CheckResult[]> {
  try {
    const r = await run();
    return Array.isArray(r) ? r : [r];
  } catch (err) {
    return [fail(check, target, err instanceof ApiException ? `HTTP ${err.code}: ${statusMessage(err.body)}` : errorMessage(err), fix)];
  }
}

async function doctor(ctx: CommandContext): Promise<void> {
  const kc = ctx.kube.kubeConfig;
  const results: CheckResult[] = [];
  results.push(
    ...(await attempt('kubernetes', 'api-server', 'check the kubeconfig: the API server must be reachable', async () => versionCheck((await kc.makeApiClient(VersionApi).getCode()).gitVersion))),
  );
  const nodes = (await ctx.kube.core.listNode()).items;
  for (const node of nodes) {
    const name = node.metadata?.name ?? '';
    results.push(
      ...(await attempt('checkpoint-api', name, 'check the kubelet and the node proxy', async () => {
        const r = await ctx.kube.checkpoint(name, PROBE.namespace, PROBE.pod, PROBE.container, 1);
        return r.ok ? pass('checkpoint-api', name, 'answered') : probeCheck(name, r.status, r.body);
      })),
    );
    results.push(runtimeCheck(node));
  }
  results.push(
    ...(await nodeAgentKubeletChecks(
      ctx,
      nodes.map((n) => n.metadata?.name ?? ''),
      NODE_AGENT_SELECTOR,
    )),
  );
  results.push(...(await nodesProxyChecks(ctx)));
  const local = await localMode(ctx);
  if (local) results.push({ check: 'knative', target: KCR_NAMESPACE, result: 'warn', detail: `local mode: ${local}` });
  else results.push(...(await installChecks(ctx, nodes)));
  results.push(...(await s3Check(ctx)));
  results.push(...(await registryChecks(ctx, local !== undefined)));
  const failed = results.filter((r) => r.result === 'fail');
  const format = ctx.flags.output;
  if (format === 'json' || format === 'yaml') ctx.io.stdout.write(printOne({ apiVersion: API_VERSION, kind: 'DoctorReport', passed: failed.length === 0, checks: results }, format));
  else {
    ctx.io.stdout.write(
      table(
        ['CHECK', 'TARGET', 'RESULT', 'DETAIL', 'FIX'],
        results.map((r) => [r.check, r.target, r.result.toUpperCase(), r.detail, r.fix ?? '']),
      ),
    );
    const warned = results.filter((r) => r.result === 'warn').length;
    ctx.io.stdout.write(`\n${results.length - failed.length - warned} passed, ${warned} warnings, ${failed.length} failed\n`);
  }
  if (failed.length) throw new DoctorFailed(`${failed.length} of ${results.length} checks failed: ${[...new Set(failed.map((f) => f.check))].join(', ')}`);
}

/** What kcr-config says when the cluster is kcr's local mode, where Knative and the node-agents are processes, not objects. */
async function localMode(ctx: CommandContext): Promise<string | undefined> {
  try {
    return (await ctx.kube.core.readNamespacedConfigMap({ namespace: KCR_NAMESPACE, name: CONFIG_MAP })).data?.['local-mode'];
  } catch {
    return undefined;
  }
}

/** The Broker, the Knative Services and the node-agent pods of an installation (manifests/). */
async function installChecks(ctx: CommandContext, nodes: V1Node[]): Promise<CheckResult[]> {
  const custom = ctx.kube.kubeConfig.makeApiClient(CustomObjectsApi);
  const results: CheckResult[] = [];
  for (const component of ['knative-serving', 'knative-eventing']) {
    results.push(
      ...(await attempt(component, component, `install Knative ${component.slice('knative-'.length)} ≥ 1.15 (knative.dev/docs/install)`, async () => {
        const ns = await ctx.kube.core.readNamespace({ name: component });
        return knativeVersionCheck(component, ns.metadata?.labels?.['app.kubernetes.io/version']);
      })),
    );
  }
  results.push(
    ...(await attempt('broker', `${KCR_NAMESPACE}/kcr`, 'install Knative Eventing ≥ 1.15 and kubectl apply -k manifests/', async () => {
      const broker = await custom.getNamespacedCustomObject({ group: 'eventing.knative.dev', version: 'v1', namespace: KCR_NAMESPACE, plural: 'brokers', name: 'kcr' });
      const ready = readyOf(broker);
      return ready?.status === 'True'
        ? pass('broker', `${KCR_NAMESPACE}/kcr`, 'Ready')
        : fail(
            'broker',
            `${KCR_NAMESPACE}/kcr`,
            `not Ready: ${ready?.reason ?? ''} ${ready?.message ?? 'no Ready condition'}`.trim(),
            'kubectl describe broker kcr -n kcr-system (the broker class and its channel must be installed)',
          );
    })),
  );
  for (const fn of Object.keys(FUNCTIONS)) {
    results.push(
      ...(await attempt('service', `${KCR_NAMESPACE}/${fn}`, 'kubectl apply -k manifests/', async () => {
        const svc = await custom.getNamespacedCustomObject({ group: 'serving.knative.dev', version: 'v1', namespace: KCR_NAMESPACE, plural: 'services', name: fn });
        const ready = readyOf(svc);
        return ready?.status === 'True'
          ? pass('service', `${KCR_NAMESPACE}/${fn}`, 'Ready')
          : fail('service', `${KCR_NAMESPACE}/${fn}`, `not Ready: ${ready?.reason ?? ''} ${ready?.message ?? 'no Ready condition'}`.trim(), `kubectl describe ksvc ${fn} -n ${KCR_NAMESPACE}`);
      })),
    );
  }
  results.push(
    ...(await attempt('node-agent', KCR_NAMESPACE, 'kubectl apply -f manifests/node-agent.yaml', async () => {
      const pods = await ctx.kube.listPods(KCR_NAMESPACE, NODE_AGENT_SELECTOR);
      return nodes.map((node) => {
        const name = node.metadata?.name ?? '';
        const pod = pods.find((p) => p.spec?.nodeName === name && p.status?.phase === 'Running' && p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
        return pod
          ? pass('node-agent', name, `${pod.metadata?.name ?? ''} Ready`)
          : fail(
              'node-agent',
              name,
              'no ready node-agent pod on this node: its archives cannot be stored',
              'kubectl -n kcr-system describe daemonset kcr-node-agent (taints, the hostPath, the token Secret)',
            );
      });
    })),
  );
  return results;
}

/** S3 answers a listing with the settings flags, env or the cluster give. */
async function s3Check(ctx: CommandContext): Promise<CheckResult[]> {
  const settings = await ctx.settings();
  if (!settings.s3.ok) return [fail('s3', '-', settings.s3.missing, `set s3-endpoint in ConfigMap ${KCR_NAMESPACE}/${CONFIG_MAP} and the kcr-s3 Secret (manifests/secrets/generate.sh)`)];
  const s3 = settings.s3.value;
  return attempt('s3', `${s3.endpoint}/${s3.bucket}`, 'check the endpoint, the bucket and the kcr-s3 credentials', async () => {
    const store = ctx.io.openStore(s3);
    for await (const o of store.list('checkpoints/')) {
      void o;
      break;
    }
    return pass('s3', `${s3.endpoint}/${s3.bucket}`, 'listed the bucket with the configured credentials');
  });
}

/** The registry build-image pushes to answers /v2/, and the pull secret nodes use exists. */
async function registryChecks(ctx: CommandContext, local: boolean): Promise<CheckResult[]> {
  let url: string | undefined;
  try {
    url = (await ctx.kube.core.readNamespacedConfigMap({ namespace: KCR_NAMESPACE, name: CONFIG_MAP })).data?.['registry-url'];
  } catch (err) {
    return [fail('registry', '-', `cannot read ConfigMap ${KCR_NAMESPACE}/${CONFIG_MAP}: ${errorMessage(err)}`, 'kubectl apply -k manifests/ (and read access to it)')];
  }
  if (!url) return [{ check: 'registry', target: '-', result: 'warn', detail: 'no registry-url in kcr-config: build-image writes an OCI layout, which only the local mode pulls from' }];
  const out = await attempt('registry', url, 'check registry-url in kcr-config and that the registry is up', async () => {
    const res = await (ctx.io.fetch ?? fetch)(new URL('/v2/', url), { signal: AbortSignal.timeout(10_000) });
    // 401 is a registry asking for credentials: reachable.
    return res.status === 200 || res.status === 401
      ? pass('registry', url, `/v2/ answered ${res.status}`)
      : fail('registry', url, `/v2/ answered ${res.status}`, 'registry-url must name a Docker Registry HTTP API v2 endpoint');
  });
  // The local mode's simulated nodes pull from its loopback registry without credentials.
  if (local) return out;
  const secret = await attempt('pull-secret', `${KCR_NAMESPACE}/${REGISTRY_SECRET}`, `create it: manifests/secrets/generate.sh`, async () => {
    await ctx.kube.core.readNamespacedSecret({ namespace: KCR_NAMESPACE, name: REGISTRY_SECRET });
    return pass('pull-secret', `${KCR_NAMESPACE}/${REGISTRY_SECRET}`, 'present; workload namespaces need it as an imagePullSecret (or node credentials) to pull checkpoint images');
  });
  return [...out, ...secret];
}

/** Some check failed: the table says which; exit 1. */
export class DoctorFailed extends Error {
  override readonly name = 'DoctorFailed';
}
