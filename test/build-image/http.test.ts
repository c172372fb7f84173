// build-image as a Knative Service: CloudEvents over HTTP, the real S3 adapter
// against s3rver, the real docker-registry, result events to a test sink.
import { Readable } from 'node:stream';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3ObjectStore } from '../../functions/core/storage/s3.js';
import { OciLayout } from '../../functions/build-image/oci-layout.js';
import { RegistryClient } from '../../functions/build-image/registry.js';
import { buildImageFromEnv, imageTargetFromEnv } from '../../functions/build-image/index.js';
import { EventTypes } from '../../functions/core/contract/events.js';
import { createLogger } from '../../functions/core/runtime/logger.js';
import { ConfigError } from '../../functions/core/runtime/errors.js';
import { serveFunction, type RunningFunction } from '../../functions/core/runtime/server.js';
import { optionalBinary } from '../support/binaries.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { startS3, type S3Fixture } from '../support/s3.js';
import { startSink, type TestSink } from '../support/sink.js';
import { closedPort, keyOf, makeFixture, type Fixture } from './fixtures.js';
import { scrape } from '../support/metrics.js';

const registryBinary = optionalBinary('docker-registry');
const BUCKET = 'kcr-checkpoints';

function cloudEvent(fixture: Fixture): string {
  return JSON.stringify({
    specversion: '1.0',
    id: `stored-${fixture.data.id}`,
    source: '/kcr/store-artifact',
    type: EventTypes.checkpointStored,
    subject: `${fixture.data.namespace}/${fixture.data.pod}/${fixture.data.container}`,
    datacontenttype: 'application/json',
    kcrcheckpointid: fixture.data.id,
    data: fixture.data,
  });
}

async function seedS3(store: S3ObjectStore, fixture: Fixture): Promise<void> {
  const uploaded = await store.upload(keyOf(fixture, 'archive'), Readable.from([fixture.archive]));
  expect(uploaded.sha256).toBe(fixture.data.artifact.sha256);
  await store.putJson(keyOf(fixture, 'manifest'), fixture.manifest);
}

describe.skipIf(!registryBinary)('build-image over HTTP with S3 (s3rver) and docker-registry', () => {
  let s3: S3Fixture;
  let registry: TestRegistry;
  let sink: TestSink;
  let store: S3ObjectStore;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    [s3, registry, sink] = await Promise.all([startS3(), startRegistry(registryBinary as string), startSink()]);
    store = new S3ObjectStore(s3.storeOptions(BUCKET));
    await store.ensureBucket();
    env = {
      KCR_S3_ENDPOINT: s3.endpoint,
      KCR_S3_ACCESS_KEY: s3.accessKey,
      KCR_S3_SECRET_KEY: s3.secretKey,
      KCR_S3_BUCKET: BUCKET,
      KCR_REGISTRY_URL: registry.host,
      KCR_REGISTRY_REPO_PREFIX: 'checkpoints/kcr',
      // No API server here, which retention needs (retention.test.ts covers it).
      KCR_CHECKPOINT_RETENTION: '0',
    };
  });
  afterAll(async () => {
    await Promise.all([s3?.stop(), registry?.stop(), sink?.close()]);
  });

  async function serve(extraEnv: NodeJS.ProcessEnv = {}): Promise<RunningFunction> {
    const handler = await buildImageFromEnv({ ...env, ...extraEnv });
    return serveFunction(handler, { port: 0, host: '127.0.0.1', sink: sink.url, logger: createLogger('build-image', 'silent') });
  }
  const post = (fn: RunningFunction, body: string) => fetch(fn.url, { method: 'POST', headers: { 'content-type': 'application/cloudevents+json' }, body });

  it('answers 2xx, emits io.kcr.image.built and leaves image.json in S3', async () => {
    const fixture = await makeFixture({ pod: 'http-built', podUid: 'uid-http-built' });
    await seedS3(store, fixture);
    const fn = await serve();
    try {
      const res = await post(fn, cloudEvent(fixture));
      expect(res.status).toBeLessThan(300);
      const built = sink.events.find((e) => e.type === EventTypes.imageBuilt && e.kcrcheckpointid === fixture.data.id);
      const image = (built?.data as { image: { reference: string; digest: string } }).image;
      expect(image.reference).toBe(`${registry.host}/checkpoints/kcr/shop/deployment-redis-redis@${image.digest}`);
      expect(await store.getJson(keyOf(fixture, 'image'))).toMatchObject({ reference: image.reference, digest: image.digest });
      expect(await new RegistryClient({ baseUrl: registry.url }).hasManifest('checkpoints/kcr/shop/deployment-redis-redis', image.digest)).toBe(true);
      expect(await scrape(fn.url, 'kcr_artifact_transfer_seconds_count', { function: 'build-image', stage: 'build' })).toBe(1);
    } finally {
      await fn.close();
    }
  });

  it('answers 2xx with io.kcr.checkpoint.failed when manifest.json is missing', async () => {
    const fixture = await makeFixture({ pod: 'http-nomanifest', podUid: 'uid-http-nomanifest' });
    await store.upload(keyOf(fixture, 'archive'), Readable.from([fixture.archive]));
    const fn = await serve();
    try {
      const res = await post(fn, cloudEvent(fixture));
      expect(res.status).toBeLessThan(300);
      const failed = sink.events.find((e) => e.type === EventTypes.checkpointFailed && e.kcrcheckpointid === fixture.data.id);
      expect(failed?.data).toMatchObject({ stage: 'build', reason: expect.stringContaining('manifest.json does not exist') });
    } finally {
      await fn.close();
    }
  });

  it('answers 503 when the registry is unreachable, so the broker retries', async () => {
    const fixture = await makeFixture({ pod: 'http-unreachable', podUid: 'uid-http-unreachable' });
    await seedS3(store, fixture);
    const fn = await serve({ KCR_REGISTRY_URL: `127.0.0.1:${await closedPort()}`, KCR_REGISTRY_TIMEOUT_MS: '2000' });
    try {
      const res = await post(fn, cloudEvent(fixture));
      expect(res.status).toBe(503);
      expect(await store.stat(keyOf(fixture, 'image'))).toBeUndefined();
    } finally {
      await fn.close();
    }
  });
});

describe('build-image configuration', () => {
  it('refuses to start with retention but no API to list pods with, and needs none without retention', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kcr-layout-env-'));
    try {
      const env = { KCR_OCI_LAYOUT_DIR: dir, KCR_S3_ENDPOINT: 'http://127.0.0.1:1', KCR_S3_ACCESS_KEY: 'a', KCR_S3_SECRET_KEY: 'b' };
      await expect(buildImageFromEnv(env)).rejects.toThrow(/KUBERNETES_SERVICE_HOST is unset.*KUBECONFIG/);
      await expect(buildImageFromEnv({ ...env, KCR_CHECKPOINT_RETENTION: '0' })).resolves.toBeDefined();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('writes to the OCI layout when no registry is configured', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kcr-layout-env-'));
    try {
      const target = await imageTargetFromEnv({ KCR_OCI_LAYOUT_DIR: dir, KCR_OCI_LAYOUT_HOST: 'images.kcr.local' });
      expect(target).toBeInstanceOf(OciLayout);
      expect(target.host).toBe('images.kcr.local');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('takes registry credentials from a docker config.json, and refuses plain HTTP to a remote registry', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kcr-auth-'));
    try {
      const auth = join(dir, 'config.json');
      await writeFile(auth, JSON.stringify({ auths: { 'registry.example.com': { auth: Buffer.from('robot:pw').toString('base64') } } }));
      const target = await imageTargetFromEnv({ KCR_REGISTRY_URL: 'registry.example.com', KCR_REGISTRY_AUTH_FILE: auth });
      expect(target).toBeInstanceOf(RegistryClient);
      expect(target.host).toBe('registry.example.com');
      await expect(imageTargetFromEnv({ KCR_REGISTRY_URL: 'http://registry.example.com' })).rejects.toThrow(ConfigError);
      await expect(imageTargetFromEnv({ KCR_REGISTRY_URL: 'registry.example.com', KCR_REGISTRY_AUTH_FILE: join(dir, 'missing.json') })).rejects.toThrow(/KCR_REGISTRY_AUTH_FILE/);
      await expect(buildImageFromEnv({ KCR_REGISTRY_REPO_PREFIX: 'Not Valid', KCR_S3_ENDPOINT: 'http://127.0.0.1:1', KCR_S3_ACCESS_KEY: 'a', KCR_S3_SECRET_KEY: 'b' })).rejects.toThrow(
        /KCR_REGISTRY_REPO_PREFIX/,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
