// How kcr finds S3 and the broker (flags over env over the cluster's kcr-config
// and kcr-s3), and kubectl's AGE and the kubeconfig flags. Pure, milliseconds.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveSettings } from '../../cli/settings.js';
import { humanBytes, humanDuration } from '../../cli/output.js';
import { kubeTarget } from '../../cli/kube.js';

const cluster = {
  config: { 's3-endpoint': 'http://minio.kcr-system.svc:9000', 's3-region': 'eu-1', 's3-bucket': 'cp', 'broker-url': 'http://broker/kcr-system/kcr' },
  s3Secret: { 'access-key': 'ak', 'secret-key': 'sk' },
  errors: [],
};

describe('resolveSettings', () => {
  it('takes everything from the cluster when flags and env say nothing', () => {
    expect(resolveSettings({}, {}, cluster)).toEqual({
      s3: { ok: true, value: { endpoint: 'http://minio.kcr-system.svc:9000', accessKey: 'ak', secretKey: 'sk', region: 'eu-1', bucket: 'cp' } },
      broker: { ok: true, value: 'http://broker/kcr-system/kcr' },
    });
  });

  it('prefers the external endpoints, then env, then flags', () => {
    const ext = { ...cluster, config: { ...cluster.config, 'external-s3-endpoint': 'https://s3.example.com', 'external-broker-url': 'https://b.example.com' } };
    expect(resolveSettings({}, {}, ext)).toMatchObject({ s3: { value: { endpoint: 'https://s3.example.com' } }, broker: { value: 'https://b.example.com' } });
    expect(resolveSettings({}, { KCR_S3_ENDPOINT: 'http://env:9000', K_SINK: 'http://sink' }, ext)).toMatchObject({
      s3: { value: { endpoint: 'http://env:9000', accessKey: 'ak' } },
      broker: { value: 'http://sink' },
    });
    expect(
      resolveSettings({ s3Endpoint: 'http://flag:9000', s3AccessKey: 'fk', broker: 'http://flag-broker' }, { KCR_S3_ENDPOINT: 'http://env:9000', KCR_BROKER_URL: 'http://env-broker' }, ext),
    ).toMatchObject({
      s3: { value: { endpoint: 'http://flag:9000', accessKey: 'fk', secretKey: 'sk' } },
      broker: { value: 'http://flag-broker' },
    });
  });

  it('says what is missing and why the cluster could not tell', () => {
    const r = resolveSettings({}, {}, { errors: ['Secret kcr-system/kcr-s3: forbidden by RBAC'] });
    expect(r.s3.ok).toBe(false);
    expect(!r.s3.ok && r.s3.missing).toContain('Secret kcr-s3 access-key');
    expect(!r.s3.ok && r.s3.missing).toContain('forbidden by RBAC');
    expect(r.broker.ok).toBe(false);
  });
});

describe('kubectl conventions', () => {
  it('prints AGE as kubectl does (apimachinery HumanDuration)', () => {
    const s = 1000;
    expect([5 * s, 119 * s, 200 * s, 600 * s, 179 * 60 * s, 5 * 3600 * s + 120 * s, 30 * 3600 * s, 3 * 86400 * s + 5 * 3600 * s, 90 * 86400 * s].map(humanDuration)).toEqual([
      '5s',
      '119s',
      '3m20s',
      '10m',
      '179m',
      '5h2m',
      '30h',
      '3d5h',
      '90d',
    ]);
    expect([512, 4096, 15 * 1024 * 1024, 3 * 1024 ** 3].map(humanBytes)).toEqual(['512', '4.0Ki', '15Mi', '3.0Gi']);
  });

  const dir = mkdtempSync(join(tmpdir(), 'kcr-kubeconfig-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'config');
  writeFileSync(
    file,
    `apiVersion: v1
kind: Config
clusters: [{ name: c, cluster: { server: 'https://127.0.0.1:6443' } }]
users: [{ name: u, user: { token: t } }]
contexts:
  - { name: one, context: { cluster: c, user: u, namespace: shop } }
  - { name: two, context: { cluster: c, user: u } }
current-context: one
`,
  );

  it('takes the namespace from -n, else the context, else default; -A none', () => {
    expect(kubeTarget({ kubeconfig: file }, {}).namespace).toBe('shop');
    expect(kubeTarget({}, { KUBECONFIG: file }).namespace).toBe('shop');
    expect(kubeTarget({ kubeconfig: file, context: 'two' }, {}).namespace).toBe('default');
    expect(kubeTarget({ kubeconfig: file, namespace: 'x' }, {}).namespace).toBe('x');
    expect(kubeTarget({ kubeconfig: file, allNamespaces: true }, {})).toMatchObject({ namespace: undefined, defaultNamespace: 'shop' });
    expect(() => kubeTarget({ kubeconfig: join(dir, 'missing') }, {})).toThrow(/no such file/);
  });
});
