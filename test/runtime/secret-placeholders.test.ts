// The Secret sources in manifests/secrets/ are committed placeholders until
// generate.sh runs: start-up refuses them, naming the variable and the Secret.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { s3OptionsFromEnv } from '../../functions/core/storage/s3.js';
import { readEnv } from '../../functions/core/runtime/config.js';
import { ConfigError } from '../../functions/core/runtime/errors.js';

/** The key=value pairs of a committed env file. */
function envFile(name: string): Record<string, string> {
  const lines = readFileSync(new URL(`../../manifests/secrets/${name}`, import.meta.url), 'utf8').split('\n');
  return Object.fromEntries(lines.filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

const s3 = envFile('s3.env');
const agent = envFile('node-agent.env');
const S3_ENV = { KCR_S3_ENDPOINT: 'http://minio.kcr-system:9000', KCR_S3_ACCESS_KEY: s3['access-key'], KCR_S3_SECRET_KEY: 'f3a9c1d2e4b5a6978877665544332211' };

describe('placeholder secrets', () => {
  it('refuses the committed S3 secret key, naming the variable, the Secret and generate.sh', () => {
    expect(s3['secret-key']).toBeDefined();
    const env = { ...S3_ENV, KCR_S3_SECRET_KEY: s3['secret-key'] };
    expect(() => readEnv(['KCR_S3_ACCESS_KEY', 'KCR_S3_SECRET_KEY'], env)).toThrow(ConfigError);
    expect(() => readEnv(['KCR_S3_ACCESS_KEY', 'KCR_S3_SECRET_KEY'], env)).toThrow(
      /KCR_S3_SECRET_KEY=.*: is the placeholder from manifests\/secrets\/s3\.env \(Secret kcr-s3\): run manifests\/secrets\/generate\.sh/,
    );
    // Through the S3 adapter's start-up, as the functions read it.
    expect(() => s3OptionsFromEnv(env)).toThrow(/KCR_S3_SECRET_KEY.*placeholder/);
  });

  it('refuses a placeholder S3 access key the same way', () => {
    expect(() => readEnv(['KCR_S3_ACCESS_KEY'], { KCR_S3_ACCESS_KEY: 'CHANGE-ME' })).toThrow(/KCR_S3_ACCESS_KEY=.*placeholder from manifests\/secrets\/s3\.env/);
  });

  it('refuses the committed node-agent token in KCR_NODE_AGENT_TOKEN', () => {
    expect(agent.token).toBeDefined();
    expect(() => readEnv(['KCR_NODE_AGENT_TOKEN'], { KCR_NODE_AGENT_TOKEN: agent.token })).toThrow(
      /KCR_NODE_AGENT_TOKEN=.*: is the placeholder from manifests\/secrets\/node-agent\.env \(Secret kcr-node-agent-token\): run manifests\/secrets\/generate\.sh/,
    );
  });

  it('accepts generated values, the committed access key and an unset token', () => {
    expect(readEnv(['KCR_S3_ACCESS_KEY', 'KCR_S3_SECRET_KEY'], S3_ENV)).toEqual({ KCR_S3_ACCESS_KEY: 'kcr', KCR_S3_SECRET_KEY: S3_ENV.KCR_S3_SECRET_KEY });
    expect(readEnv(['KCR_NODE_AGENT_TOKEN'], {})).toEqual({ KCR_NODE_AGENT_TOKEN: undefined });
    expect(readEnv(['KCR_NODE_AGENT_TOKEN'], { KCR_NODE_AGENT_TOKEN: 'a'.repeat(64) })).toEqual({ KCR_NODE_AGENT_TOKEN: 'a'.repeat(64) });
  });
});
