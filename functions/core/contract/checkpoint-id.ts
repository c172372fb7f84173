// The checkpoint id is deterministic (same pod UID, container and kubelet
// timestamp give the same id, so redelivered and replayed events converge)
// and sorts by time (a fixed-width UTC timestamp prefix).
import { createHash } from 'node:crypto';

export const CHECKPOINT_ID_PATTERN = /^\d{8}T\d{6}Z-[0-9a-f]{12}$/;

export interface CheckpointIdInput {
  podUid: string;
  container: string;
  /** The kubelet's timestamp, as parsed from the archive name (RFC 3339). */
  checkpointedAt: string | Date;
}

export function checkpointId({ podUid, container, checkpointedAt }: CheckpointIdInput): string {
  const at = toDate(checkpointedAt);
  const iso = at.toISOString(); // 2026-11-23T18:15:04.000Z
  const stamp = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}T${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  const hash = createHash('sha256').update(`${podUid}\n${container}\n${iso}`).digest('hex').slice(0, 12);
  return `${stamp}-${hash}`;
}

/** The UTC time encoded in a checkpoint id (second precision). */
export function checkpointIdTime(id: string): Date {
  if (!CHECKPOINT_ID_PATTERN.test(id)) throw new Error(`not a checkpoint id: ${JSON.stringify(id)}`);
  const d = id.slice(0, 15);
  return new Date(`${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6, 8)}T${d.slice(9, 11)}:${d.slice(11, 13)}:${d.slice(13, 15)}Z`);
}

function toDate(value: string | Date): Date {
  const at = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(at.getTime())) throw new Error(`invalid checkpoint time: ${JSON.stringify(String(value))}`);
  return at;
}
