// What each HTTP answer to a kubelet checkpoint call means
// (functions/request-checkpoint/kubelet-outcome.ts): transient ones are
// retried by the broker, permanent ones become checkpoint.failed with a reason
// that says what to fix.
import { describe, expect, it } from 'vitest';
import { classifyKubeletFailure } from '../../functions/request-checkpoint/kubelet-outcome.js';

const status = (message: string, code: number) => JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', message, code });

describe('classifyKubeletFailure', () => {
  it.each([
    {
      what: 'the kubelet refusing the API server (403, kube-apiserver-kubelet-client)',
      code: 403,
      body: 'Forbidden (user=kube-apiserver-kubelet-client, verb=create, resource=nodes, subresource=checkpoint)',
      reason: /^the kubelet refused the API server \(HTTP 403: Forbidden \(user=kube-apiserver-kubelet-client.*grant the user kube-apiserver-kubelet-client "create" on "nodes\/checkpoint"/,
    },
    {
      what: 'the kubelet refusing the API server (401, nodes/checkpoint named)',
      code: 401,
      body: 'Unauthorized: nodes/checkpoint',
      reason: /^the kubelet refused the API server \(HTTP 401/,
    },
    {
      what: 'the API server refusing kcr (403 Status)',
      code: 403,
      body: status('nodes "node-a" is forbidden: User "system:serviceaccount:kcr-system:request-checkpoint" cannot create resource "nodes/proxy"', 403),
      reason: /^the API server refused kcr \(HTTP 403: nodes "node-a" is forbidden: .*\); fix: grant request-checkpoint's ServiceAccount "create" on "nodes\/proxy"/,
    },
    {
      what: 'the API server refusing kcr (401)',
      code: 401,
      body: status('Unauthorized', 401),
      reason: /^the API server refused kcr \(HTTP 401: Unauthorized\)/,
    },
    {
      what: 'the feature gate off or the container gone (404)',
      code: 404,
      body: '404 page not found',
      reason: /^the kubelet answered 404: the ContainerCheckpoint feature gate is off on the node, or the container is gone \(404 page not found\)$/,
    },
    {
      what: 'the runtime failing to checkpoint (500, its text)',
      code: 500,
      body: 'checkpointing container "app" failed: criu failed: type NOTIFY errno 0',
      reason: /^the container runtime failed to checkpoint \(HTTP 500: checkpointing container "app" failed: criu failed/,
    },
    { what: 'a 400', code: 400, body: status('bad request', 400), reason: /^unexpected answer HTTP 400: bad request$/ },
    { what: 'a 409', code: 409, body: 'conflict', reason: /^unexpected answer HTTP 409: conflict$/ },
    { what: 'a redirect', code: 302, body: '', reason: /^unexpected answer HTTP 302: \(empty body\)$/ },
  ])('permanent: $what', ({ code, body, reason }) => {
    const outcome = classifyKubeletFailure(code, body, 'apiserver-proxy');
    expect(outcome.transient).toBe(false);
    expect(outcome.reason).toMatch(reason);
  });

  it.each([
    { code: 429, body: status('too many requests', 429), reason: 'the API server answered 429: too many requests' },
    { code: 502, body: 'Bad Gateway', reason: 'the API server answered 502: Bad Gateway' },
    { code: 503, body: status('the server is currently unable to handle the request', 503), reason: 'the API server answered 503: the server is currently unable to handle the request' },
    { code: 504, body: '', reason: 'the API server answered 504: (empty body)' },
  ])('transient: HTTP $code', ({ code, body, reason }) => {
    expect(classifyKubeletFailure(code, body, 'apiserver-proxy')).toEqual({ transient: true, reason });
  });

  it('quotes a long body only in part', () => {
    const outcome = classifyKubeletFailure(500, `runtime error: ${'x'.repeat(2_000)}`, 'apiserver-proxy');
    expect(outcome.reason.length).toBeLessThan(700);
  });

  it('takes the message out of a Status body, and blank text as empty', () => {
    expect(classifyKubeletFailure(404, status('pods "cart" not found', 404), 'apiserver-proxy').reason).toContain('(pods "cart" not found)');
    expect(classifyKubeletFailure(404, '  \n', 'apiserver-proxy').reason).toContain('((empty body))');
  });

  it.each([
    {
      code: 403,
      body: 'Forbidden (user=system:serviceaccount:kcr-system:node-agent, verb=create, resource=nodes, subresource(s)=[checkpoint])\n',
      reason: /^the kubelet refused the node-agent \(HTTP 403: Forbidden \(user=system:serviceaccount:kcr-system:node-agent.*ClusterRole kcr-node-agent/,
    },
    { code: 401, body: 'Unauthorized', reason: /^the kubelet did not accept the node-agent's ServiceAccount token \(HTTP 401: Unauthorized\)/ },
  ])('through the node-agent, $code names the node-agent ServiceAccount, not nodes/proxy', ({ code, body, reason }) => {
    const outcome = classifyKubeletFailure(code, body, 'node-agent');
    expect(outcome.transient).toBe(false);
    expect(outcome.reason).toMatch(reason);
    expect(outcome.reason).not.toContain('nodes/proxy');
  });

  it('through the proxy, the current kubelet wording (subresource(s)=[checkpoint]) is the API server identity', () => {
    expect(classifyKubeletFailure(403, 'Forbidden (user=kube-apiserver-kubelet-client, verb=create, resource=nodes, subresource(s)=[checkpoint])', 'apiserver-proxy').reason).toMatch(
      /the kubelet refused the API server/,
    );
  });
});
