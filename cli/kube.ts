// The kubectl flags every cluster-facing kcr command takes (-n, -A,
// --kubeconfig, --context, -o) and the client they build, read as kubectl
// reads them: --kubeconfig, else $KUBECONFIG, else ~/.kube/config; the
// context's namespace when -n is not given.
import { homedir } from 'node:os';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';
import { Option, type Command } from 'commander';
import { Kubernetes } from '../functions/core/kubernetes/kubernetes.js';
import { UsageError } from './errors.js';

export const OUTPUT_FORMATS = ['wide', 'json', 'yaml', 'name'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export interface KubeFlags {
  namespace?: string;
  allNamespaces?: boolean;
  kubeconfig?: string;
  context?: string;
  output?: OutputFormat;
}

/** Adds kubectl's global flags to a subcommand (commander keeps each subcommand's options its own). */
export function addKubeFlags(cmd: Command, opts: { allNamespaces?: boolean; output?: boolean } = {}): Command {
  cmd
    .option('-n, --namespace <namespace>', 'the namespace (default: the context\'s, else "default")')
    .option('--kubeconfig <path>', 'the kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)')
    .option('--context <name>', 'the kubeconfig context to use');
  if (opts.allNamespaces) cmd.option('-A, --all-namespaces', 'in every namespace');
  if (opts.output) cmd.addOption(new Option('-o, --output <format>', 'output format').choices([...OUTPUT_FORMATS]));
  return cmd;
}

/** The kubeconfig kubectl would use with these flags and this environment. */
export function loadKubeConfig(flags: KubeFlags, env: NodeJS.ProcessEnv): KubeConfig {
  const kc = new KubeConfig();
  // $KUBECONFIG may list several files; kubectl merges them, the first naming the current context wins. kcr reads the first that exists.
  const candidates = flags.kubeconfig ? [flags.kubeconfig] : (env.KUBECONFIG?.split(':').filter(Boolean) ?? [join(env.HOME ?? homedir(), '.kube', 'config')]);
  const file = candidates.find((f) => existsSync(f));
  if (!file) {
    if (flags.kubeconfig) throw new UsageError(`--kubeconfig ${flags.kubeconfig}: no such file`);
    // In a pod: the service account, as kubectl does.
    kc.loadFromCluster();
  } else {
    try {
      kc.loadFromFile(file);
    } catch (err) {
      throw new Error(`cannot read kubeconfig ${file}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }
  if (flags.context) {
    if (!kc.getContextObject(flags.context)) throw new UsageError(`context "${flags.context}" does not exist in ${file ?? 'the kubeconfig'}`);
    kc.setCurrentContext(flags.context);
  }
  if (!kc.getCurrentCluster()) throw new Error(`no cluster in ${file ?? 'the in-cluster config'}: set a context with a cluster, or pass --kubeconfig/--context`);
  return kc;
}

export interface KubeTarget {
  kube: Kubernetes;
  /** The namespace to act in; undefined with -A. */
  namespace: string | undefined;
  /** The namespace a single object is looked up in (-A does not apply). */
  defaultNamespace: string;
}

export function kubeTarget(flags: KubeFlags, env: NodeJS.ProcessEnv): KubeTarget {
  const kc = loadKubeConfig(flags, env);
  const fromContext = kc.getContextObject(kc.getCurrentContext())?.namespace;
  const defaultNamespace = flags.namespace ?? fromContext ?? 'default';
  return { kube: new Kubernetes(kc), namespace: flags.allNamespaces ? undefined : defaultNamespace, defaultNamespace };
}
