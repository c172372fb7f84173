// Reading a function's /metrics in tests.

/** The value of one sample in Prometheus text format, whatever the label order. */
export function metric(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)\{(.*)\} (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...m[2]!.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

/** GETs `<fn>/metrics` and reads one sample. */
export async function scrape(fnUrl: string, name: string, labels: Record<string, string>): Promise<number | undefined> {
  return metric(await (await fetch(`${fnUrl}/metrics`)).text(), name, labels);
}
