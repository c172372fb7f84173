// Prometheus metrics of one function. Each runtime has its own registry, so
// several functions can share a process (the local mode) without clashing.
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type FailureOutcome = 'bad_input' | 'transient' | 'error' | 'emit';

export class FunctionMetrics {
  readonly registry = new Registry();
  readonly received: Counter<'type'>;
  readonly emitted: Counter<'type'>;
  readonly failed: Counter<'type' | 'outcome'>;
  readonly duration: Histogram<'type'>;

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
    if (withProcessMetrics) collectDefaultMetrics({ register: this.registry });
  }
}
