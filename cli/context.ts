// What a cluster-facing command works with, built once from its flags: the
// Kubernetes client and namespace, and S3 and the broker as settings.ts
// resolves them (the cluster asked only when flags and env lack something).
import type { Command } from 'commander';
import type { ObjectStore } from '../functions/core/storage/object-store.js';
import { errorMessage } from '../functions/core/runtime/errors.js';
import { kubeTarget, type KubeFlags, type KubeTarget } from './kube.js';
import { needsCluster, readClusterSettings, resolveSettings, type CliSettings, type SettingsFlags } from './settings.js';
import { UsageError } from './errors.js';
import type { CliIo } from './io.js';

export type CommonFlags = KubeFlags & SettingsFlags;

export interface CommandContext extends KubeTarget {
  flags: CommonFlags;
  io: CliIo;
  now: Date;
  settings(): Promise<CliSettings>;
  store(): Promise<ObjectStore>;
  broker(): Promise<string>;
}

export function commandContext(io: CliIo, cmd: Command): CommandContext {
  const flags = cmd.optsWithGlobals<CommonFlags>();
  const target = kubeTarget(flags, io.env);
  let settings: Promise<CliSettings> | undefined;
  let store: ObjectStore | undefined;
  const ctx: CommandContext = {
    ...target,
    flags,
    io,
    now: io.now ? io.now() : new Date(),
    settings: () => (settings ??= (needsCluster(flags, io.env) ? readClusterSettings(target.kube.kubeConfig) : Promise.resolve(undefined)).then((cluster) => resolveSettings(flags, io.env, cluster))),
    async store() {
      if (store) return store;
      const s = (await ctx.settings()).s3;
      if (!s.ok) throw new UsageError(s.missing);
      store = io.openStore(s.value);
      return store;
    },
    async broker() {
      const b = (await ctx.settings()).broker;
      if (!b.ok) throw new UsageError(b.missing);
      return b.value;
    },
  };
  return ctx;
}

/** Adds the S3 and broker overrides (flags over env over the cluster's kcr-config). */
export function addSettingsFlags(cmd: Command, opts: { broker?: boolean } = {}): Command {
  cmd
    .option('--s3-endpoint <url>', 'S3 endpoint (default: $KCR_S3_ENDPOINT, then ConfigMap kcr-system/kcr-config)')
    .option('--s3-access-key <key>', 'S3 access key (default: $KCR_S3_ACCESS_KEY, then Secret kcr-system/kcr-s3)')
    .option('--s3-secret-key <key>', 'S3 secret key (default: $KCR_S3_SECRET_KEY, then Secret kcr-system/kcr-s3)')
    .option('--s3-region <region>', 'S3 region')
    .option('--bucket <name>', 'S3 bucket');
  if (opts.broker) cmd.option('--broker <url>', 'broker ingress URL (default: $KCR_BROKER_URL, $K_SINK, then kcr-config broker-url)');
  return cmd;
}

/** S3 failures say what was being read and where. */
export async function fromS3<T>(store: ObjectStore, what: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new Error(`${what} in s3://${store.bucket}: ${errorMessage(err)}`, { cause: err });
  }
}
