// Time arguments of `kcr events`: RFC 3339, or a duration back from now (`90s`, `15m`, `1h`, `2d`, `1w`).
import { UsageError } from './errors.js';

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

export function parseTimeArg(flag: string, value: string, now: Date): Date {
  const rel = /^(\d+)(s|m|h|d|w)$/.exec(value);
  if (rel) return new Date(now.getTime() - Number(rel[1]) * (UNIT_MS[rel[2] as string] as number));
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/i.test(value)) {
    const t = new Date(value);
    if (!Number.isNaN(t.getTime())) return t;
  }
  throw new UsageError(`${flag} ${JSON.stringify(value)}: expected an RFC 3339 time (2025-01-31T12:00:00Z) or a duration back from now (90s, 15m, 1h, 2d, 1w)`);
}
