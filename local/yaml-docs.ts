// Kubernetes resources read from YAML, for the local mode's readers of
// eventing/ and sources/: every document of every *.yaml in a directory,
// the wanted kinds validated against their schema.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { z } from 'zod';

type Namespaced = { metadata: { name: string; namespace?: string | undefined } };

/**
 * The documents of `text` whose apiVersion/kind `schemaFor` knows, validated;
 * a resource without a namespace gets `defaultNamespace`, as `kubectl apply -n`
 * would. Invalid YAML or an invalid resource throws, naming the file.
 */
export function parseResources<S extends z.ZodType<Namespaced>>(
  text: string,
  origin: string,
  defaultNamespace: string,
  schemaFor: (apiVersion: unknown, kind: unknown) => S | undefined,
): z.infer<S>[] {
  const out: z.infer<S>[] = [];
  parseAllDocuments(text).forEach((doc, i) => {
    if (doc.errors.length) throw new Error(`${origin}: document ${i + 1} is not valid YAML: ${doc.errors[0]!.message}`);
    const value: unknown = doc.toJS();
    if (typeof value !== 'object' || value === null) return;
    const { apiVersion, kind } = value as { apiVersion?: unknown; kind?: unknown };
    const schema = schemaFor(apiVersion, kind);
    if (!schema) return;
    const result = schema.safeParse(value);
    if (!result.success) {
      const issue = result.error.issues[0]!;
      const name = (value as { metadata?: { name?: unknown } }).metadata?.name;
      throw new Error(`${origin}: ${String(kind)} ${String(name ?? `#${i + 1}`)} is invalid at ${issue.path.join('.') || '(root)'}: ${issue.message}`);
    }
    const resource = result.data as z.infer<S>;
    resource.metadata.namespace ??= defaultNamespace;
    out.push(resource);
  });
  return out;
}

/** `parse` applied to every *.yaml / *.yml of a directory, in name order. */
export function parseYamlDir<T>(dir: string, parse: (text: string, origin: string) => T[]): T[] {
  return readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
    .flatMap((f) => parse(readFileSync(join(dir, f), 'utf8'), join(dir, f)));
}
