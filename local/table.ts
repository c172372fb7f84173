// Plain-text tables for terminal output: left-aligned columns, two spaces apart
// unless the caller says otherwise (kcr's kubectl-style output uses three).

export function formatTable(header: readonly string[], rows: readonly (readonly string[])[], separator = '  '): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join(separator)
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}
