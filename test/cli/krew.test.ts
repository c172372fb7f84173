// The krew manifest (krew/kcr.yaml) has the fields krew requires
// (sigs.k8s.io/krew pkg/index/validation: name, version vX.Y.Z, homepage,
// shortDescription, platforms with a selector, uri, sha256 and bin), names
// Node under caveats with package.json's engines, and its bin is an
// executable that exists.
import { accessSync, constants, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const ROOT = resolve(import.meta.dirname, '..', '..');

interface KrewPlugin {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec: {
    version: string;
    homepage: string;
    shortDescription: string;
    description: string;
    caveats: string;
    platforms: { selector: { matchExpressions: { key: string; operator: string; values: string[] }[] }; uri: string; sha256: string; files: { from: string; to: string }[]; bin: string }[];
  };
}

describe('krew manifest', () => {
  const plugin = parse(readFileSync(join(ROOT, 'krew', 'kcr.yaml'), 'utf8')) as KrewPlugin;
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; engines: { node: string }; bin: Record<string, string> };

  it('is a krew Plugin named kcr, at package.json’s version', () => {
    expect(plugin).toMatchObject({ apiVersion: 'krew.googlecontainertools.github.com/v1alpha2', kind: 'Plugin', metadata: { name: 'kcr' } });
    expect(plugin.spec.version).toBe(`v${pkg.version}`);
    expect(plugin.spec.homepage).toMatch(/^https:\/\//);
    // krew's index limits it to a short line.
    expect(plugin.spec.shortDescription.length).toBeLessThanOrEqual(50);
    expect(plugin.spec.description.length).toBeGreaterThan(0);
  });

  it('names Node and the engines version under caveats', () => {
    const min = /(\d+\.\d+)/.exec(pkg.engines.node)?.[1];
    expect(plugin.spec.caveats).toMatch(/Node\.js/);
    expect(plugin.spec.caveats).toContain(`>= ${min}`);
  });

  it('has platforms with a selector, the release archive, a sha256 and the kubectl-kcr bin', () => {
    expect(plugin.spec.platforms.length).toBeGreaterThan(0);
    for (const p of plugin.spec.platforms) {
      expect(p.selector.matchExpressions.length).toBeGreaterThan(0);
      expect(p.uri).toContain(`/v${pkg.version}/`);
      expect(p.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(p.bin).toBe(pkg.bin['kubectl-kcr']);
      accessSync(join(ROOT, p.bin), constants.X_OK);
    }
  });
});
