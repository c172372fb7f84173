// What can be checked of the container image without a container engine: the
// Dockerfile copies files that exist and that .dockerignore lets through, the
// build compiles them, and every entry point the cluster runs has its source.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadRepoDocs, named, REPO } from './support.js';

const dockerfile = readFileSync(join(REPO, 'Dockerfile'), 'utf8');
const dockerignore = readFileSync(join(REPO, '.dockerignore'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));
const buildConfig = JSON.parse(readFileSync(join(REPO, 'tsconfig.build.json'), 'utf8')) as { include: string[]; compilerOptions: { outDir: string } };

/** Sources of the COPY instructions that read the build context (not another stage). */
function contextCopies(): string[] {
  return dockerfile
    .split('\n')
    .filter((l) => /^COPY\s/.test(l) && !/--from=/.test(l))
    .flatMap((l) => l.trim().split(/\s+/).slice(1, -1));
}

/** `node … dist/x/y.js` → `x/y.ts`: the TypeScript source an entry point is compiled from. */
function sourceOf(distPath: string): string {
  const prefix = `${buildConfig.compilerOptions.outDir}/`;
  expect(distPath.startsWith(prefix), distPath).toBe(true);
  return distPath.slice(prefix.length).replace(/\.js$/, '.ts');
}

describe('container image', () => {
  it('copies only files that exist', () => {
    const sources = contextCopies();
    expect(sources).toEqual(expect.arrayContaining(['package.json', 'package-lock.json', 'functions', 'node-agent']));
    for (const s of sources) expect(existsSync(join(REPO, s)), s).toBe(true);
  });

  it('lets every copied file through .dockerignore', () => {
    expect(dockerignore[0]).toBe('*');
    for (const s of contextCopies()) expect(dockerignore, s).toContain(`!${s}${s.includes('.') ? '' : '/'}`);
  });

  it('compiles the directories it copies', () => {
    expect(buildConfig.include.sort()).toEqual(['functions', 'node-agent']);
  });

  it('installs production dependencies only in the runtime image, and runs as a numeric non-root user', () => {
    expect(dockerfile).toMatch(/npm ci --omit=dev/);
    expect(dockerfile).toMatch(/^USER [1-9]\d*:\d+$/m);
    expect(dockerfile).toMatch(/^FROM node:20-slim$/m);
  });

  it('has a source for the node-agent entry point the DaemonSet runs', () => {
    const ds = named(loadRepoDocs(), 'apps/v1', 'DaemonSet', 'node-agent');
    const command = (ds.spec as { template: { spec: { containers: { command: string[] }[] } } }).template.spec.containers[0]?.command ?? [];
    expect(command[0]).toBe('node');
    expect(existsSync(join(REPO, sourceOf(command[1] ?? '')))).toBe(true);
  });
});
