// The simulated API server runs Knative's PingSource admission webhooks: it
// defaults an empty schedule and answers a schedule or time zone the real
// webhook refuses as the real API server relays the refusal (400 BadRequest),
// through client-node and real kubectl.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { startSimulatedCluster, type SimulatedCluster } from '../../simulator/index.js';
import { optionalBinary } from '../support/binaries.js';
import { ACCEPTED, REFUSED } from '../schedule-sync/webhook-cases.js';
import { apiError } from './helpers.js';

const NS = 'default';
const kubectlBin = optionalBinary('kubectl');
let cluster: SimulatedCluster;
let custom: CustomObjectsApi;

const coordinates = { group: 'sources.knative.dev', version: 'v1', namespace: NS, plural: 'pingsources' };
const pingSource = (name: string, spec: Record<string, unknown>) => ({
  apiVersion: 'sources.knative.dev/v1',
  kind: 'PingSource',
  metadata: { name },
  spec: { sink: { uri: 'http://broker.example/' }, ...spec },
});
const denied = (error: string) => `admission webhook "validation.webhook.eventing.knative.dev" denied the request: validation failed: ${error}`;
const exists = async (name: string) => (await custom.listNamespacedCustomObject(coordinates)).items.some((o: { metadata: { name: string } }) => o.metadata.name === name);

beforeAll(async () => {
  cluster = await startSimulatedCluster({ kubelet: { tickMs: 50 } });
  custom = cluster.kubeConfig.makeApiClient(CustomObjectsApi);
});
afterAll(async () => {
  await cluster?.stop();
});

describe('PingSource admission', () => {
  it.each(REFUSED.map((c, i) => [c.why, c, `refused-${i}`] as const))('refuses a create as the webhook would: %s', async (_, c, name) => {
    const { code, body } = await apiError(() =>
      custom.createNamespacedCustomObject({ ...coordinates, body: pingSource(name, { schedule: c.schedule, ...(c.timezone ? { timezone: c.timezone } : {}) }) }),
    );
    expect(code).toBe(400);
    expect(body).toMatchObject({ kind: 'Status', status: 'Failure', reason: 'BadRequest', code: 400, message: denied(c.error) });
    expect(await exists(name)).toBe(false);
  });

  it.each(ACCEPTED.map((c, i) => [c.why, c, `accepted-${i}`] as const))('admits %s', async (_, c, name) => {
    const created = (await custom.createNamespacedCustomObject({
      ...coordinates,
      body: pingSource(name, { schedule: c.schedule, ...(c.timezone ? { timezone: c.timezone } : {}) }),
      dryRun: 'All',
    })) as { spec: { schedule: string } };
    expect(created.spec.schedule).toBe(c.schedule);
  });

  it('defaults an empty schedule to every minute', async () => {
    const created = (await custom.createNamespacedCustomObject({ ...coordinates, body: pingSource('defaulted', {}) })) as { spec: { schedule: string } };
    expect(created.spec.schedule).toBe('* * * * *');
  });

  it('refuses an update or patch that breaks the schedule, and keeps the stored one', async () => {
    await custom.createNamespacedCustomObject({ ...coordinates, body: pingSource('changing', { schedule: '*/5 * * * *' }) });
    const patch = await apiError(() => custom.patchNamespacedCustomObject({ ...coordinates, name: 'changing', body: [{ op: 'replace', path: '/spec/schedule', value: '0 0 L * *' }] }));
    expect(patch.code).toBe(400);
    expect(patch.body.message).toBe(denied('invalid value: failed to parse int from L: strconv.Atoi: parsing "L": invalid syntax: spec.schedule'));
    const current = (await custom.getNamespacedCustomObject({ ...coordinates, name: 'changing' })) as { spec: Record<string, unknown> };
    const put = await apiError(() => custom.replaceNamespacedCustomObject({ ...coordinates, name: 'changing', body: { ...current, spec: { ...current.spec, timezone: 'Mars/Olympus' } } }));
    expect(put.body.message).toBe(denied('invalid value: provided bad location Mars/Olympus: unknown time zone Mars/Olympus: spec.timezone'));
    expect(((await custom.getNamespacedCustomObject({ ...coordinates, name: 'changing' })) as { spec: Record<string, unknown> }).spec).toMatchObject({ schedule: '*/5 * * * *' });
    expect(((await custom.getNamespacedCustomObject({ ...coordinates, name: 'changing' })) as { spec: Record<string, unknown> }).spec).not.toHaveProperty('timezone');
  });

  it("refuses a schedule that is not a string as the CRD's schema does, before any webhook", async () => {
    const { code, body } = await apiError(() => custom.createNamespacedCustomObject({ ...coordinates, body: pingSource('typed', { schedule: 5 }) }));
    expect(code).toBe(422);
    expect(body).toMatchObject({
      reason: 'Invalid',
      message: 'PingSource.sources.knative.dev "typed" is invalid: spec.schedule: Invalid value: "integer": spec.schedule in body must be of type string: "integer"',
    });
  });

  describe.skipIf(!kubectlBin)('through kubectl', () => {
    it('prints the refusal as kubectl prints a real one', async () => {
      const manifest = JSON.stringify(pingSource('kubectl-refused', { schedule: '0 0 * * 7' }));
      const child = promisify(execFile)(kubectlBin!, ['--kubeconfig', cluster.kubeconfigPath, 'create', '-f', '-'], { encoding: 'utf8' });
      child.child.stdin!.end(manifest);
      const failure = await child.then(
        () => undefined,
        (err: { stderr: string; code: number }) => err,
      );
      expect(failure?.code).toBe(1);
      expect(failure?.stderr.trim()).toBe(`Error from server (BadRequest): error when creating "STDIN": ${denied('invalid value: end of range (7) above maximum (6): 7: spec.schedule')}`);
    });
  });
});
