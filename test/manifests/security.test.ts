// Pod security of every container kcr runs: non-root (but the node-agent, which
// must be uid 0 and is the documented exception), read-only root filesystem, no
// privilege escalation, no capabilities, the runtime's seccomp profile; and a
// writable emptyDir wherever something writes.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FUNCTIONS, loadRepoDocs, named, ofKind, REPO, type KubeDoc } from './support.js';

const docs = loadRepoDocs();
const dockerfile = readFileSync(join(REPO, 'Dockerfile'), 'utf8');
const [, imageUid, imageGid] = /^USER (\d+):(\d+)$/m.exec(dockerfile) ?? [];

interface SecurityContext {
  runAsNonRoot?: boolean;
  runAsUser?: number;
  runAsGroup?: number;
  readOnlyRootFilesystem?: boolean;
  allowPrivilegeEscalation?: boolean;
  privileged?: boolean;
  capabilities?: { add?: string[]; drop?: string[] };
  seccompProfile?: { type: string };
}
interface Container {
  name: string;
  env?: { name: string; value?: string; valueFrom?: { configMapKeyRef?: { name: string; key: string }; fieldRef?: { fieldPath: string } } }[];
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
  securityContext?: SecurityContext;
}
interface PodSpec {
  securityContext?: SecurityContext;
  containers: Container[];
  initContainers?: Container[];
  volumes?: {
    name: string;
    emptyDir?: object;
    secret?: object;
    hostPath?: { path: string };
    projected?: { sources: { serviceAccountToken?: { path: string; expirationSeconds?: number; audience?: string }; configMap?: { name: string } }[] };
  }[];
  hostNetwork?: boolean;
  hostPID?: boolean;
  hostIPC?: boolean;
  automountServiceAccountToken?: boolean;
}

const podSpecOf = (doc: KubeDoc) => (doc.spec as { template: { spec: PodSpec } }).template.spec;
const ksvc = (name: string) => named(docs, 'serving.knative.dev/v1', 'Service', name);

/** The container's effective security context: its own fields over the pod's (the fields both have). */
function effective(pod: PodSpec, c: Container): SecurityContext {
  const p = pod.securityContext ?? {};
  const pick = ({ runAsNonRoot, runAsUser, runAsGroup, seccompProfile }: SecurityContext) => ({ runAsNonRoot, runAsUser, runAsGroup, seccompProfile });
  const defined = (o: object) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
  return { ...defined(pick(p)), ...defined(c.securityContext ?? {}) } as SecurityContext;
}

const workloads = [...ofKind(docs, 'serving.knative.dev/v1', 'Service'), ...ofKind(docs, 'apps/v1', 'DaemonSet'), ...ofKind(docs, 'apps/v1', 'StatefulSet')];
const containers = workloads.flatMap((w) => [...podSpecOf(w).containers, ...(podSpecOf(w).initContainers ?? [])].map((c) => [`${w.kind} ${w.metadata.name}/${c.name}`, w, c] as const));

/** The emptyDir volume mounted at exactly this path, if any. */
function emptyDirAt(pod: PodSpec, c: Container, path: string): boolean {
  const mount = c.volumeMounts?.find((m) => m.mountPath === path);
  return !!mount && !!pod.volumes?.find((v) => v.name === mount.name)?.emptyDir;
}

describe('pod security', () => {
  it('finds the six functions, the node-agent and MinIO', () => {
    expect(workloads.map((w) => w.metadata.name).sort()).toEqual([...FUNCTIONS, 'minio', 'node-agent'].sort());
    expect(imageUid, 'Dockerfile USER uid:gid').toMatch(/^[1-9]\d*$/);
  });

  it.each(containers)('%s: read-only root, no privilege escalation, every capability dropped, RuntimeDefault seccomp', (_what, w, c) => {
    const sc = effective(podSpecOf(w), c);
    expect(sc.readOnlyRootFilesystem).toBe(true);
    expect(sc.allowPrivilegeEscalation).toBe(false);
    expect(sc.privileged).not.toBe(true);
    expect(sc.capabilities).toEqual({ drop: ['ALL'] });
    expect(sc.seccompProfile).toEqual({ type: 'RuntimeDefault' });
  });

  it.each(containers.filter(([, w]) => w.metadata.name !== 'node-agent'))('%s: runs as a non-root uid', (_what, w, c) => {
    const sc = effective(podSpecOf(w), c);
    expect(sc.runAsNonRoot).toBe(true);
    expect(sc.runAsUser).toBeGreaterThan(0);
  });

  it('uses no host namespaces, and no hostPath but the node-agent’s checkpoint directory', () => {
    for (const w of workloads) {
      const spec = podSpecOf(w);
      expect([spec.hostNetwork, spec.hostPID, spec.hostIPC].some(Boolean), w.metadata.name).toBe(false);
      const hostPaths = (spec.volumes ?? []).flatMap((v) => (v.hostPath ? [v.hostPath.path] : []));
      expect(hostPaths, w.metadata.name).toEqual(w.metadata.name === 'node-agent' ? ['/var/lib/kubelet/checkpoints'] : []);
    }
  });
});

describe('the function Services', () => {
  it.each(FUNCTIONS.map((f) => [f]))('%s: the image’s non-root user, set on the container (Knative takes no pod securityContext by default)', (f) => {
    const spec = podSpecOf(ksvc(f));
    expect(spec.securityContext).toBeUndefined();
    expect(spec.containers).toHaveLength(1);
    expect(spec.containers[0]?.securityContext).toEqual({
      runAsNonRoot: true,
      runAsUser: Number(imageUid),
      runAsGroup: Number(imageGid),
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
  });

  it.each(FUNCTIONS.map((f) => [f]))('%s: an emptyDir at /tmp, and every other mount read-only', (f) => {
    const spec = podSpecOf(ksvc(f));
    const c = spec.containers[0] as Container;
    expect(emptyDirAt(spec, c, '/tmp')).toBe(true);
    for (const m of c.volumeMounts ?? []) if (m.mountPath !== '/tmp') expect(m.readOnly, `${f} ${m.mountPath}`).toBe(true);
  });

  it('build-image pushes to a registry, so it never writes its OCI layout directory', () => {
    const c = podSpecOf(ksvc('build-image')).containers[0] as Container;
    const registry = c.env?.find((e) => e.name === 'KCR_REGISTRY_URL')?.valueFrom?.configMapKeyRef;
    expect(registry).toBeDefined();
    const config = named(docs, 'v1', 'ConfigMap', registry?.name ?? '').data as Record<string, string>;
    expect(config[registry?.key ?? '']).toMatch(/\S/);
    expect(c.env?.map((e) => e.name)).not.toContain('KCR_OCI_LAYOUT_DIR');
  });
});

describe('the node-agent', () => {
  const ds = named(docs, 'apps/v1', 'DaemonSet', 'node-agent');
  const spec = podSpecOf(ds);
  const c = spec.containers[0] as Container;

  it('is the only container running as root, with no capability at all, and no API token', () => {
    expect(c.securityContext).toMatchObject({ runAsUser: 0, runAsNonRoot: false });
    expect(c.securityContext?.capabilities).toEqual({ drop: ['ALL'] });
    expect(spec.automountServiceAccountToken).toBe(false);
    const root = containers.filter(([, w, x]) => effective(podSpecOf(w), x).runAsUser === 0 || effective(podSpecOf(w), x).runAsNonRoot !== true);
    expect(root.map(([what]) => what)).toEqual(['DaemonSet node-agent/node-agent']);
  });

  it('gets its ServiceAccount token only as a short-lived projected token, for its kubelet, beside the cluster CA', () => {
    expect(named(docs, 'v1', 'ServiceAccount', 'node-agent').automountServiceAccountToken).toBe(false);
    const projected = (spec.volumes ?? []).filter((v) => v.projected?.sources.some((src) => src.serviceAccountToken));
    expect(projected).toHaveLength(1);
    const sources = projected[0]!.projected!.sources;
    const token = sources.find((src) => src.serviceAccountToken)!.serviceAccountToken!;
    // 600 s is the shortest the API server issues; the kubelet rotates it at 80 %.
    expect(token.expirationSeconds).toBe(600);
    expect(token.audience).toBeUndefined(); // the API server's: the kubelet reviews it there
    expect(sources.find((src) => src.configMap)?.configMap?.name).toBe('kube-root-ca.crt');
    const mount = c.volumeMounts?.find((m) => m.name === projected[0]!.name);
    expect(mount?.readOnly).toBe(true);
    const env = Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value]));
    expect(env.KCR_KUBELET_TOKEN_FILE).toBe(`${mount!.mountPath}/${token.path}`);
    expect(env.KCR_KUBELET_CA_FILE).toBe(`${mount!.mountPath}/ca.crt`);
    expect(env.KCR_KUBELET_URL).toBe('https://$(KCR_HOST_IP):10250');
    expect((c.env ?? []).find((e) => e.name === 'KCR_HOST_IP')).toMatchObject({ valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } });
  });

  it('mounts the checkpoint directory, read-write only while it deletes stored archives', () => {
    const allowDelete = c.env?.find((e) => e.name === 'KCR_NODE_AGENT_ALLOW_DELETE')?.value;
    const mount = c.volumeMounts?.find((m) => m.mountPath === '/var/lib/kubelet/checkpoints');
    expect(mount).toBeDefined();
    expect(mount?.readOnly ?? false).toBe(allowDelete !== 'true');
    for (const m of c.volumeMounts ?? []) if (m !== mount) expect(m.readOnly, m.mountPath).toBe(true);
  });
});

describe('MinIO', () => {
  const spec = podSpecOf(named(docs, 'apps/v1', 'StatefulSet', 'minio'));
  const c = spec.containers[0] as Container;

  it('writes only to its volume and an emptyDir HOME (where it creates .minio)', () => {
    const home = c.env?.find((e) => e.name === 'HOME')?.value ?? '';
    expect(emptyDirAt(spec, c, home)).toBe(true);
    expect(c.volumeMounts?.map((m) => m.mountPath).sort()).toEqual(['/data', home].sort());
  });
});
