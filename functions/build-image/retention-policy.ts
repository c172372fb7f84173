// What retention keeps, apart from its reads and deletions: the limits of a
// workload (its annotations over the cluster default) and which committed
// checkpoints of a container are over them. Pure; retention.ts applies it.
import { parseQuantityBytes } from '../core/runtime/quantity.js';

export const RETENTION_ANNOTATION = 'kcr.io/checkpoint-retention';
export const RETENTION_BYTES_ANNOTATION = 'kcr.io/checkpoint-retention-bytes';

export interface RetentionLimits {
  /** Committed checkpoints kept per container; 0 no limit. */
  keep: number;
  /** Bytes of archives kept per container; 0 no limit. */
  maxBytes: number;
}

/**
 * The workload's limits: each annotation, when it parses, replaces the
 * cluster default ("0" lifts that limit); one that does not is named in
 * `problems` and the default stands.
 */
export function retentionLimits(defaults: RetentionLimits, annotations: Readonly<Record<string, string>> | undefined): { limits: RetentionLimits; problems: string[] } {
  const problems: string[] = [];
  const limits = { ...defaults };
  const count = annotations?.[RETENTION_ANNOTATION];
  if (count !== undefined) {
    if (/^\d+$/.test(count.trim())) limits.keep = Number(count.trim());
    else problems.push(`${RETENTION_ANNOTATION}: ${JSON.stringify(count)} is not a whole number of checkpoints; keeping ${defaults.keep || 'all'}`);
  }
  const bytes = annotations?.[RETENTION_BYTES_ANNOTATION];
  if (bytes !== undefined) {
    const parsed = parseQuantityBytes(bytes);
    if (parsed !== undefined) limits.maxBytes = parsed;
    else problems.push(`${RETENTION_BYTES_ANNOTATION}: ${JSON.stringify(bytes)} is not a quantity of bytes (2Gi, 500M); keeping ${defaults.maxBytes || 'no limit'}`);
  }
  return { limits, problems };
}

export interface Kept {
  id: string;
  /** The archive's size in S3. */
  bytes: number;
  pinned: boolean;
}

/**
 * The committed checkpoints (newest first) over the limits: the newest ones
 * that fit both the count and the bytes are kept, everything older goes. A
 * pinned checkpoint is neither counted nor removed; `current` (the one just
 * built) counts but always stays, even alone over the bytes.
 */
export function overLimits(committed: readonly Kept[], limits: RetentionLimits, current: string): string[] {
  let count = 0;
  let bytes = 0;
  let full = false;
  const victims: string[] = [];
  for (const c of committed) {
    if (c.pinned) continue;
    const fits = !full && (limits.keep === 0 || count < limits.keep) && (limits.maxBytes === 0 || bytes + c.bytes <= limits.maxBytes);
    if (fits || c.id === current) {
      count++;
      bytes += c.bytes;
      continue;
    }
    full = true;
    victims.push(c.id);
  }
  return victims;
}
