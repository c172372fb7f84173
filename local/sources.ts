// What the local PingSource and ApiServerSource stand-ins share: the source
// resources as read from sources/*.yaml, sink resolution and the sender.
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { encodeBinary, type WireEvent } from '../functions/core/runtime/cloudevents-http.js';
import { parseResources, parseYamlDir } from './yaml-docs.js';

const SOURCES_API_VERSION = 'sources.knative.dev/v1';
const DEFAULT_SOURCES_DIR = fileURLToPath(new URL('../sources', import.meta.url));

const kref = z.object({ apiVersion: z.string().optional(), kind: z.string(), name: z.string(), namespace: z.string().optional() });
type SinkRef = z.infer<typeof kref>;

const sinkSchema = z.object({ ref: kref.optional(), uri: z.string().optional() }).refine((d) => d.ref !== undefined || d.uri !== undefined, 'a sink needs ref or uri');
type Sink = z.infer<typeof sinkSchema>;

const ceOverrides = z.object({ extensions: z.record(z.string(), z.string()).optional() }).optional();

const labelSelector = z.object({
  matchLabels: z.record(z.string(), z.string()).optional(),
  matchExpressions: z.array(z.object({ key: z.string(), operator: z.string(), values: z.array(z.string()).optional() })).optional(),
});

const metadata = z.object({ name: z.string(), namespace: z.string().optional(), generation: z.number().optional() }).passthrough();

const apiServerSourceSchema = z.object({
  apiVersion: z.literal(SOURCES_API_VERSION),
  kind: z.literal('ApiServerSource'),
  metadata,
  spec: z.object({
    mode: z.enum(['Resource', 'Reference']).optional(),
    resources: z.array(z.object({ apiVersion: z.string(), kind: z.string(), selector: labelSelector.optional() })).min(1),
    namespaceSelector: labelSelector.optional(),
    owner: z.object({ apiVersion: z.string().optional(), kind: z.string().optional() }).optional(),
    serviceAccountName: z.string().optional(),
    sink: sinkSchema,
    ceOverrides,
  }),
});
export type ApiServerSourceResource = z.infer<typeof apiServerSourceSchema>;

export const pingSourceSchema = z.object({
  apiVersion: z.literal(SOURCES_API_VERSION),
  kind: z.literal('PingSource'),
  metadata,
  spec: z.object({
    schedule: z.string().optional(),
    timezone: z.string().optional(),
    contentType: z.string().optional(),
    data: z.string().optional(),
    dataBase64: z.string().optional(),
    sink: sinkSchema,
    ceOverrides,
  }),
});
export type PingSourceResource = z.infer<typeof pingSourceSchema>;

interface SourcesConfig {
  apiServerSources: ApiServerSourceResource[];
  pingSources: PingSourceResource[];
}

/** Reads the ApiServerSources and PingSources of every `*.yaml` in a directory; other kinds are skipped. */
export function loadSourcesDir(dir: string = DEFAULT_SOURCES_DIR, defaultNamespace = 'default'): SourcesConfig {
  return split(parseYamlDir(dir, (text, origin) => parseSources(text, origin, defaultNamespace)));
}

export function parseSourcesYaml(text: string, origin = '<yaml>', defaultNamespace = 'default'): SourcesConfig {
  return split(parseSources(text, origin, defaultNamespace));
}

function parseSources(text: string, origin: string, defaultNamespace: string): (ApiServerSourceResource | PingSourceResource)[] {
  return parseResources(text, origin, defaultNamespace, (apiVersion, kind) =>
    apiVersion !== SOURCES_API_VERSION ? undefined : kind === 'PingSource' ? pingSourceSchema : kind === 'ApiServerSource' ? apiServerSourceSchema : undefined,
  );
}

function split(resources: (ApiServerSourceResource | PingSourceResource)[]): SourcesConfig {
  const out: SourcesConfig = { apiServerSources: [], pingSources: [] };
  for (const r of resources) {
    if (r.kind === 'PingSource') out.pingSources.push(r);
    else out.apiServerSources.push(r);
  }
  return out;
}

/** Maps a sink reference to a URL; undefined when unknown. */
export type SinkResolver = (ref: SinkRef, namespace: string) => string | undefined;

/** A resolver for the local mode: Broker references go to the local broker's ingress. */
export function brokerSinkResolver(brokerUrl: string, services: Record<string, string> = {}): SinkResolver {
  return (ref, namespace) => {
    if (ref.kind === 'Broker') return brokerUrl;
    if (ref.kind === 'Service') return services[`${ref.namespace ?? namespace}/${ref.name}`] ?? services[ref.name];
    return undefined;
  };
}

/** The sink's URL: `uri`, or the ref's address (with `uri` resolved against it when both are set). */
export function resolveSink(sink: Sink, namespace: string, resolver: SinkResolver | undefined): string {
  if (!sink.ref) return sink.uri!;
  const base = resolver?.(sink.ref, namespace);
  if (!base) throw new Error(`sink ${sink.ref.kind} ${sink.ref.namespace ?? namespace}/${sink.ref.name} is not resolvable`);
  return sink.uri ? new URL(sink.uri, base.endsWith('/') ? base : `${base}/`).toString() : base;
}

interface SendOptions {
  /** Retries after the first attempt (Knative's adapters: 5 for PingSource). */
  retries: number;
  /** First backoff; doubles each retry. */
  backoffMs: number;
  timeoutMs?: number;
}

/** POSTs an event in binary mode; retries network errors and 5xx/404/408/409/429. Resolves with the final status, throws when every attempt failed. */
export async function sendCloudEvent(target: string, event: WireEvent, options: SendOptions): Promise<number> {
  const { headers, body } = encodeBinary(event);
  let last = '';
  for (let attempt = 0; attempt <= options.retries; attempt++) {
    if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, options.backoffMs * 2 ** (attempt - 1)));
    try {
      const res = await fetch(target, {
        method: 'POST',
        headers,
        ...(body ? { body } : {}),
        signal: AbortSignal.timeout(options.timeoutMs ?? 30_000),
      });
      await res.arrayBuffer();
      if (res.status >= 200 && res.status < 300) return res.status;
      last = `HTTP ${res.status}`;
      if (!(res.status >= 500 || [404, 408, 409, 429].includes(res.status))) break;
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      last = `${e.message}${e.cause?.code ? ` (${e.cause.code})` : ''}`;
    }
  }
  throw new Error(`sending ${event.attributes.type} ${event.attributes.id} to ${target} failed: ${last}`);
}
