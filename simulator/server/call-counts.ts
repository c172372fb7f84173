// Call counting: how many API calls the simulated server answered, by verb and
// resource, as tests and benchmarks read them (apiCalls, callCount).

export class CallCounter {
  private readonly counts = new Map<string, number>();
  total = 0;

  bump(verb: string, resource: string): void {
    const k = `${verb} ${resource}`;
    this.counts.set(k, (this.counts.get(k) ?? 0) + 1);
  }

  apiCalls(): { total: number; byKey: Record<string, number> } {
    return { total: this.total, byKey: Object.fromEntries(this.counts) };
  }

  /** Count for `verb` on `resource` (`pods`, `nodes/proxy`, `deployments`, or group-qualified `deployments.apps`). */
  callCount(verb: string, resource: string): number {
    let n = 0;
    for (const [k, v] of this.counts) {
      const [kVerb, kRes] = k.split(' ') as [string, string];
      if (kVerb !== verb) continue;
      const [resPart, sub] = kRes.split('/') as [string, string | undefined];
      const plural = resPart.split('.')[0]!;
      const candidates = [kRes, sub ? `${plural}/${sub}` : plural];
      if (candidates.includes(resource)) n += v;
    }
    return n;
  }

  reset(): void {
    this.counts.clear();
    this.total = 0;
  }
}
