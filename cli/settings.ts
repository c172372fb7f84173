// Where kcr finds S3 and the broker: flags, then the environment (the local
// mode's env file exports it), then the cluster: ConfigMap kcr-system/kcr-config
// (which the manifests install) and Secret kcr-system/kcr-s3, read with the
// user's own RBAC. So a kubeconfig is all a user needs, and anything may be
// overridden. resolveSettings decides; readClusterSettings is the one read.
import { ApiException, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { S3Settings } from './io.js';
import { DEFAULT_BUCKET } from '../functions/core/storage/layout.js';

export const KCR_NAMESPACE = 'kcr-system';
export const CONFIG_MAP = 'kcr-config';
export const S3_SECRET = 'kcr-s3';

export interface SettingsFlags {
  s3Endpoint?: string;
  s3AccessKey?: string;
  s3SecretKey?: string;
  s3Region?: string;
  bucket?: string;
  broker?: string;
}

/** What the cluster says; `error` why a part could not be read (RBAC, absent). */
export interface ClusterSettings {
  config?: Record<string, string>;
  s3Secret?: Record<string, string>;
  errors: string[];
}

export type Resolved<T> = { ok: true; value: T } | { ok: false; missing: string };

export interface CliSettings {
  s3: Resolved<S3Settings>;
  broker: Resolved<string>;
}

/**
 * Flags over env over cluster, per setting. The ConfigMap's `external-*` keys
 * name endpoints reachable from outside the cluster (the in-cluster ones, the
 * functions' `s3-endpoint` and `broker-url`, are the fallback).
 */
export function resolveSettings(flags: SettingsFlags, env: NodeJS.ProcessEnv, cluster: ClusterSettings | undefined): CliSettings {
  const cm = cluster?.config ?? {};
  const secret = cluster?.s3Secret ?? {};
  const pick = (...values: (string | undefined)[]) => values.find((v) => v !== undefined && v !== '');
  const endpoint = pick(flags.s3Endpoint, env.KCR_S3_ENDPOINT, cm['external-s3-endpoint'], cm['s3-endpoint']);
  const accessKey = pick(flags.s3AccessKey, env.KCR_S3_ACCESS_KEY, secret['access-key']);
  const secretKey = pick(flags.s3SecretKey, env.KCR_S3_SECRET_KEY, secret['secret-key']);
  const region = pick(flags.s3Region, env.KCR_S3_REGION, cm['s3-region']) ?? 'us-east-1';
  const bucket = pick(flags.bucket, env.KCR_S3_BUCKET, cm['s3-bucket']) ?? DEFAULT_BUCKET;
  const broker = pick(flags.broker, env.KCR_BROKER_URL, env.K_SINK, cm['external-broker-url'], cm['broker-url']);
  const why = cluster?.errors.length ? ` (from the cluster: ${cluster.errors.join('; ')})` : '';
  const lacking = [
    !endpoint && '--s3-endpoint / $KCR_S3_ENDPOINT / kcr-config s3-endpoint',
    !accessKey && '--s3-access-key / $KCR_S3_ACCESS_KEY / Secret kcr-s3 access-key',
    !secretKey && '--s3-secret-key / $KCR_S3_SECRET_KEY / Secret kcr-s3 secret-key',
  ].filter((x): x is string => typeof x === 'string');
  return {
    s3: endpoint && accessKey && secretKey ? { ok: true, value: { endpoint, accessKey, secretKey, region, bucket } } : { ok: false, missing: `S3 settings missing: ${lacking.join(', ')}${why}` },
    broker: broker ? { ok: true, value: broker } : { ok: false, missing: `no broker: pass --broker <url>, set $KCR_BROKER_URL, or set broker-url in ConfigMap ${KCR_NAMESPACE}/${CONFIG_MAP}${why}` },
  };
}

/** Whether the flags and environment alone give everything, so the cluster need not be asked. */
export function needsCluster(flags: SettingsFlags, env: NodeJS.ProcessEnv): boolean {
  const s = resolveSettings(flags, env, undefined);
  return !s.s3.ok || !s.broker.ok;
}

/** Reads kcr-config and kcr-s3 with the user's credentials; what cannot be read is said, not thrown. */
export async function readClusterSettings(kc: KubeConfig): Promise<ClusterSettings> {
  const core = kc.makeApiClient(CoreV1Api);
  const errors: string[] = [];
  const why = (what: string, err: unknown) => {
    const code = err instanceof ApiException ? err.code : undefined;
    errors.push(code === 404 ? `${what} not found` : code === 403 ? `${what}: forbidden by RBAC` : `${what}: ${err instanceof Error ? err.message : String(err)}`);
    return undefined;
  };
  const [config, s3Secret] = await Promise.all([
    core.readNamespacedConfigMap({ namespace: KCR_NAMESPACE, name: CONFIG_MAP }).then(
      (cm) => cm.data ?? {},
      (err: unknown) => why(`ConfigMap ${KCR_NAMESPACE}/${CONFIG_MAP}`, err),
    ),
    core.readNamespacedSecret({ namespace: KCR_NAMESPACE, name: S3_SECRET }).then(
      (s) => Object.fromEntries(Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')])),
      (err: unknown) => why(`Secret ${KCR_NAMESPACE}/${S3_SECRET}`, err),
    ),
  ]);
  return { ...(config ? { config } : {}), ...(s3Secret ? { s3Secret } : {}), errors };
}
