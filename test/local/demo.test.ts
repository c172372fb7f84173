// The local mode end to end: the demo's steps all happen, the archive holds
// every event that crossed the broker, and replaying an archived
// checkpoint.stored after the image was deleted rebuilds the same digest.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from '../../local/stack.js';
import { runDemo, type StepResult } from '../../local/demo.js';
import { dataOf } from '../../functions/core/runtime/cloudevents-http.js';
import { runCli } from '../../cli/run.js';
import { RegistryClient } from '../../functions/build-image/registry.js';
import { OciLayout } from '../../functions/build-image/oci-layout.js';
import type { ImageBuiltData } from '../../functions/core/contract/events.js';
import { optionalBinary } from '../support/binaries.js';
import { testRingsDir, testS3Kind } from '../support/s3.js';
import { until } from '../support/wait.js';

describe('local mode: demo, archive and replay', () => {
  let stack: Stack;
  let dir: string;
  let results: StepResult[];
  const received: { id: string; type: string; data: unknown; replayOf?: string }[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kcr-demo-'));
    const registryBinary = optionalBinary('docker-registry');
    stack = await startStack({
      stateDir: dir,
      s3: testS3Kind(),
      swiftRingsDir: `${testRingsDir()}-stack`,
      ...(registryBinary ? { registryBinary } : {}),
      kubelet: { tickMs: 100 },
      containerDataBytes: 256 * 1024,
      backoffScale: 0.05,
    });
    stack.broker.onDelivery((o) => {
      if (o.kind === 'received')
        received.push({
          id: o.event.attributes.id ?? '',
          type: o.event.attributes.type ?? '',
          data: dataOf(o.event),
          ...(o.event.attributes.kcrreplayof ? { replayOf: o.event.attributes.kcrreplayof } : {}),
        });
    });
    results = await runDemo(stack, { stepTimeoutMs: 30_000 });
    await stack.broker.idle();
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function archivedIds(): Promise<Map<string, Record<string, unknown>>> {
    const out = new Map<string, Record<string, unknown>>();
    for await (const o of stack.store.list('events/')) {
      const e = (await stack.store.getJson(o.key)) as Record<string, unknown>;
      out.set(String(e.id), e);
    }
    return out;
  }

  it('runs every step of the demo', () => {
    expect(results.filter((r) => !r.ok)).toEqual([]);
    expect(results.map((r) => r.step)).toContain('its state continues');
    expect(results.map((r) => r.step)).toContain("web-0's state continues");
  });

  it('serves each node from a node-agent process of its own, which store-artifact emptied after storing', () => {
    expect([...stack.agents.keys()].sort()).toEqual([...stack.cluster.nodes].sort());
    const pids = new Set([...stack.agents.values()].map((a) => a.pid));
    expect(pids.size).toBe(stack.cluster.nodes.length);
    expect(pids.has(process.pid)).toBe(false);
    for (const pid of pids) expect(() => process.kill(pid, 0)).not.toThrow();
    const leftover = stack.cluster.nodes.flatMap((n) => readdirSync(stack.cluster.checkpointDir(n)).filter((f) => f.endsWith('.tar')));
    expect(leftover).toEqual([]);
  });

  it("checkpoints through the node-agents, with their own nodes/checkpoint-only ServiceAccount, never the API server's node proxy", () => {
    expect(stack.cluster.callCount('create', 'nodes/proxy')).toBe(0);
    // The kubelets reviewed the agents' tokens and permissions (cached after the first).
    expect(stack.cluster.callCount('create', 'tokenreviews')).toBeGreaterThan(0);
    expect(stack.cluster.callCount('create', 'subjectaccessreviews')).toBeGreaterThan(0);
    expect(stack.cluster.getObject('v1', 'ServiceAccount', 'kcr-system', 'node-agent')?.automountServiceAccountToken).toBe(false);
    expect(stack.cluster.getObject('rbac.authorization.k8s.io/v1', 'ClusterRole', undefined, 'kcr-node-agent')?.rules).toEqual([
      { apiGroups: [''], resources: ['nodes/checkpoint'], verbs: ['create'] },
    ]);
  });

  it('archives every event that crossed the broker, in structured mode', async () => {
    await stack.broker.idle();
    const archived = await archivedIds();
    const missing = received.filter((e) => !archived.has(e.id)).map((e) => `${e.type} ${e.id}`);
    expect(missing).toEqual([]);
    const built = received.find((e) => e.type === 'io.kcr.image.built')!;
    expect(archived.get(built.id)).toMatchObject({ specversion: '1.0', type: 'io.kcr.image.built', data: built.data });
  });

  it('rebuilds the same digest when an archived checkpoint.stored is replayed after the image was deleted', async () => {
    const built = received.find((e) => e.type === 'io.kcr.image.built')!.data as ImageBuiltData;
    const stored = received.find((e) => e.type === 'io.kcr.checkpoint.stored' && (e.data as { id: string }).id === built.id)!;
    const [repoHost, digest] = built.image.reference.split('@') as [string, string];
    const repo = repoHost.slice(repoHost.indexOf('/') + 1);
    if (stack.registry.kind === 'docker-registry') {
      expect(await new RegistryClient({ baseUrl: stack.registry.server.url }).deleteManifest(repo, digest)).toBe(true);
    } else {
      expect(await new OciLayout(stack.registry.dir, stack.registry.host).untag(repo, digest)).toBeGreaterThan(0);
    }

    const out: string[] = [];
    const err: string[] = [];
    const code = await runCli(['events', 'replay', stored.id, '--broker', stack.broker.url], {
      stdout: { write: (s: string) => out.push(s) },
      stderr: { write: (s: string) => err.push(s) },
      env: stack.env,
    });
    expect(err.join('')).toBe('');
    expect(code).toBe(0);
    const replayed = received.find((e) => e.replayOf === stored.id);
    expect(replayed).toMatchObject({ type: 'io.kcr.checkpoint.stored' });
    expect(replayed!.id).not.toBe(stored.id);

    const rebuilt = await until(
      "the replay's image.built",
      () => received.filter((e) => e.type === 'io.kcr.image.built' && (e.data as ImageBuiltData).id === built.id).map((e) => e.data as ImageBuiltData)[1],
      { timeout: 20_000, interval: 100 },
    );
    expect(rebuilt.image.digest).toBe(built.image.digest);
    if (stack.registry.kind === 'docker-registry') {
      const res = await fetch(`${stack.registry.server.url}/v2/${repo}/manifests/${digest}`, { method: 'HEAD', headers: { accept: 'application/vnd.oci.image.index.v1+json' } });
      expect(res.status).toBe(200);
    }
    // The replay is archived too, under its own id.
    await stack.broker.idle();
    expect((await archivedIds()).get(replayed!.id)).toMatchObject({ kcrreplayof: stored.id });
  });
});
