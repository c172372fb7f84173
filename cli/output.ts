// kubectl's output conventions: a table with upper-case headers three spaces
// apart (-o wide adds columns), -o json/yaml print the objects as a List, -o
// name prints `kind/name` lines; AGE as kubectl prints it.
import { stringify } from 'yaml';
import type { OutputFormat } from './kube.js';
import type { CliIo } from './io.js';
import { formatTable } from '../local/table.js';

export const API_VERSION = 'kcr.io/v1alpha1';

export interface Printable {
  /** The object -o json/yaml prints. */
  object: object;
  /** -o name */
  name: string;
  /** Table cells: the default columns, then the wide ones. */
  cells: string[];
  wide?: string[];
}

/** A kubectl table: columns three spaces apart. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  return formatTable(header, rows, '   ');
}

/** A list in the chosen format; `kind` is the items' kind (its List for json/yaml). */
export function printList(kind: string, items: readonly Printable[], header: { cells: string[]; wide?: string[] }, format: OutputFormat | undefined): string {
  if (format === 'json' || format === 'yaml') {
    const list = { apiVersion: API_VERSION, kind: `${kind}List`, items: items.map((i) => i.object) };
    return format === 'json' ? `${JSON.stringify(list, null, 2)}\n` : stringify(list);
  }
  if (format === 'name') return items.map((i) => `${i.name}\n`).join('');
  const wide = format === 'wide';
  return table(
    wide ? [...header.cells, ...(header.wide ?? [])] : header.cells,
    items.map((i) => (wide ? [...i.cells, ...(i.wide ?? [])] : i.cells)),
  );
}

export function printOne(object: object, format: 'json' | 'yaml'): string {
  return format === 'json' ? `${JSON.stringify(object, null, 2)}\n` : stringify(object);
}

/** k8s.io/apimachinery/pkg/util/duration HumanDuration, which `kubectl get` prints as AGE. */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 0) return '0s';
  if (seconds < 60 * 2) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) return seconds % 60 === 0 ? `${minutes}m` : `${minutes}m${seconds % 60}s`;
  if (minutes < 60 * 3) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) return minutes % 60 === 0 ? `${hours}h` : `${hours}h${minutes % 60}m`;
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) return hours % 24 === 0 ? `${Math.floor(hours / 24)}d` : `${Math.floor(hours / 24)}d${hours % 24}h`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24)}d`;
  if (hours < 24 * 365 * 8) {
    const years = Math.floor(hours / 24 / 365);
    const days = Math.floor(hours / 24) % 365;
    return days === 0 ? `${years}y` : `${years}y${days}d`;
  }
  return `${Math.floor(hours / 24 / 365)}y`;
}

/** Bytes with binary suffixes, as Kubernetes quantities are written (Ki, Mi, Gi). */
export function humanBytes(bytes: number): string {
  const units = ['', 'Ki', 'Mi', 'Gi', 'Ti'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${bytes}` : `${v >= 10 ? Math.round(v) : v.toFixed(1)}${units[u]}`;
}

/** Help examples written with `%s` for the program: `kcr`, or `kubectl kcr` as the plugin. */
export function examples(io: Pick<CliIo, 'programName'>, text: string): string {
  return text.replaceAll('%s', io.programName ?? 'kcr');
}
