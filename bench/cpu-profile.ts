// Self time of a V8 CPU profile (.cpuprofile, as `node --cpu-prof` or the
// inspector's Profiler.stop writes it) summed by what the code does, for the
// artifact benchmark's `--profile`: hashing, tar parsing, minio, HTTP,
// streams, Buffer copies, kcr's own code, GC, idle.
//
// A sample's time is the gap to the next sample (as Chrome DevTools counts
// it). A sample in a V8 builtin or a native binding has no script URL, so it
// counts for the nearest caller that has one (Buffer.prototype.copy's
// TypedArray set counts as node:buffer, a hash's native update as
// node:internal/crypto/hash).
import { z } from 'zod';

export const CpuProfile = z.object({
  nodes: z.array(
    z.object({
      id: z.number(),
      callFrame: z.object({ functionName: z.string(), url: z.string() }),
      children: z.array(z.number()).optional(),
    }),
  ),
  samples: z.array(z.number()),
  timeDeltas: z.array(z.number()),
});
export type CpuProfile = z.infer<typeof CpuProfile>;

export const CATEGORIES = ['sha256', 'tar parsing', 'minio signing', 'minio other', 'HTTP + sockets', 'Node streams', 'Buffer copies', 'kcr code', 'other JS', 'V8 + native', 'GC', 'idle'] as const;
export type Category = (typeof CATEGORIES)[number];

/** First match wins; tested against the frame's URL (V8's pseudo-frames by their name). */
const RULES: [RegExp, Category][] = [
  [/^node:internal\/crypto\/hash$/, 'sha256'],
  [/\/node_modules\/(tar-stream|streamx|b4a|fast-fifo|text-decoder)\//, 'tar parsing'],
  [/^node:internal\/crypto\/hmac$|\/node_modules\/minio\/.*\/signing\.[cm]?js$/, 'minio signing'],
  [/\/node_modules\/(minio|fast-xml-parser|xml2js|lodash|block-stream2|through2)\//, 'minio other'],
  [/^node:(_http_\w+|https?|net|dns|internal\/(net|stream_base_commons|http|dns\/.*|deps\/undici\/.*|url))$/, 'HTTP + sockets'],
  [/^node:(stream|internal\/streams\/.*|internal\/webstreams\/.*)$/, 'Node streams'],
  [/^node:(buffer|internal\/buffer)$/, 'Buffer copies'],
  [/\/(functions|node-agent)\//, 'kcr code'],
];

function categoryOf(url: string, functionName: string): Category {
  // node:internal/crypto/hash holds Hmac too: minio's SigV4 signing key and signature.
  if (url === 'node:internal/crypto/hash' && functionName === 'Hmac') return 'minio signing';
  return RULES.find(([re]) => re.test(url))?.[1] ?? 'other JS';
}

const PSEUDO: Record<string, Category> = { '(idle)': 'idle', '(garbage collector)': 'GC', '(program)': 'V8 + native', '(root)': 'V8 + native' };

export interface ProfileSummary {
  totalMs: number;
  byCategory: Record<Category, number>;
  /** The functions with the most self time (after the URL-less frames were given to their callers). */
  top: { name: string; category: Category; ms: number }[];
}

export function summarizeProfile(profile: CpuProfile, topN = 8): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  /** The frame a sample's time counts for: itself, or its nearest caller with a script URL. */
  const owner = new Map<number, { name: string; category: Category }>();
  const ownerOf = (id: number): { name: string; category: Category } => {
    const known = owner.get(id);
    if (known) return known;
    const leaf = byId.get(id);
    let found: { name: string; category: Category } = { name: leaf?.callFrame.functionName || '(anonymous)', category: 'V8 + native' };
    const pseudo = leaf && PSEUDO[leaf.callFrame.functionName];
    if (pseudo) found = { name: leaf.callFrame.functionName, category: pseudo };
    else {
      for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
        const frame = byId.get(at)?.callFrame;
        if (frame?.url) {
          found = { name: `${frame.functionName || '(anonymous)'} ${frame.url.replace(/^.*\/node_modules\//, '').replace(/^.*\/dist\//, '')}`, category: categoryOf(frame.url, frame.functionName) };
          break;
        }
      }
    }
    owner.set(id, found);
    return found;
  };
  const byCategory = Object.fromEntries(CATEGORIES.map((c) => [c, 0])) as Record<Category, number>;
  const byName = new Map<string, { name: string; category: Category; ms: number }>();
  let totalMs = 0;
  profile.samples.forEach((id, i) => {
    const ms = (profile.timeDeltas[i + 1] ?? 0) / 1000;
    const o = ownerOf(id);
    byCategory[o.category] += ms;
    totalMs += ms;
    const entry = byName.get(o.name) ?? { ...o, ms: 0 };
    entry.ms += ms;
    byName.set(o.name, entry);
  });
  const top = [...byName.values()]
    .filter((e) => e.category !== 'idle')
    .sort((a, b) => b.ms - a.ms)
    .slice(0, topN);
  return { totalMs, byCategory, top };
}
