// Each simulated node's kubelet on its own HTTPS port, as a real kubelet serves
// 10250: a serving certificate from the cluster's kubelet CA (kubelet-tls.ts), a
// static token of its own (user system:node:<node>, group system:nodes) with which it
// calls the API server's TokenReview and SubjectAccessReview over HTTPS, as
// --authentication-token-webhook and --authorization-mode=Webhook make it do.
// The API server's node proxy calls these ports too, as kube-apiserver-kubelet-client
// (a client certificate in kubeadm; a static token here); what that identity may do
// with /checkpoint stays the cluster's setApiServerKubeletCheckpointPermission switch.

import { writeFileSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { ObjectApi } from '../api.js';
import { KubeletAuthenticator, type AuthTtl } from '../kubelet/auth.js';
import { listenKubeletHttps, type KubeletHttpsServer } from '../kubelet/https-server.js';
import type { ResourceRegistry } from '../resources.js';
import type { Identities } from '../server/identities.js';
import type { UserInfo } from '../server/rbac.js';
import { isRecord } from '../types.js';
import { ApiError } from '../errors.js';
import type { ProxyResponse } from '../server/node-backend.js';
import type { KubeletTransport, NodeKubelets } from './kubelets.js';
import { kubeletTls } from './kubelet-tls.js';

/** The user the API server calls kubelets as (kubeadm's apiserver-kubelet-client certificate). */
const API_SERVER_KUBELET_CLIENT = 'kube-apiserver-kubelet-client';
const METHOD_OF: Record<string, string> = { create: 'POST', get: 'GET', update: 'PUT', patch: 'PATCH', delete: 'DELETE' };

export interface KubeletServing {
  urls: Map<string, string>;
  /** The node proxy's hop: the API server calling a kubelet's port as kube-apiserver-kubelet-client. */
  proxy: KubeletTransport;
  caPem: string;
  caFile: string;
  close(): Promise<void>;
}

/** What every kubelet needs of the API server: the webhook calls (in kubeadm clusters the system:node role and the Node authorizer grant them). */
export function seedKubeletRbac(api: ObjectApi, registry: ResourceRegistry): void {
  const role = registry.find('rbac.authorization.k8s.io', 'v1', 'clusterroles')!;
  const binding = registry.find('rbac.authorization.k8s.io', 'v1', 'clusterrolebindings')!;
  api.create(role, undefined, {
    metadata: { name: 'system:node' },
    rules: [
      { apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] },
      { apiGroups: ['authorization.k8s.io'], resources: ['subjectaccessreviews', 'localsubjectaccessreviews'], verbs: ['create'] },
    ],
  });
  api.create(binding, undefined, {
    metadata: { name: 'system:node' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:node' },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'system:nodes' }],
  });
}

function post(agent: https.Agent, url: string, token: string, body: unknown): Promise<Record<string, unknown>> {
  const data = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method: 'POST', agent, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode !== 201) return reject(new Error(`POST ${url}: HTTP ${res.statusCode}: ${text}`));
        try {
          const parsed: unknown = JSON.parse(text);
          resolve(isRecord(parsed) ? parsed : {});
        } catch (err) {
          reject(new Error(`POST ${url}: not JSON: ${String(err)}`));
        }
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(data);
  });
}

export async function serveKubelets(
  kubelets: NodeKubelets,
  nodes: readonly string[],
  opts: { apiHttpsUrl: string; apiCa: Buffer; identities: Identities; stateDir: string; ttl?: AuthTtl },
): Promise<KubeletServing> {
  const tls = await kubeletTls(nodes);
  const caFile = join(opts.stateDir, 'kubelet-ca.crt');
  writeFileSync(caFile, tls.caPem);
  const agent = new https.Agent({ keepAlive: true, ca: opts.apiCa });
  // The API server's client to the kubelets: trusts their CA, one keep-alive pool.
  const kubeletAgent = new https.Agent({ keepAlive: true, ca: tls.caPem });
  const apiServerToken = randomBytes(24).toString('hex');
  opts.identities.addStatic(apiServerToken, { username: API_SERVER_KUBELET_CLIENT, groups: ['system:masters'] });
  const servers: KubeletHttpsServer[] = [];
  const urls = new Map<string, string>();
  try {
    for (const node of nodes) {
      const token = randomBytes(24).toString('hex');
      opts.identities.addStatic(token, { username: `system:node:${node}`, groups: ['system:nodes'] });
      const auth = new KubeletAuthenticator(
        node,
        {
          async review(t) {
            const r = await post(agent, `${opts.apiHttpsUrl}/apis/authentication.k8s.io/v1/tokenreviews`, token, { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token: t } });
            const status = isRecord(r.status) ? r.status : {};
            if (status.authenticated !== true || !isRecord(status.user)) return undefined;
            const u = status.user;
            const user: UserInfo = { username: String(u.username ?? ''), groups: Array.isArray(u.groups) ? u.groups.map(String) : [] };
            if (typeof u.uid === 'string') user.uid = u.uid;
            return user;
          },
          async allowed(user, verb, name, subresource) {
            const r = await post(agent, `${opts.apiHttpsUrl}/apis/authorization.k8s.io/v1/subjectaccessreviews`, token, {
              apiVersion: 'authorization.k8s.io/v1',
              kind: 'SubjectAccessReview',
              spec: { user: user.username, groups: user.groups, ...(user.uid ? { uid: user.uid } : {}), resourceAttributes: { verb, group: '', version: 'v1', resource: 'nodes', subresource, name } },
            });
            return isRecord(r.status) && r.status.allowed === true;
          },
        },
        opts.ttl,
      );
      const kl = kubelets.of(node);
      const server = await listenKubeletHttps({
        tls: tls.serving.get(node)!,
        auth,
        isDown: () => kl.down,
        // Proxied calls keep the API server identity's own checkpoint permission (Kubelet.apiServerMayCheckpoint).
        serve: (req, user) => (user === API_SERVER_KUBELET_CLIENT ? kl.serve(req) : kl.serveDirect(req)),
      });
      servers.push(server);
      urls.set(node, server.url);
    }
  } catch (err) {
    await Promise.all(servers.map((s) => s.close()));
    agent.destroy();
    kubeletAgent.destroy();
    throw err;
  }
  const proxy: KubeletTransport = (node, req) =>
    new Promise<ProxyResponse>((resolve, reject) => {
      const base = urls.get(node);
      if (!base) return reject(new ApiError(404, 'NotFound', `nodes "${node}" not found`));
      const query = req.query.toString();
      const r = https.request(
        `${base}${req.path}${query ? `?${query}` : ''}`,
        { method: METHOD_OF[req.method] ?? req.method.toUpperCase(), agent: kubeletAgent, headers: { authorization: `Bearer ${apiServerToken}`, 'content-length': req.body.length } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 502, contentType: String(res.headers['content-type'] ?? 'text/plain'), body: Buffer.concat(chunks) }));
          res.on('error', (err) => reject(new ApiError(503, 'ServiceUnavailable', `error trying to reach service: ${err.message}`)));
        },
      );
      r.on('error', (err) => reject(new ApiError(503, 'ServiceUnavailable', `error trying to reach service: ${err.message}`)));
      r.end(req.body);
    });
  return {
    urls,
    proxy,
    caPem: tls.caPem,
    caFile,
    close: async () => {
      await Promise.all(servers.map((s) => s.close()));
      agent.destroy();
      kubeletAgent.destroy();
    },
  };
}
