// What bench/artifacts.ts asks of bench/kcr-worker.ts (argv) and what the worker answers (one JSON line on stdout).
import { z } from 'zod';
import { CheckpointStoredData } from '../functions/core/contract/events.js';

/** The checkpoint whose archive the node-agent serves, as request-checkpoint would announce it. */
export const BenchCheckpoint = z.object({
  node: z.string(),
  namespace: z.string(),
  pod: z.string(),
  podUid: z.string(),
  container: z.string(),
  workload: z.object({ kind: z.enum(['Deployment', 'StatefulSet']), name: z.string() }),
  /** RFC 3339, as in the archive's file name. */
  timestamp: z.string(),
});
export type BenchCheckpoint = z.infer<typeof BenchCheckpoint>;

/** Each function runs in a process of its own, as each is a Service of its own when deployed. */
export const WorkerJob = z.discriminatedUnion('stage', [z.object({ stage: z.literal('store'), checkpoint: BenchCheckpoint }), z.object({ stage: z.literal('build'), stored: CheckpointStoredData })]);
export type WorkerJob = z.infer<typeof WorkerJob>;

export const WorkerResult = z.object({
  stage: z.enum(['store', 'build']),
  /** Wall time of handle(), from the event in to the event out. */
  ms: z.number(),
  /** CPU time (user + system) the process spent in handle(): the rest of `ms` it waited for its peers. */
  cpuMs: z.number(),
  /** The process's peak RSS (VmHWM) after handle(). */
  peakRssBytes: z.number(),
  /** RSS once the modules are loaded and the handler is wired, before any byte moved. */
  startRssBytes: z.number(),
  /** store: the stored event's data, which the build stage takes. */
  stored: CheckpointStoredData.optional(),
  /** build: the image layer as pushed (smaller than the archive with gzip), and the image. */
  layerBytes: z.number().optional(),
  reference: z.string().optional(),
});
export type WorkerResult = z.infer<typeof WorkerResult>;
