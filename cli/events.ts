// `kcr events list | show | replay`: reads the event archive in S3 and sends
// archived events again (archiving the copies it sends past the broker).
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { ObjectStore } from '../functions/core/storage/object-store.js';
import { readEnv } from '../functions/core/runtime/config.js';
import { ConfigError, errorMessage } from '../functions/core/runtime/errors.js';
import { parseRawRequest } from '../functions/core/runtime/parse.js';
import { CHECKPOINT_ID_EXTENSION, EVENTS_PREFIX, archiveEvent, checkArchived, isDeadLetter, isDeadLetterKey, type StructuredEvent } from '../functions/event-archive/archived-event.js';
import { findById, selectEvents, type ArchivedObject, type EventFilter, type TimeRange } from './archive-query.js';
import { destinationOf, replayEvent, send, toBinary } from './replay.js';
import { formatTable } from '../local/table.js';
import { parseTimeArg } from './time.js';
import { UsageError } from './errors.js';
import { httpUrl } from './options.js';
import type { CliIo, S3Settings } from './io.js';

const LIST_LOOKBACK = '24h';
/** How far back `show`/`replay <id>` look without --since. */
const ID_LOOKBACK = '90d';
/** Events stamped slightly ahead of this machine's clock are still found. */
const CLOCK_SKEW_MS = 3_600_000;
const SEND_TIMEOUT_MS = 30_000;

interface ShowOptions {
  since?: string;
  until?: string;
  deadLetter?: boolean;
}

interface FilterOptions extends ShowOptions {
  type?: string[];
  subject?: string;
  checkpointId?: string;
  limit?: number;
  json?: boolean;
}

interface S3Options {
  s3Endpoint?: string;
  s3AccessKey?: string;
  s3SecretKey?: string;
  s3Region?: string;
  bucket?: string;
}

interface ReplayOptions extends FilterOptions {
  broker?: string;
  to?: string;
  dryRun?: boolean;
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [
    ...(previous ?? []),
    ...value
      .split(',')
      .map((v) => v.trim())
      .filter(Boolean),
  ];
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

function addFilterOptions(cmd: Command, what: string): Command {
  return cmd
    .option('--type <type>', `only ${what} of this type (repeatable, comma-separated; a trailing * matches a prefix)`, collect)
    .option('--subject <subject>', `only ${what} with this subject (a trailing * matches a prefix)`)
    .option('--checkpoint-id <id>', `only ${what} about this checkpoint (extension ${CHECKPOINT_ID_EXTENSION})`)
    .option('--since <time>', `only ${what} at or after this time: RFC 3339 or a duration back from now (30m, 1h, 2d)`)
    .option('--until <time>', `only ${what} at or before this time: RFC 3339 or a duration back from now`)
    .option('--dead-letter', `only dead letters (${what} the broker could not deliver)`);
}

/** Adds `events` to the program, so it inherits the program's output and exit handling. */
export function addEventsCommand(program: Command, io: CliIo): Command {
  const events = program
    .command('events')
    .description('list, show and replay the CloudEvents archived in S3 by event-archive')
    .option('--s3-endpoint <url>', 'S3 endpoint (default: $KCR_S3_ENDPOINT)')
    .option('--s3-access-key <key>', 'S3 access key (default: $KCR_S3_ACCESS_KEY)')
    .option('--s3-secret-key <key>', 'S3 secret key (default: $KCR_S3_SECRET_KEY)')
    .option('--s3-region <region>', 'S3 region (default: $KCR_S3_REGION or us-east-1)')
    .option('--bucket <name>', 'bucket (default: $KCR_S3_BUCKET or kcr-checkpoints)');

  addFilterOptions(events.command('list').description(`list archived events, oldest first (default --since ${LIST_LOOKBACK}; --limit keeps the newest)`), 'events')
    .option('--limit <n>', 'at most this many events (the newest)', positiveInt)
    .option('--json', 'print JSON for scripts')
    .action(async (opts: FilterOptions, cmd: Command) => list(io, opts, cmd));

  events
    .command('show')
    .description(`print one archived event as JSON (searches the last ${ID_LOOKBACK} unless --since is given)`)
    .argument('<id>', 'the CloudEvent id')
    .option('--since <time>', 'search from this time (RFC 3339 or 1h, 2d…): a narrower, faster scan')
    .option('--until <time>', 'search up to this time')
    .option('--dead-letter', 'show the dead-letter copy rather than the original')
    .action(async (id: string, opts: ShowOptions, cmd: Command) => show(io, id, opts, cmd));

  addFilterOptions(
    events
      .command('replay')
      .description('send archived events again, with a new id and the extension kcrreplayof=<original id>')
      .argument('[ids...]', 'ids of archived events (or select them with the filter options)'),
    'events',
  )
    .option('--limit <n>', 'replay at most this many events (the newest)', positiveInt)
    .addOption(new Option('--broker <url>', 'the broker ingress to send to (default: $KCR_BROKER_URL, then $K_SINK); event-archive archives what it receives').argParser(httpUrl).conflicts('to'))
    .addOption(new Option('--to <url>', "one function's URL to send to directly; kcr archives each copy the function answered, as event-archive would").argParser(httpUrl))
    .option('--dry-run', 'print what would be sent, send nothing')
    .option('--json', 'print JSON for scripts')
    .action(async (ids: string[], opts: ReplayOptions, cmd: Command) => replay(io, ids, opts, cmd));

  return events;
}

function now(io: CliIo): Date {
  return io.now ? io.now() : new Date();
}

function openStore(io: CliIo, cmd: Command): ObjectStore {
  const o = cmd.optsWithGlobals<S3Options>();
  // Flags override the variables the functions read, then the same validation applies.
  const env: NodeJS.ProcessEnv = {
    ...io.env,
    ...(o.s3Endpoint ? { KCR_S3_ENDPOINT: o.s3Endpoint } : {}),
    ...(o.s3AccessKey ? { KCR_S3_ACCESS_KEY: o.s3AccessKey } : {}),
    ...(o.s3SecretKey ? { KCR_S3_SECRET_KEY: o.s3SecretKey } : {}),
    ...(o.s3Region ? { KCR_S3_REGION: o.s3Region } : {}),
    ...(o.bucket ? { KCR_S3_BUCKET: o.bucket } : {}),
  };
  let settings: S3Settings;
  try {
    const c = readEnv(['KCR_S3_ENDPOINT', 'KCR_S3_ACCESS_KEY', 'KCR_S3_SECRET_KEY', 'KCR_S3_REGION', 'KCR_S3_BUCKET'], env);
    settings = { endpoint: c.KCR_S3_ENDPOINT, accessKey: c.KCR_S3_ACCESS_KEY, secretKey: c.KCR_S3_SECRET_KEY, region: c.KCR_S3_REGION, bucket: c.KCR_S3_BUCKET };
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(`${err.message} (set the variables or pass --s3-endpoint, --s3-access-key, --s3-secret-key, --bucket)`);
    throw err;
  }
  return io.openStore(settings);
}

function range(io: CliIo, opts: Pick<FilterOptions, 'since' | 'until'>, lookback: string): TimeRange {
  const t = now(io);
  const since = parseTimeArg('--since', opts.since ?? lookback, t);
  const until = opts.until ? parseTimeArg('--until', opts.until, t) : new Date(t.getTime() + CLOCK_SKEW_MS);
  if (since > until) throw new UsageError(`--since ${since.toISOString()} is after --until ${until.toISOString()}`);
  return { since, until, includeUndated: opts.since === undefined && opts.until === undefined };
}

function filterOf(opts: FilterOptions): EventFilter {
  return {
    ...(opts.type?.length ? { types: opts.type } : {}),
    ...(opts.subject ? { subject: opts.subject } : {}),
    ...(opts.checkpointId ? { checkpointId: opts.checkpointId } : {}),
    ...(opts.deadLetter ? { deadLetter: true } : {}),
  };
}

/** Wraps S3 failures with what was being read, so the user sees where it failed. */
async function fromArchive<T>(store: ObjectStore, what: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    throw new Error(`${what} in s3://${store.bucket}/events/ failed: ${errorMessage(err)}`, { cause: err });
  }
}

interface EventSummary {
  key: string;
  time?: string;
  id?: string;
  type?: string;
  source?: string;
  subject?: string;
  checkpointId?: string;
  deadLetter?: { code?: string; destination?: string };
  malformed?: true;
}

function summarize(obj: ArchivedObject): EventSummary {
  const e = obj.event;
  if (!e) return { key: obj.key, malformed: true };
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  const dead = isDeadLetter(e) || isDeadLetterKey(obj.key);
  const fields: EventSummary = { key: obj.key, time: str(e.time), id: str(e.id), type: str(e.type), source: str(e.source), subject: str(e.subject), checkpointId: str(e[CHECKPOINT_ID_EXTENSION]) };
  if (dead) fields.deadLetter = { code: str(e.knativeerrorcode), destination: str(e.knativeerrordest) };
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)) as EventSummary;
}

async function list(io: CliIo, opts: FilterOptions, cmd: Command): Promise<void> {
  const r = range(io, opts, LIST_LOOKBACK);
  const store = openStore(io, cmd);
  const found = await fromArchive(store, 'listing events', () => selectEvents(store, r, filterOf(opts), opts.limit));
  // Selected newest first (so --limit keeps the newest); printed oldest first, like a log.
  const rows = found.reverse().map(summarize);
  if (opts.json) {
    io.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    return;
  }
  if (!rows.length) {
    io.stderr.write(`no archived events match between ${r.since.toISOString()} and ${r.until.toISOString()}\n`);
    return;
  }
  const header = ['TIME', 'ID', 'TYPE', 'SUBJECT', 'CHECKPOINT ID'];
  if (opts.deadLetter) header.push('DELIVERY ERROR');
  const table = rows.map((s) => {
    if (s.malformed) return ['?', '?', `(malformed: ${s.key})`, '', ''];
    const row = [s.time ?? '(no time)', s.id ?? '', s.type ?? '', s.subject ?? '', s.checkpointId ?? ''];
    if (opts.deadLetter) row.push(`${s.deadLetter?.code ?? '?'} ${s.deadLetter?.destination ?? ''}`.trim());
    return row;
  });
  io.stdout.write(formatTable(header, table));
}

/** The copy to use: the original unless the dead letter is asked for (or is all there is). */
function pick(copies: ArchivedObject[], deadLetter: boolean | undefined): ArchivedObject | undefined {
  const dead = (o: ArchivedObject) => isDeadLetterKey(o.key) || (o.event !== undefined && isDeadLetter(o.event));
  if (deadLetter) return copies.find(dead);
  return copies.find((o) => !dead(o)) ?? copies[0];
}

async function findOne(io: CliIo, store: ObjectStore, id: string, opts: ShowOptions): Promise<ArchivedObject> {
  const r = range(io, opts, ID_LOOKBACK);
  const copies = await fromArchive(store, `looking up event ${id}`, () => findById(store, id, r));
  const chosen = pick(copies, opts.deadLetter);
  if (!chosen) {
    const what = opts.deadLetter ? `no dead letter of event ${JSON.stringify(id)}` : `no archived event with id ${JSON.stringify(id)}`;
    const hint = opts.since ? '' : '; use --since to search further back';
    throw new Error(`${what} in s3://${store.bucket}/events/ between ${r.since.toISOString()} and ${r.until.toISOString()}${hint}`);
  }
  for (const other of copies) if (other !== chosen) io.stderr.write(`note: event ${id} is also archived at s3://${store.bucket}/${other.key}\n`);
  return chosen;
}

async function show(io: CliIo, id: string, opts: ShowOptions, cmd: Command): Promise<void> {
  const store = openStore(io, cmd);
  const obj = await findOne(io, store, id, opts);
  if (!obj.event) throw new Error(`archived object s3://${store.bucket}/${obj.key} is not a JSON object`);
  io.stdout.write(`${JSON.stringify(obj.event, null, 2)}\n`);
}

interface ReplayLine {
  key: string;
  originalId: string;
  id: string;
  type: string;
  subject?: string;
  target: string;
  status: number | 'dry-run' | 'error';
  /** Key of the copy kcr archived itself (sent with --to, past the broker). */
  archived?: string;
  archiveError?: string;
  error?: string;
  headers?: Record<string, string>;
  body?: string;
}

async function replay(io: CliIo, ids: string[], opts: ReplayOptions, cmd: Command): Promise<void> {
  const destination = destinationOf(opts, io.env);
  if (!destination) throw new UsageError('replay needs a destination: --broker <url>, --to <function url>, or $KCR_BROKER_URL / $K_SINK');
  const target = destination.url;
  const filter = filterOf(opts);
  const hasSelection = Object.keys(filter).length > 0 || opts.since !== undefined || opts.until !== undefined;
  if (ids.length && (filter.types || filter.subject || filter.checkpointId)) {
    throw new UsageError('give either event ids or filter options (--type, --subject, --checkpoint-id), not both');
  }
  if (!ids.length && !hasSelection) {
    throw new UsageError('replay what? give event ids, or filter options (--type, --subject, --checkpoint-id, --since, --until, --dead-letter)');
  }
  const store = openStore(io, cmd);
  let selected: ArchivedObject[];
  if (ids.length) {
    selected = [];
    for (const id of ids) selected.push(await findOne(io, store, id, opts));
  } else {
    // Oldest first, the order they happened in.
    selected = (await fromArchive(store, 'selecting events', () => selectEvents(store, range(io, opts, LIST_LOOKBACK), filter, opts.limit))).reverse();
    if (!selected.length) throw new Error('no archived events match the filter; nothing replayed');
  }

  // Every object is checked before anything is sent, so a bad one sends nothing.
  const checked: { key: string; event: StructuredEvent }[] = [];
  const problems: string[] = [];
  for (const obj of selected) {
    const check = checkArchived(obj.text);
    if (check.ok) checked.push({ key: obj.key, event: check.event });
    else problems.push(`s3://${store.bucket}/${obj.key}: ${check.error}`);
  }
  if (problems.length) {
    throw new Error(`cannot replay ${problems.length} malformed archived object${problems.length > 1 ? 's' : ''}; nothing was sent:\n  ${problems.join('\n  ')}`);
  }

  const fetchImpl = io.fetch ?? fetch;
  const lines: ReplayLine[] = [];
  for (const { key, event } of checked) {
    const copy = replayEvent(event);
    const message = toBinary(copy);
    const base = { key, originalId: event.id, id: copy.id, type: copy.type, ...(copy.subject ? { subject: copy.subject } : {}), target };
    if (opts.dryRun) {
      lines.push({ ...base, status: 'dry-run', headers: message.headers, body: message.body });
      continue;
    }
    const result = await send(target, message, fetchImpl, SEND_TIMEOUT_MS);
    const line: ReplayLine = { ...base, status: result.status ?? 'error', ...(result.error ? { error: result.error } : {}) };
    // The broker has event-archive archive what arrives; past it, kcr archives the copy itself, in
    // event-archive's form, once the function answered (any answer: the copy arrived).
    if (!destination.broker && result.status !== undefined) {
      try {
        for (const received of parseRawRequest(message.headers, message.body)) line.archived = await archiveEvent(store, received);
      } catch (err) {
        line.archiveError = errorMessage(err);
      }
    }
    lines.push(line);
  }

  if (opts.json) io.stdout.write(`${JSON.stringify(lines, null, 2)}\n`);
  else {
    io.stdout.write(`${opts.dryRun ? 'dry run: would send' : 'sent'} ${lines.length} event${lines.length === 1 ? '' : 's'} to ${target}\n`);
    io.stdout.write(
      formatTable(
        ['ORIGINAL ID', 'NEW ID', 'TYPE', 'SUBJECT', 'STATUS'],
        lines.map((l) => [l.originalId, l.id, l.type, l.subject ?? '', l.error ? `${l.status} ${l.error}` : String(l.status)]),
      ),
    );
    if (opts.dryRun) for (const l of lines) io.stdout.write(`\n# ${l.originalId} → POST ${target}\n${JSON.stringify({ headers: l.headers, body: l.body }, null, 2)}\n`);
    const archived = lines.filter((l) => l.archived).length;
    if (archived) io.stdout.write(`archived ${archived} of them in s3://${store.bucket}/${EVENTS_PREFIX}, as event-archive archives what the broker receives\n`);
  }
  const unarchived = lines.filter((l) => l.archiveError);
  for (const l of unarchived) io.stderr.write(`replay of ${l.originalId} reached ${target}, but was not archived: ${l.archiveError}\n`);
  const failed = lines.filter((l) => l.status === 'error' || (typeof l.status === 'number' && (l.status < 200 || l.status > 299)));
  if (failed.length) {
    for (const l of failed) io.stderr.write(`replay of ${l.originalId} (${l.key}) to ${target} failed: ${l.error ?? `HTTP ${l.status}`}\n`);
    throw new Error(`${failed.length} of ${lines.length} replayed events were not accepted`);
  }
  if (unarchived.length) throw new Error(`${unarchived.length} of ${lines.length} replayed events were not archived`);
}
