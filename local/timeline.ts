// The local mode's live view: one line per event that crosses the broker, a
// progress bar for archives streaming into S3 (on a terminal), and failed
// deliveries. Pod and workload status updates are counted, not printed, unless
// verbose: a crash loop sends dozens a second.
import { statSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { IncomingMessage } from 'node:http';
import cliProgress from 'cli-progress';
import type { BrokerObservation } from './broker.js';
import { dataOf, type WireEvent } from '../functions/core/runtime/cloudevents-http.js';

interface TimelineOptions {
  out: NodeJS.WriteStream;
  verbose?: boolean;
  /** Where the archive of a checkpoint is on its node (to know an upload's size). */
  checkpointDir: (node: string) => string;
}

const MiB = 1024 * 1024;
const SHORT: Record<string, string> = {
  'dev.knative.sources.ping': 'ping',
  'dev.knative.apiserver.resource.add': 'apiserver.add',
  'dev.knative.apiserver.resource.update': 'apiserver.update',
  'dev.knative.apiserver.resource.delete': 'apiserver.delete',
};

export class Timeline {
  private readonly bars?: cliProgress.MultiBar;
  private readonly uploads = new Map<string, { bar?: cliProgress.SingleBar; total: number; done: number }>();
  readonly counts = new Map<string, number>();
  private started = Date.now();

  constructor(private readonly options: TimelineOptions) {
    if (options.out.isTTY) {
      this.bars = new cliProgress.MultiBar(
        { format: '  ↑ {name} [{bar}] {percentage}% {done}/{size} MiB', hideCursor: true, clearOnComplete: true, stopOnComplete: true, stream: options.out },
        cliProgress.Presets.shades_classic,
      );
    }
  }

  line(text: string): void {
    const t = ((Date.now() - this.started) / 1000).toFixed(1).padStart(6);
    const out = `${t}s  ${text}`;
    if (this.bars) this.bars.log(`${out}\n`);
    else this.options.out.write(`${out}\n`);
  }

  observe = (o: BrokerObservation): void => {
    if (o.kind === 'received') {
      const type = o.event.attributes.type ?? '?';
      this.counts.set(type, (this.counts.get(type) ?? 0) + 1);
      if (type === 'io.kcr.checkpoint.created') this.expectUpload(o.event);
      if (type === 'io.kcr.checkpoint.stored' || type === 'io.kcr.checkpoint.failed') this.finishUpload(o.event.attributes.kcrcheckpointid);
      if (type.endsWith('.update') && type.startsWith('dev.knative.apiserver') && !this.options.verbose) return;
      this.line(`${(SHORT[type] ?? type.replace(/^io\.kcr\./, '')).padEnd(18)} ${(o.event.attributes.subject ?? '').padEnd(44)} ${describe(type, o.event)}`);
    } else if (o.kind === 'dead-lettered' || o.kind === 'dropped') {
      this.line(`✗ ${o.kind.padEnd(16)} ${(o.event.attributes.type ?? '').padEnd(44)} ${'trigger' in o ? o.trigger : ''} ${'reason' in o ? String(o.reason) : ''}`);
    } else if (o.kind === 'failed') {
      this.line(`✗ delivery failed  ${(o.event.attributes.type ?? '').padEnd(44)} → ${o.trigger}: ${'status' in o && o.status ? `HTTP ${o.status}` : ''} ${'error' in o ? String(o.error ?? '') : ''}`);
    }
  };

  /** Counts archive bytes as they reach S3 (single PUT or multipart parts). */
  s3Request = (req: IncomingMessage, url: URL): void => {
    if (req.method !== 'PUT' || !url.pathname.endsWith('/archive.tar')) return;
    const id = decodeURIComponent(url.pathname).split('/').at(-2) ?? '';
    const upload = this.uploads.get(id);
    if (!upload) return;
    const size = Number(req.headers['content-length'] ?? 0);
    req.once('end', () => {
      upload.done += size;
      upload.bar?.update(Math.min(upload.done, upload.total), { done: (upload.done / MiB).toFixed(1) });
    });
  };

  private expectUpload(event: WireEvent): void {
    const data = dataOf(event) as { id?: string; node?: string; archivePath?: string };
    if (!data.id || !data.node || !data.archivePath) return;
    let total = 0;
    try {
      total = statSync(join(this.options.checkpointDir(data.node), basename(data.archivePath))).size;
    } catch {
      return; // already moved off the node
    }
    const bar = this.bars && total >= 8 * MiB ? this.bars.create(total, 0, { name: data.id, done: '0.0', size: (total / MiB).toFixed(1) }) : undefined;
    this.uploads.set(data.id, { ...(bar ? { bar } : {}), total, done: 0 });
  }

  private finishUpload(id: string | undefined): void {
    const upload = id ? this.uploads.get(id) : undefined;
    if (!upload || !id) return;
    upload.bar?.update(upload.total);
    upload.bar?.stop();
    if (upload.bar) this.bars?.remove(upload.bar);
    this.uploads.delete(id);
  }

  stop(): void {
    this.bars?.stop();
  }
}

function describe(type: string, event: WireEvent): string {
  const d = (dataOf(event) ?? {}) as Record<string, unknown>;
  const s = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));
  switch (type) {
    case 'dev.knative.sources.ping':
      return 'resync' in d ? 'resync' : `${s(d.kind)}/${s(d.name)}`;
    case 'io.kcr.schedule.synced':
      return `${s(d.action)} "${s(d.schedule)}"${d.reason ? `: ${s(d.reason)}` : ''}`;
    case 'io.kcr.checkpoint.created':
      return `${s(d.id)} on ${s(d.node)}`;
    case 'io.kcr.checkpoint.stored': {
      const a = d.artifact as { size?: number; sha256?: string } | undefined;
      return `${s(d.id)} ${((a?.size ?? 0) / MiB).toFixed(1)} MiB sha256:${(a?.sha256 ?? '').slice(0, 12)}`;
    }
    case 'io.kcr.image.built':
      return `${s(d.id)} ${s((d.image as { reference?: string } | undefined)?.reference)}`;
    case 'io.kcr.pod.restored':
      return `${s(d.strategy)} from ${s(d.checkpointId)}`;
    case 'io.kcr.checkpoint.failed':
    case 'io.kcr.restore.failed':
      return `${s(d.stage)}: ${s(d.reason)}`;
    case 'io.kcr.checkpoint.requested':
      return 'pod' in d ? `pod ${s(d.pod)}` : `${s(d.kind)}/${s(d.name)}`;
    default: {
      const meta = (d.metadata ?? {}) as { name?: string };
      return `${s(d.kind)} ${s(meta.name)}`;
    }
  }
}
