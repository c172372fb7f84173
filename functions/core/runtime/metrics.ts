// Prometheus metrics of one function. Each runtime has its own registry, so
// several functions can share a process (the local mode) without clashing.
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type FailureOutcome = 'bad_input' | 'transient' | 'error' | 'emit';

const MiB = 1024 * 1024;

/**
 * What handlers measure of the work itself (the runtime measures events).
 * Every function's registry carries them all; each function fills its own.
 */
const DOMAIN_METRICS = {
  kubeletCheckpointSeconds: {
    name: 'kcr_kubelet_checkpoint_duration_seconds',
    help: 'Kubelet checkpoint calls, by outcome (created, failed): how long the container stayed frozen, plus the API server hop',
    labelNames: ['outcome'],
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
  },
  archiveBytes: {
    name: 'kcr_checkpoint_archive_bytes',
    help: 'Size of the checkpoint archives stored in S3',
    labelNames: [],
    buckets: [MiB, 16 * MiB, 64 * MiB, 256 * MiB, 1024 * MiB, 4096 * MiB, 16384 * MiB],
  },
  transferSeconds: {
    name: 'kcr_artifact_transfer_seconds',
    help: 'Streaming an archive: node-agent to S3 (stage store), S3 to the registry or OCI layout (stage build)',
    labelNames: ['stage'],
    buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800],
  },
} as const;
export type DomainMetric = keyof typeof DOMAIN_METRICS;

export class FunctionMetrics {
  readonly registry = new Registry();
  readonly received: Counter<'type'>;
  readonly emitted: Counter<'type'>;
  readonly failed: Counter<'type' | 'outcome'>;
  readonly duration: Histogram<'type'>;
  private readonly domain: Record<DomainMetric, Histogram<string>>;

  constructor(functionName: string, withProcessMetrics = false) {
    this.registry.setDefaultLabels({ function: functionName });
    const registers = [this.registry];
    this.received = new Counter({ name: 'kcr_events_received_total', help: 'CloudEvents received, by type', labelNames: ['type'], registers });
    this.emitted = new Counter({ name: 'kcr_events_emitted_total', help: 'CloudEvents emitted to K_SINK, by type', labelNames: ['type'], registers });
    this.failed = new Counter({
      name: 'kcr_events_failed_total',
      help: 'Events not handled: bad_input (400), transient (503), error (500), emit (503 after a failed send)',
      labelNames: ['type', 'outcome'],
      registers,
    });
    this.duration = new Histogram({
      name: 'kcr_handler_duration_seconds',
      help: 'Time from receiving an event to answering, emission included',
      labelNames: ['type'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers,
    });
    this.domain = Object.fromEntries(
      Object.entries(DOMAIN_METRICS).map(([key, m]) => [key, new Histogram({ name: m.name, help: m.help, labelNames: [...m.labelNames], buckets: [...m.buckets], registers })]),
    ) as Record<DomainMetric, Histogram<string>>;
    if (withProcessMetrics) collectDefaultMetrics({ register: this.registry });
  }

  /** A handler's measurement (HandlerContext.observe). */
  observe(metric: DomainMetric, value: number, labels: Record<string, string> = {}): void {
    this.domain[metric].observe(labels, value);
  }
}
