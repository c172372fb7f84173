// The doctor's least-privilege checks (issue 16):
// - per node, the node-agent's GET /kubelet-check: can the agent reach its own
//   kubelet, and does the kubelet let the agent's ServiceAccount create
//   nodes/checkpoint (node-agent/kubelet-check.ts); the node-agents are found as
//   the functions find them (KCR_NODE_AGENT_URLS / _URL_TEMPLATE / _SELECTOR, else
//   the DaemonSet's pods) and called with the kcr-node-agent-token Secret;
// - which kcr ServiceAccounts may use nodes/proxy (which also opens /run and
//   /exec on every kubelet), asked of the API server as SubjectAccessReviews.
import { AuthorizationV1Api, CustomObjectsApi, type V1ServiceAccount } from '@kubernetes/client-node';
import { nodeAgentLocator, nodeAgentLocatorFromEnv, nodeAgentPods, type NodeAgentLocator } from '../functions/core/node-agent/locator.js';
import { readEnv } from '../functions/core/runtime/config.js';
import { errorMessage } from '../functions/core/runtime/errors.js';
import { tokenGetter } from '../functions/core/runtime/token.js';
import type { KubeletAccess, KubeletCheck } from '../node-agent/kubelet-check.js';
import type { CommandContext } from './context.js';
import type { CheckResult } from './doctor.js';
import { KCR_NAMESPACE } from './settings.js';

const CHECK = 'node-agent-kubelet';
const NODE_AGENT_TOKEN_SECRET = 'kcr-node-agent-token';
const NODE_AGENT_SA = `${KCR_NAMESPACE}/node-agent`;
/** Longer than the agent's own 10 s wait for its kubelet. */
const AGENT_TIMEOUT_MS = 15_000;

/** One line per node from the node-agent's /kubelet-check answer. */
export function kubeletAccessCheck(node: string, r: KubeletCheck): CheckResult {
  const head = `node-agent → kubelet on ${node}`;
  const status = r.kubeletStatus === undefined ? '' : ` (HTTP ${r.kubeletStatus}: ${r.detail})`;
  switch (r.access) {
    case 'authorized':
      return { check: CHECK, target: node, result: 'pass', detail: `${head}: reachable, authorized for nodes/checkpoint` };
    case 'no-checkpoint-api':
      return {
        check: CHECK,
        target: node,
        result: 'fail',
        detail: `${head}: reachable, authorized, but the kubelet has no /checkpoint endpoint (the ContainerCheckpoint feature gate is off)`,
        fix: 'set featureGates: {ContainerCheckpoint: true} in the kubelet configuration and restart the kubelet',
      };
    case 'unauthenticated':
      return {
        check: CHECK,
        target: node,
        result: 'fail',
        detail: `${head}: reachable, but the kubelet rejected the node-agent's ServiceAccount token${status}`,
        fix: `check the DaemonSet's kubelet-identity projected token volume (manifests/node-agent.yaml, KCR_KUBELET_TOKEN_FILE) and that the kubelet authenticates bearer tokens (authentication.webhook.enabled: true)`,
      };
    case 'forbidden':
      return {
        check: CHECK,
        target: node,
        result: 'fail',
        detail: `${head}: reachable, but ServiceAccount ${NODE_AGENT_SA} may not create nodes/checkpoint${status}`,
        fix: 'grant it with ClusterRole kcr-node-agent and its ClusterRoleBinding: kubectl apply -f manifests/node-agent.yaml (the kubelet caches a denial for 30 s)',
      };
    case 'unreachable':
      return {
        check: CHECK,
        target: node,
        result: 'fail',
        detail: `${head}: unreachable at ${r.kubelet}: ${r.detail}`,
        fix: "allow egress from the node-agent pods to their node's IP on 10250 (NetworkPolicy, security groups), check that KCR_KUBELET_URL uses status.hostIP and the kubelet's serving CA (KCR_KUBELET_CA_FILE); if pods can never reach 10250, use manifests/options/apiserver-proxy",
      };
    case 'error':
      return {
        check: CHECK,
        target: node,
        result: 'fail',
        detail: `${head}: the kubelet at ${r.kubelet} answered${status}`,
        fix: "check the kubelet's webhook authentication and authorization to the API server (journalctl -u kubelet)",
      };
  }
}

/** The node-agent's own refusal or silence, which says nothing yet about its kubelet. */
export function agentAnswerCheck(node: string, url: string, status: number, body: string): CheckResult {
  const detail = `node-agent ${url} answered ${status}: ${body.trim().slice(0, 200)}`;
  if (status === 401)
    return { check: CHECK, target: node, result: 'fail', detail, fix: `give kcr doctor the node-agents' token: Secret ${KCR_NAMESPACE}/${NODE_AGENT_TOKEN_SECRET}, or KCR_NODE_AGENT_TOKEN(_FILE)` };
  if (status === 501) return { check: CHECK, target: node, result: 'fail', detail, fix: 'set KCR_KUBELET_URL on the node-agent (manifests/node-agent.yaml)' };
  if (status === 404) return { check: CHECK, target: node, result: 'fail', detail, fix: 'upgrade the node-agent: it has no /kubelet-check' };
  return { check: CHECK, target: node, result: 'fail', detail, fix: `kubectl -n ${KCR_NAMESPACE} logs daemonset/node-agent` };
}

function agentLocator(ctx: CommandContext, selector: string): NodeAgentLocator {
  const env = ctx.io.env;
  if (env.KCR_NODE_AGENT_URLS || env.KCR_NODE_AGENT_URL_TEMPLATE || env.KCR_NODE_AGENT_SELECTOR) return nodeAgentLocatorFromEnv(env, ctx.kube);
  const c = readEnv(['KCR_NODE_AGENT_NAMESPACE', 'KCR_NODE_AGENT_PORT'], env);
  return nodeAgentLocator({ discover: nodeAgentPods(ctx.kube, { namespace: c.KCR_NODE_AGENT_NAMESPACE, selector, port: c.KCR_NODE_AGENT_PORT }) });
}

async function agentToken(ctx: CommandContext): Promise<string> {
  const c = readEnv(['KCR_NODE_AGENT_TOKEN', 'KCR_NODE_AGENT_TOKEN_FILE'], ctx.io.env);
  if (c.KCR_NODE_AGENT_TOKEN || c.KCR_NODE_AGENT_TOKEN_FILE) return tokenGetter({ token: c.KCR_NODE_AGENT_TOKEN, tokenFile: c.KCR_NODE_AGENT_TOKEN_FILE })();
  const secret = await ctx.kube.core.readNamespacedSecret({ namespace: KCR_NAMESPACE, name: NODE_AGENT_TOKEN_SECRET });
  const token = Buffer.from(secret.data?.token ?? '', 'base64')
    .toString('utf8')
    .trim();
  if (!token) throw new Error(`Secret ${KCR_NAMESPACE}/${NODE_AGENT_TOKEN_SECRET} has no "token"`);
  return token;
}

const ACCESS: readonly KubeletAccess[] = ['authorized', 'no-checkpoint-api', 'unauthenticated', 'forbidden', 'unreachable', 'error'];

/** The agent's answer, when it is a KubeletCheck (an agent of another version may answer otherwise). */
export function parseKubeletCheck(body: string): KubeletCheck | undefined {
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch {
    return undefined;
  }
  const r = v as Partial<KubeletCheck> | null;
  if (typeof r !== 'object' || r === null || typeof r.kubelet !== 'string' || typeof r.detail !== 'string' || !ACCESS.includes(r.access as KubeletAccess)) return undefined;
  return { kubelet: r.kubelet, access: r.access as KubeletAccess, detail: r.detail, ...(typeof r.kubeletStatus === 'number' ? { kubeletStatus: r.kubeletStatus } : {}) };
}

/** One line per node: the node-agent's reach to its kubelet and its nodes/checkpoint authorization. */
export async function nodeAgentKubeletChecks(ctx: CommandContext, nodes: string[], selector: string): Promise<CheckResult[]> {
  let token: string;
  let locate: NodeAgentLocator;
  try {
    token = await agentToken(ctx);
    locate = agentLocator(ctx, selector);
  } catch (err) {
    return [
      {
        check: CHECK,
        target: KCR_NAMESPACE,
        result: 'warn',
        detail: `not checked: ${errorMessage(err)}`,
        fix: `read access to Secret ${KCR_NAMESPACE}/${NODE_AGENT_TOKEN_SECRET}, or set KCR_NODE_AGENT_TOKEN(_FILE)`,
      },
    ];
  }
  const doFetch = ctx.io.fetch ?? fetch;
  return Promise.all(
    nodes.map(async (node): Promise<CheckResult> => {
      let url: string;
      try {
        url = await locate(node);
      } catch (err) {
        return { check: CHECK, target: node, result: 'fail', detail: `no node-agent to ask: ${errorMessage(err)}`, fix: `kubectl -n ${KCR_NAMESPACE} describe daemonset node-agent` };
      }
      let res: Response;
      try {
        res = await doFetch(`${url}/kubelet-check`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(AGENT_TIMEOUT_MS) });
      } catch (err) {
        // The doctor's own vantage point, not kcr's: the functions call the agents from inside the cluster.
        return {
          check: CHECK,
          target: node,
          result: 'warn',
          detail: `not checked: cannot reach the node-agent at ${url} from here: ${errorMessage(err)}`,
          fix: `run kcr doctor where the node-agents' pod IPs are reachable and NetworkPolicy ${KCR_NAMESPACE}/kcr-node-agent lets it in (it admits store-artifact and request-checkpoint only), or set KCR_NODE_AGENT_URLS / KCR_NODE_AGENT_URL_TEMPLATE`,
        };
      }
      const body = await res.text();
      if (res.status !== 200) return agentAnswerCheck(node, url, res.status, body);
      const check = parseKubeletCheck(body);
      return check ? kubeletAccessCheck(node, check) : agentAnswerCheck(node, url, res.status, `not a kubelet check: ${body}`);
    }),
  );
}

const SA_GROUPS = (namespace: string) => ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, 'system:authenticated'];
/** create reaches POST /run and /exec; get the websocket upgrades of /exec and /attach. */
const PROXY_VERBS = ['create', 'get'];

/** The kcr ServiceAccounts that may use nodes/proxy: a warning each, unless it is request-checkpoint and the proxy route is configured. */
export function nodesProxyCheck(holders: { account: string; verbs: string[] }[], via: string): CheckResult[] {
  const allowed = (account: string) => via === 'apiserver-proxy' && account === `${KCR_NAMESPACE}/request-checkpoint`;
  const flagged = holders.filter((h) => !allowed(h.account));
  if (flagged.length === 0)
    return [
      {
        check: 'nodes-proxy',
        target: KCR_NAMESPACE,
        result: 'pass',
        detail: holders.length ? `only request-checkpoint may use nodes/proxy (KCR_CHECKPOINT_VIA=apiserver-proxy)` : 'no kcr ServiceAccount may use nodes/proxy',
      },
    ];
  return flagged.map((h) => ({
    check: 'nodes-proxy',
    target: h.account,
    result: 'warn',
    detail: `may ${h.verbs.join(', ')} nodes/proxy: every endpoint of every kubelet (/run, /exec, /attach)${via === 'apiserver-proxy' ? '' : '; with KCR_CHECKPOINT_VIA=node-agent (the default) no kcr identity needs it'}`,
    fix: `remove nodes/proxy from the roles bound to ${h.account} (kubectl get clusterrolebindings,rolebindings -A -o wide | grep ${h.account.split('/')[1] ?? ''}); checkpoints need only nodes/checkpoint, held by ${NODE_AGENT_SA}`,
  }));
}

/** KCR_CHECKPOINT_VIA as request-checkpoint gets it: the CLI's env (local mode), else the Knative Service's container env. */
async function checkpointVia(ctx: CommandContext): Promise<string> {
  if (ctx.io.env.KCR_CHECKPOINT_VIA) return ctx.io.env.KCR_CHECKPOINT_VIA;
  let service: unknown;
  try {
    const custom = ctx.kube.kubeConfig.makeApiClient(CustomObjectsApi);
    service = await custom.getNamespacedCustomObject({ group: 'serving.knative.dev', version: 'v1', namespace: KCR_NAMESPACE, plural: 'services', name: 'request-checkpoint' });
  } catch {
    // Not installed (or the local mode): the default route.
  }
  type Env = { name?: string; value?: string }[];
  const containers = (service as { spec?: { template?: { spec?: { containers?: { env?: Env }[] } } } } | undefined)?.spec?.template?.spec?.containers ?? [];
  return containers.flatMap((c) => c.env ?? []).find((e) => e.name === 'KCR_CHECKPOINT_VIA')?.value ?? 'node-agent';
}

/** Asks the API server, as SubjectAccessReviews, which kcr ServiceAccounts may use nodes/proxy. */
export async function nodesProxyChecks(ctx: CommandContext): Promise<CheckResult[]> {
  const authz = ctx.kube.kubeConfig.makeApiClient(AuthorizationV1Api);
  let accounts: V1ServiceAccount[];
  try {
    accounts = (await ctx.kube.core.listNamespacedServiceAccount({ namespace: KCR_NAMESPACE })).items;
  } catch (err) {
    return [{ check: 'nodes-proxy', target: KCR_NAMESPACE, result: 'warn', detail: `not checked: cannot list ServiceAccounts: ${errorMessage(err)}` }];
  }
  const holders: { account: string; verbs: string[] }[] = [];
  try {
    for (const sa of accounts) {
      const name = sa.metadata?.name ?? '';
      const verbs: string[] = [];
      for (const verb of PROXY_VERBS) {
        const review = await authz.createSubjectAccessReview({
          body: {
            apiVersion: 'authorization.k8s.io/v1',
            kind: 'SubjectAccessReview',
            spec: { user: `system:serviceaccount:${KCR_NAMESPACE}:${name}`, groups: SA_GROUPS(KCR_NAMESPACE), resourceAttributes: { verb, group: '', resource: 'nodes', subresource: 'proxy' } },
          },
        });
        if (review.status?.allowed) verbs.push(verb);
      }
      if (verbs.length) holders.push({ account: `${KCR_NAMESPACE}/${name}`, verbs });
    }
  } catch (err) {
    return [
      { check: 'nodes-proxy', target: KCR_NAMESPACE, result: 'warn', detail: `not checked: SubjectAccessReview failed: ${errorMessage(err)}`, fix: 'kcr doctor needs create on subjectaccessreviews' },
    ];
  }
  return nodesProxyCheck(holders, await checkpointVia(ctx));
}
