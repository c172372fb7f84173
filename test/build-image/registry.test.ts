// The distribution client against Debian's docker-registry on loopback.
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { credentialsFromDockerConfig, parseChallenge, RegistryAuthError, RegistryClient, RegistryError, registryLocation } from '../../functions/build-image/registry.js';
import { BlobMismatchError } from '../../functions/build-image/image-target.js';
import { TransientError } from '../../functions/core/runtime/errors.js';
import { optionalBinary } from '../support/binaries.js';
import { startRegistry, startRegistryProxy, type TestRegistry } from '../support/registry.js';

const registryBinary = optionalBinary('docker-registry');

function blob(size = 100 * 1024): { bytes: Buffer; digest: string } {
  const bytes = randomBytes(size);
  return { bytes, digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}` };
}

function chunked(bytes: Buffer): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += 8192) parts.push(bytes.subarray(i, i + 8192));
  return Readable.from(parts);
}

describe('registry settings', () => {
  it('speaks plain HTTP to loopback and insecure registries, HTTPS otherwise', () => {
    expect(registryLocation('127.0.0.1:5000', false)).toEqual({ baseUrl: 'http://127.0.0.1:5000', host: '127.0.0.1:5000' });
    expect(registryLocation('localhost:5000', false).baseUrl).toBe('http://localhost:5000');
    expect(registryLocation('registry.example.com', false)).toEqual({ baseUrl: 'https://registry.example.com', host: 'registry.example.com' });
    expect(registryLocation('registry.internal:5000', true).baseUrl).toBe('http://registry.internal:5000');
    expect(() => registryLocation('http://registry.example.com', false)).toThrow(/KCR_REGISTRY_INSECURE/);
    expect(() => registryLocation('registry.example.com/v2', false)).toThrow(/without a path/);
  });

  it('reads credentials from a docker config.json', () => {
    const config = {
      auths: {
        'https://registry.example.com/v1/': { auth: Buffer.from('robot:s3cr:et').toString('base64') },
        'other:5000': { username: 'u', password: 'p' },
      },
    };
    expect(credentialsFromDockerConfig(config, 'registry.example.com')).toEqual({ username: 'robot', password: 's3cr:et' });
    expect(credentialsFromDockerConfig(config, 'other:5000')).toEqual({ username: 'u', password: 'p' });
    expect(credentialsFromDockerConfig(config, 'nowhere')).toBeUndefined();
  });

  it('parses WWW-Authenticate challenges', () => {
    expect(parseChallenge('Basic realm="kcr"')).toEqual({ scheme: 'basic' });
    expect(parseChallenge('Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push"')).toEqual({
      scheme: 'bearer',
      realm: 'https://auth.example.com/token',
      service: 'registry.example.com',
    });
    expect(parseChallenge('Negotiate abc')).toBeUndefined();
  });
});

describe.skipIf(!registryBinary)('registry client against docker-registry', () => {
  let registry: TestRegistry;
  let client: RegistryClient;

  beforeAll(async () => {
    registry = await startRegistry(registryBinary as string);
    client = new RegistryClient({ baseUrl: registry.url });
  });
  afterAll(async () => {
    await registry?.stop();
  });

  it('uploads a streamed blob with a known digest, and HEAD finds it', async () => {
    const b = blob();
    expect(await client.hasBlob('t/known', b.digest)).toBe(false);
    expect(await client.uploadBlob('t/known', chunked(b.bytes), { digest: b.digest, size: b.bytes.length })).toEqual({ digest: b.digest, size: b.bytes.length });
    expect(await client.hasBlob('t/known', b.digest)).toBe(true);
  });

  it('computes the digest of a blob streamed without one', async () => {
    const b = blob();
    expect(await client.uploadBlob('t/unknown', chunked(b.bytes))).toEqual({ digest: b.digest, size: b.bytes.length });
    expect(await client.hasBlob('t/unknown', b.digest)).toBe(true);
  });

  it('streams a 256 MiB blob with flat memory (backpressure, no buffering)', async () => {
    const block = randomBytes(1 << 20);
    const generate = () =>
      Readable.from(
        (function* () {
          for (let i = 0; i < 256; i++) {
            const b = Buffer.from(block);
            b.writeUInt32LE(i, 0);
            yield b;
          }
        })(),
      );
    const base = process.memoryUsage().rss;
    let peak = base;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10);
    try {
      const pushed = await client.uploadBlob('t/big', generate());
      expect(pushed.size).toBe(256 * 2 ** 20);
      await client.uploadBlob('t/big2', generate(), pushed);
    } finally {
      clearInterval(sampler);
    }
    expect((peak - base) / 2 ** 20).toBeLessThan(128);
  });

  it('refuses bytes that do not match the announced digest', async () => {
    const b = blob();
    const other = blob();
    await expect(client.uploadBlob('t/bad', chunked(b.bytes), { digest: other.digest, size: b.bytes.length })).rejects.toThrow(BlobMismatchError);
    expect(await client.hasBlob('t/bad', other.digest)).toBe(false);
  });

  it('mounts a blob from another repository (201), and reports a blob it cannot mount (202)', async () => {
    const b = blob();
    await client.uploadBlob('t/source', chunked(b.bytes), { digest: b.digest, size: b.bytes.length });
    expect(await client.mountBlob('t/dest', b.digest, 't/source')).toBe(true);
    expect(await client.hasBlob('t/dest', b.digest)).toBe(true);
    expect(await client.mountBlob('t/dest2', blob().digest, 't/source')).toBe(false);
  });

  it('puts, heads, gets and deletes manifests', async () => {
    const config = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');
    const configDigest = `sha256:${createHash('sha256').update(config).digest('hex')}`;
    await client.uploadBlob('t/m', chunked(config), { digest: configDigest, size: config.length });
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
        layers: [],
      }),
    );
    const digest = `sha256:${createHash('sha256').update(manifest).digest('hex')}`;
    await client.putManifest('t/m', 'v1', 'application/vnd.oci.image.manifest.v1+json', manifest);
    expect(await client.hasManifest('t/m', digest)).toBe(true);
    const got = await client.getManifest('t/m', 'v1');
    expect(got).toMatchObject({ digest, mediaType: 'application/vnd.oci.image.manifest.v1+json' });
    expect(got?.bytes.equals(manifest)).toBe(true);
    expect(await client.deleteManifest('t/m', digest)).toBe(true);
    expect(await client.hasManifest('t/m', digest)).toBe(false);
    expect(await client.getManifest('t/m', 'v1')).toBeUndefined();
  });

  it('quotes the registry error JSON on a 4xx', async () => {
    const err = await client.putManifest('t/m', 'broken', 'application/vnd.oci.image.manifest.v1+json', Buffer.from('{"schemaVersion":2}')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryError);
    expect(err).not.toBeInstanceOf(BlobMismatchError);
    expect(String(err)).toMatch(/PUT manifest t\/m:broken: registry 127\.0\.0\.1:\d+ answered 400 \{"errors":\[.*"code":"MANIFEST_BLOB_UNKNOWN"/);
  });

  it('answers an unreachable registry with a TransientError', async () => {
    const port = await closedPort();
    const gone = new RegistryClient({ baseUrl: `http://127.0.0.1:${port}`, timeoutMs: 2000 });
    const err = await gone.hasBlob('t/x', blob().digest).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    expect(String(err)).toMatch(/unreachable.*ECONNREFUSED/);
    await expect(gone.uploadBlob('t/x', chunked(Buffer.from('x')))).rejects.toThrow(TransientError);
  });
});

describe.skipIf(!registryBinary)('registry auth', () => {
  it('answers a Basic challenge with the configured credentials (htpasswd)', async () => {
    const registry = await startRegistry(registryBinary as string, { basicAuth: { username: 'kcr', password: 'pushpass' } });
    try {
      const client = new RegistryClient({ baseUrl: registry.url, credentials: { username: 'kcr', password: 'pushpass' } });
      const b = blob();
      await client.uploadBlob('t/auth', chunked(b.bytes), { digest: b.digest, size: b.bytes.length });
      expect(await client.hasBlob('t/auth', b.digest)).toBe(true);

      const wrong = new RegistryClient({ baseUrl: registry.url, credentials: { username: 'kcr', password: 'nope' } });
      const err = await wrong.hasBlob('t/auth', b.digest).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RegistryAuthError);
      expect(String(err)).toMatch(/refused the credentials of "kcr" \(basic\): 401/);

      const anonymous = new RegistryClient({ baseUrl: registry.url });
      await expect(anonymous.hasBlob('t/auth', b.digest)).rejects.toThrow(/asks for Basic credentials and none are configured/);
    } finally {
      await registry.stop();
    }
  });

  it('fetches a Bearer token per scope from the realm, caches it, and includes the mount source in the scope', async () => {
    const registry = await startRegistry(registryBinary as string);
    const proxy = await startRegistryProxy(registry.url, { bearer: { username: 'robot', password: 'tok3n', service: 'kcr-test' } });
    try {
      const client = new RegistryClient({ baseUrl: proxy.url, credentials: { username: 'robot', password: 'tok3n' } });
      const b = blob();
      await client.uploadBlob('t/bearer', chunked(b.bytes), { digest: b.digest, size: b.bytes.length });
      expect(await client.hasBlob('t/bearer', b.digest)).toBe(true);
      // One challenge, one token for repository t/bearer, reused by every later request.
      expect(proxy.tokenRequests).toEqual([{ scopes: ['repository:t/bearer:pull,push'], user: 'robot' }]);
      expect(proxy.requests.filter((r) => r.status === 401)).toHaveLength(1);

      expect(await client.mountBlob('t/bearer2', b.digest, 't/bearer')).toBe(true);
      expect(proxy.tokenRequests.at(-1)?.scopes.sort()).toEqual(['repository:t/bearer2:pull,push', 'repository:t/bearer:pull']);

      const wrong = new RegistryClient({ baseUrl: proxy.url, credentials: { username: 'robot', password: 'bad' } });
      const err = await wrong.hasBlob('t/bearer', b.digest).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RegistryAuthError);
      expect(String(err)).toMatch(/token from http:\/\/127\.0\.0\.1:\d+\/token: refused .*401/);
    } finally {
      await proxy.close();
      await registry.stop();
    }
  });
});

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
