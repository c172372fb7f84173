// The S3 of the local mode and the tests: OpenStack Swift with s3api (a
// production object store, when Debian's swift-* packages are installed), the
// embedded s3rver (no install), or an S3 the user runs (KCR_S3_ENDPOINT).
// Swift runs as processes of its own, so a pass-through front (s3-front.ts)
// gives it the request hook and the injected failures s3rver has in-process.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { startEmbeddedS3 } from './embedded-s3.js';
import { startS3Front } from './s3-front.js';
import { startSwiftS3, SWIFT_PACKAGES, swiftInstalled } from './swift-s3.js';

export type S3Kind = 'swift' | 's3rver';
export type S3Choice = S3Kind | 'auto';
export const S3_CHOICES: readonly S3Choice[] = ['auto', 'swift', 's3rver'];

export interface ExternalS3 {
  endpoint: string;
  accessKey: string;
  secretKey: string;
  region: string;
}

export interface LocalS3 extends ExternalS3 {
  kind: S3Kind | 'external';
  /** What the banner prints. */
  description: string;
  /** Answers the next `count` requests with `status` (fault injection for tests); not for an external S3. */
  failNext(count: number, status: 500 | 503): void;
  stop(): Promise<void>;
}

/** `auto` is Swift when installed, else s3rver; an explicit choice is kept (Swift then fails with the packages to install). */
export function resolveS3Kind(choice: S3Choice, swiftAvailable: boolean): S3Kind {
  if (choice === 'auto') return swiftAvailable ? 'swift' : 's3rver';
  return choice;
}

interface LocalS3Options {
  /** Where its data (and Swift's config and rings) live. */
  dir: string;
  /** Where Swift keeps its rings between runs (default: under `dir`). */
  ringsDir?: string;
  /** Sees every request (not for an external S3). */
  onRequest?: (req: IncomingMessage, res: ServerResponse, url: URL) => void;
}

export async function startLocalS3(target: S3Choice | ExternalS3, options: LocalS3Options): Promise<LocalS3> {
  if (typeof target === 'object') {
    return {
      kind: 'external',
      ...target,
      description: `external ${target.endpoint} (KCR_S3_ENDPOINT)`,
      failNext() {
        throw new Error(`no fault injection on an external S3 (${target.endpoint})`);
      },
      stop: async () => undefined,
    };
  }
  const kind = resolveS3Kind(target, swiftInstalled());
  if (kind === 's3rver') {
    const s3 = await startEmbeddedS3({ dir: join(options.dir, 's3rver'), ...(options.onRequest ? { onRequest: options.onRequest } : {}) });
    const fallback = target === 'auto' ? ` (Swift not installed: apt-get install -t trixie ${SWIFT_PACKAGES.join(' ')})` : '';
    return { kind, endpoint: s3.endpoint, accessKey: s3.accessKey, secretKey: s3.secretKey, region: s3.region, description: `s3rver ${s3.endpoint}${fallback}`, failNext: s3.failNext, stop: s3.stop };
  }
  const swift = await startSwiftS3({ dir: join(options.dir, 'swift'), ...(options.ringsDir ? { ringsDir: options.ringsDir } : {}) });
  try {
    const front = await startS3Front(swift.endpoint, options.onRequest);
    return {
      kind,
      endpoint: front.endpoint,
      accessKey: swift.accessKey,
      secretKey: swift.secretKey,
      region: swift.region,
      description: `Swift+s3api ${front.endpoint} (proxy-server ${swift.endpoint})`,
      failNext: front.failNext,
      async stop() {
        await front.stop();
        await swift.stop();
      },
    };
  } catch (err) {
    await swift.stop();
    throw err;
  }
}

/**
 * The local mode's S3 from `--s3` and the environment: KCR_S3_ENDPOINT (with
 * the functions' own KCR_S3_ACCESS_KEY, KCR_S3_SECRET_KEY, KCR_S3_REGION)
 * names an external S3, which no other `--s3` than `auto` may contradict;
 * not when it comes from a local mode's env file (`source .state/run/env`).
 */
export function s3Target(choice: S3Choice, env: Record<string, string | undefined>): S3Choice | ExternalS3 {
  const endpoint = env.KCR_S3_ENDPOINT?.trim();
  // Set together with KCR_LOCAL_ENV_FILE, it is a local mode's own S3 (its env file sourced): not the user's.
  if (!endpoint || env.KCR_LOCAL_ENV_FILE) return choice;
  if (choice !== 'auto') throw new Error(`--s3 ${choice} and KCR_S3_ENDPOINT=${endpoint} contradict each other: unset KCR_S3_ENDPOINT, or drop --s3`);
  if (!/^https?:\/\/[^/]+/.test(endpoint)) throw new Error(`KCR_S3_ENDPOINT=${endpoint} must be an http(s) URL`);
  const accessKey = env.KCR_S3_ACCESS_KEY?.trim();
  const secretKey = env.KCR_S3_SECRET_KEY?.trim();
  if (!accessKey || !secretKey) throw new Error(`KCR_S3_ENDPOINT=${endpoint} needs KCR_S3_ACCESS_KEY and KCR_S3_SECRET_KEY`);
  return { endpoint, accessKey, secretKey, region: env.KCR_S3_REGION?.trim() || 'us-east-1' };
}
