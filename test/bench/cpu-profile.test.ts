import { describe, expect, it } from 'vitest';
import { summarizeProfile, type CpuProfile } from '../../bench/cpu-profile.js';

// A hand-made profile in V8's .cpuprofile shape: (root) → handle (kcr) → update
// (node:internal/crypto/hash) → a URL-less native frame; (root) → (idle), (garbage collector).
const frame = (functionName: string, url = '') => ({ functionName, url });
const profile: CpuProfile = {
  nodes: [
    { id: 1, callFrame: frame('(root)'), children: [2, 5, 6] },
    { id: 2, callFrame: frame('handle', 'file:///app/dist/functions/store-artifact/handler.js'), children: [3, 7] },
    { id: 3, callFrame: frame('update', 'node:internal/crypto/hash'), children: [4] },
    { id: 4, callFrame: frame('') },
    { id: 5, callFrame: frame('(idle)') },
    { id: 6, callFrame: frame('(garbage collector)') },
    { id: 7, callFrame: frame('copy', 'node:buffer') },
  ],
  // The time of sample i is timeDeltas[i + 1] (µs): the last sample counts nothing.
  samples: [4, 4, 3, 5, 6, 2, 7, 5],
  timeDeltas: [0, 1000, 2000, 1000, 4000, 500, 250, 750],
};

describe('summarizeProfile', () => {
  it("counts node's Hmac (minio's SigV4 signing) apart from the hashing it shares a module with", () => {
    const signing: CpuProfile = {
      nodes: [
        { id: 1, callFrame: frame('(root)'), children: [2] },
        { id: 2, callFrame: frame('Hmac', 'node:internal/crypto/hash') },
      ],
      samples: [2, 2],
      timeDeltas: [0, 3000],
    };
    const s = summarizeProfile(signing);
    expect(s.byCategory['minio signing']).toBe(3);
    expect(s.byCategory.sha256).toBe(0);
  });

  it('sums self time by category, a URL-less frame counting for its caller', () => {
    const s = summarizeProfile(profile);
    expect(s.byCategory.sha256).toBe(4); // samples 0, 1, 2: 1 + 2 + 1 ms
    expect(s.byCategory.idle).toBe(4);
    expect(s.byCategory.GC).toBe(0.5);
    expect(s.byCategory['kcr code']).toBe(0.25);
    expect(s.byCategory['Buffer copies']).toBe(0.75);
    expect(s.byCategory['tar parsing']).toBe(0);
    expect(s.totalMs).toBe(9.5);
  });

  it('lists the busiest functions without idle time', () => {
    const s = summarizeProfile(profile, 2);
    expect(s.top.map((t) => [t.name, t.category, t.ms])).toEqual([
      ['update node:internal/crypto/hash', 'sha256', 4],
      ['copy node:buffer', 'Buffer copies', 0.75],
    ]);
  });
});
