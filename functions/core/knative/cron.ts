// robfig/cron v3.0.1 as Knative runs it: the parser (parser.go) with the options
// of the PingSource webhook (knative/eventing pkg/apis/sources/v1/ping_validation.go:
// SecondOptional | Minute | Hour | Dom | Month | Dow | Descriptor), and
// SpecSchedule.Next (spec.go), which the mt-ping adapter fires by. A port rather than
// cron-parser because cron-parser accepts what Go refuses (L, #, H, weekday 7)
// and refuses what Go accepts (`CRON_TZ=` prefixes, `*-5`, `+5`).
// Error messages are robfig's word for word: Knative shows them to the user.

export type CronSchedule =
  | {
      kind: 'spec';
      second: ReadonlySet<number>;
      minute: ReadonlySet<number>;
      hour: ReadonlySet<number>;
      dom: ReadonlySet<number>;
      month: ReadonlySet<number>;
      dow: ReadonlySet<number>;
      /** A `*` or `?` (without a step > 1) in the field: days then match on the other field alone. */
      domStar: boolean;
      dowStar: boolean;
      /** IANA name of the time zone the fields are read in. */
      zone: string;
    }
  | { kind: 'every'; delayMs: number };

/** An expression robfig/cron refuses, with its message. */
export class CronSyntaxError extends Error {
  override readonly name = 'CronSyntaxError';
}

/**
 * The zone of a schedule without `CRON_TZ=`: Go's time.Local of the mt-ping
 * adapter, UTC in Knative's images (no TZ, no /etc/localtime).
 */
const ADAPTER_ZONE = 'UTC';

interface Bounds {
  min: number;
  max: number;
  names?: Record<string, number>;
}

const SECONDS: Bounds = { min: 0, max: 59 };
const MINUTES: Bounds = { min: 0, max: 59 };
const HOURS: Bounds = { min: 0, max: 23 };
const DOM: Bounds = { min: 1, max: 31 };
const MONTHS: Bounds = { min: 1, max: 12, names: { jan: 1, feb: 2, mar: 3, apr: 4, may: 5, jun: 6, jul: 7, aug: 8, sep: 9, oct: 10, nov: 11, dec: 12 } };
const DOW: Bounds = { min: 0, max: 6, names: { sun: 0, mon: 1, tue: 2, wed: 3, thu: 4, fri: 5, sat: 6 } };

// Go's unicode.IsSpace, which strings.Fields and strings.TrimSpace split and trim on.
const GO_SPACE = '\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const FIELDS = new RegExp(`[${GO_SPACE}]+`);
const TRIM = new RegExp(`^[${GO_SPACE}]+|[${GO_SPACE}]+$`, 'g');

/** robfig/cron's Parser.Parse with Knative's options. Throws CronSyntaxError. */
export function parseCron(input: string): CronSchedule {
  let spec = input;
  if (spec.length === 0) throw new CronSyntaxError('empty spec string');
  let zone = ADAPTER_ZONE;
  if (spec.startsWith('TZ=') || spec.startsWith('CRON_TZ=')) {
    const space = spec.indexOf(' ');
    // Go slices spec[eq+1:-1] here and panics, so the webhook call fails: refused either way.
    if (space < 0) throw new CronSyntaxError(`nothing after the time zone in ${JSON.stringify(spec)} (robfig/cron panics on it)`);
    const name = spec.slice(spec.indexOf('=') + 1, space);
    const loaded = loadLocation(name);
    if ('error' in loaded) throw new CronSyntaxError(`provided bad location ${name}: ${loaded.error}`);
    zone = loaded.zone;
    spec = spec.slice(space).replace(TRIM, '');
  }
  if (spec.startsWith('@')) return parseDescriptor(spec, zone);

  let fields = spec.split(FIELDS).filter((f) => f !== '');
  if (fields.length < 5 || fields.length > 6) throw new CronSyntaxError(`expected 5 to 6 fields, found ${fields.length}: [${fields.join(' ')}]`);
  if (fields.length === 5) fields = ['0', ...fields];
  const [second, minute, hour, dom, month, dow] = fields.map((f, i) => getField(f, [SECONDS, MINUTES, HOURS, DOM, MONTHS, DOW][i]!)) as [Field, Field, Field, Field, Field, Field];
  return { kind: 'spec', second: second.values, minute: minute.values, hour: hour.values, dom: dom.values, month: month.values, dow: dow.values, domStar: dom.star, dowStar: dow.star, zone };
}

interface Field {
  values: Set<number>;
  star: boolean;
}

function getField(field: string, r: Bounds): Field {
  const out: Field = { values: new Set(), star: false };
  // strings.FieldsFunc: empty items between commas are skipped, not errors.
  for (const expr of field.split(',').filter((e) => e !== '')) {
    const range = getRange(expr, r);
    for (const v of range.values) out.values.add(v);
    out.star ||= range.star;
  }
  return out;
}

function getRange(expr: string, r: Bounds): Field {
  const rangeAndStep = expr.split('/');
  const lowAndHigh = rangeAndStep[0]!.split('-');
  const singleDigit = lowAndHigh.length === 1;
  let start: bigint;
  let end: bigint;
  let step: bigint;
  let star = false;
  if (lowAndHigh[0] === '*' || lowAndHigh[0] === '?') {
    // Whatever follows a leading `*-` is ignored, as in Go.
    start = BigInt(r.min);
    end = BigInt(r.max);
    star = true;
  } else {
    start = parseIntOrName(lowAndHigh[0]!, r.names);
    if (lowAndHigh.length === 1) end = start;
    else if (lowAndHigh.length === 2) end = parseIntOrName(lowAndHigh[1]!, r.names);
    else throw new CronSyntaxError(`too many hyphens: ${expr}`);
  }
  if (rangeAndStep.length === 1) {
    step = 1n;
  } else if (rangeAndStep.length === 2) {
    step = mustParseInt(rangeAndStep[1]!);
    // "N/step" means "N-max/step".
    if (singleDigit) end = BigInt(r.max);
    if (step > 1n) star = false;
  } else {
    throw new CronSyntaxError(`too many slashes: ${expr}`);
  }
  if (start < BigInt(r.min)) throw new CronSyntaxError(`beginning of range (${start}) below minimum (${r.min}): ${expr}`);
  if (end > BigInt(r.max)) throw new CronSyntaxError(`end of range (${end}) above maximum (${r.max}): ${expr}`);
  if (start > end) throw new CronSyntaxError(`beginning of range (${start}) beyond end of range (${end}): ${expr}`);
  if (step === 0n) throw new CronSyntaxError(`step of range should be a positive number: ${expr}`);
  const values = new Set<number>();
  for (let v = start; v <= end; v += step) values.add(Number(v));
  return { values, star };
}

function parseIntOrName(expr: string, names: Record<string, number> | undefined): bigint {
  const named = names && Object.hasOwn(names, expr.toLowerCase()) ? names[expr.toLowerCase()] : undefined;
  return named !== undefined ? BigInt(named) : mustParseInt(expr);
}

const INT64_MAX = 2n ** 63n - 1n;

/** Go's strconv.Atoi (an optional sign, ASCII digits, 64 bits), then robfig's check for negatives. */
function mustParseInt(expr: string): bigint {
  const quoted = JSON.stringify(expr);
  if (!/^[+-]?[0-9]+$/.test(expr)) throw new CronSyntaxError(`failed to parse int from ${expr}: strconv.Atoi: parsing ${quoted}: invalid syntax`);
  const num = BigInt(expr);
  if (num > INT64_MAX || num < -INT64_MAX - 1n) throw new CronSyntaxError(`failed to parse int from ${expr}: strconv.Atoi: parsing ${quoted}: value out of range`);
  if (num < 0n) throw new CronSyntaxError(`negative number (${num}) not allowed: ${expr}`);
  return num;
}

function parseDescriptor(descriptor: string, zone: string): CronSchedule {
  const all = (r: Bounds) => new Set(Array.from({ length: r.max - r.min + 1 }, (_, i) => r.min + i));
  const at = (minute: number, hour: Set<number>, dom: Set<number>, month: Set<number>, dow: Set<number>, domStar: boolean, dowStar: boolean): CronSchedule => ({
    kind: 'spec',
    second: new Set([0]),
    minute: new Set([minute]),
    hour,
    dom,
    month,
    dow,
    domStar,
    dowStar,
    zone,
  });
  const midnight = new Set([0]);
  switch (descriptor) {
    case '@yearly':
    case '@annually':
      return at(0, midnight, new Set([1]), new Set([1]), all(DOW), false, true);
    case '@monthly':
      return at(0, midnight, new Set([1]), all(MONTHS), all(DOW), false, true);
    case '@weekly':
      return at(0, midnight, all(DOM), all(MONTHS), new Set([0]), true, false);
    case '@daily':
    case '@midnight':
      return at(0, midnight, all(DOM), all(MONTHS), all(DOW), true, true);
    case '@hourly':
      return at(0, all(HOURS), all(DOM), all(MONTHS), all(DOW), true, true);
  }
  const every = '@every ';
  if (descriptor.startsWith(every)) {
    const ms = parseGoDuration(descriptor.slice(every.length));
    if (typeof ms === 'string') throw new CronSyntaxError(`failed to parse duration ${descriptor}: ${ms}`);
    // cron.Every: at least a second, whole seconds.
    return { kind: 'every', delayMs: Math.max(1000, ms - (ms % 1000)) };
  }
  throw new CronSyntaxError(`unrecognized descriptor: ${descriptor}`);
}

const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, μs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Go's time.ParseDuration in milliseconds, or its error message. */
function parseGoDuration(s: string): number | string {
  const quoted = JSON.stringify(s);
  let rest = s;
  let sign = 1;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    sign = rest.startsWith('-') ? -1 : 1;
    rest = rest.slice(1);
  }
  if (rest === '0') return 0;
  if (rest === '') return `time: invalid duration ${quoted}`;
  let total = 0;
  while (rest !== '') {
    const num = /^([0-9]*)(\.[0-9]*)?/.exec(rest)!;
    if (num[0] === '' || num[0] === '.') return `time: invalid duration ${quoted}`;
    rest = rest.slice(num[0].length);
    const unit = /^[^0-9.]*/.exec(rest)![0];
    if (unit === '') return `time: missing unit in duration ${quoted}`;
    const factor = UNIT_MS[unit];
    if (factor === undefined) return `time: unknown unit ${JSON.stringify(unit)} in duration ${quoted}`;
    total += Number(num[0]) * factor;
    rest = rest.slice(unit.length);
  }
  return sign * total;
}

/**
 * Go's time.LoadLocation as far as a cluster can tell: UTC and Local by name,
 * otherwise a zone of the IANA database, looked up by file name, so case
 * matters (Intl does not care, hence the checks on top of it).
 */
function loadLocation(name: string): { zone: string } | { error: string } {
  if (name === '' || name === 'UTC' || name === 'Local') return { zone: name === 'Local' ? ADAPTER_ZONE : 'UTC' };
  if (name.includes('..') || name.startsWith('/') || name.startsWith('\\')) return { error: 'time: invalid location name' };
  let resolved: string;
  try {
    resolved = new Intl.DateTimeFormat('en-US', { timeZone: name }).resolvedOptions().timeZone;
  } catch {
    return { error: `unknown time zone ${name}` };
  }
  // Intl canonicalizes: the same name in another case must be refused; an alias
  // (US/Eastern → America/New_York) is checked for the database's capitalized segments.
  const sameName = resolved.toLowerCase() === name.toLowerCase();
  const ok = sameName ? resolved === name : name.split('/').every((segment) => /^[A-Z]/.test(segment));
  return ok ? { zone: name } : { error: `unknown time zone ${name}` };
}

/**
 * The first activation strictly after `after` (whole seconds), as robfig's
 * SpecSchedule.Next finds it; undefined when nothing matches within five years
 * (Go returns the zero time, and the adapter never fires).
 */
export function nextTime(schedule: CronSchedule, after: Date): Date | undefined {
  const from = Math.floor(after.getTime() / 1000) * 1000;
  if (schedule.kind === 'every') return new Date(from + schedule.delayMs);
  const s = schedule;
  const zone = new Zone(s.zone);
  let t = from + 1000;
  let added = false;
  const yearLimit = zone.wall(t).year + 5;
  const dayMatches = (w: Wall) => {
    const domMatch = s.dom.has(w.day);
    const dowMatch = s.dow.has(w.weekday);
    return s.domStar || s.dowStar ? domMatch && dowMatch : domMatch || dowMatch;
  };
  wrap: for (;;) {
    let w = zone.wall(t);
    if (w.year > yearLimit) return undefined;
    while (!s.month.has(w.month)) {
      if (!added) {
        added = true;
        t = zone.date(w.year, w.month, 1, 0, 0, 0);
        w = zone.wall(t);
      }
      t = zone.date(w.year, w.month + 1, w.day, w.hour, w.minute, w.second);
      w = zone.wall(t);
      if (w.month === 1) continue wrap;
    }
    while (!dayMatches(w)) {
      if (!added) {
        added = true;
        t = zone.date(w.year, w.month, w.day, 0, 0, 0);
        w = zone.wall(t);
      }
      t = zone.date(w.year, w.month, w.day + 1, w.hour, w.minute, w.second);
      w = zone.wall(t);
      // A day that does not start at midnight (DST): go back to, or on to, midnight.
      if (w.hour !== 0) {
        t += (w.hour > 12 ? 24 - w.hour : -w.hour) * 3_600_000;
        w = zone.wall(t);
      }
      if (w.day === 1) continue wrap;
    }
    while (!s.hour.has(w.hour)) {
      if (!added) {
        added = true;
        t = zone.date(w.year, w.month, w.day, w.hour, 0, 0);
      }
      t += 3_600_000;
      w = zone.wall(t);
      if (w.hour === 0) continue wrap;
    }
    while (!s.minute.has(w.minute)) {
      if (!added) {
        added = true;
        t = Math.floor(t / 60_000) * 60_000;
      }
      t += 60_000;
      w = zone.wall(t);
      if (w.minute === 0) continue wrap;
    }
    while (!s.second.has(w.second)) {
      if (!added) {
        added = true;
        t = Math.floor(t / 1000) * 1000;
      }
      t += 1000;
      w = zone.wall(t);
      if (w.second === 0) continue wrap;
    }
    return new Date(t);
  }
}

interface Wall {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  weekday: number;
}

/** Wall-clock reading and Go's time.Date in one IANA zone. */
class Zone {
  private readonly format: Intl.DateTimeFormat | undefined;

  constructor(name: string) {
    this.format =
      name === 'UTC'
        ? undefined
        : new Intl.DateTimeFormat('en-US', { timeZone: name, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' });
  }

  wall(ms: number): Wall {
    let utc = ms;
    if (this.format) {
      const p = Object.fromEntries(this.format.formatToParts(ms).map((x) => [x.type, Number(x.value)]));
      utc = Date.UTC(p.year!, p.month! - 1, p.day!, p.hour!, p.minute!, p.second!);
    }
    const d = new Date(utc);
    return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(), hour: d.getUTCHours(), minute: d.getUTCMinutes(), second: d.getUTCSeconds(), weekday: d.getUTCDay() };
  }

  /** time.Date: out-of-range fields normalize; a wall time in a DST gap or overlap gets the offset Go picks. */
  date(year: number, month: number, day: number, hour: number, minute: number, second: number): number {
    const naive = Date.UTC(year, month - 1, day, hour, minute, second);
    const guess = this.offset(naive);
    const other = this.offset(naive - guess);
    return naive - (other === guess ? guess : other);
  }

  private offset(ms: number): number {
    const w = this.wall(ms);
    return Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second) - Math.floor(ms / 1000) * 1000;
  }
}
