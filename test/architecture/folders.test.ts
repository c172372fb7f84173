// The shape of the tree, as README's "Repository layout" describes it: no
// folder-level import cycle among the product's folders nor among the folders
// inside them (a folder and the folder of its parts, simulator/ and
// simulator/kubelet/, are one piece), functions depend on
// functions/core and never on each other, and neither a product folder nor a
// benchmark reaches into the tests.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..', '..');
const PRODUCT = ['functions', 'node-agent', 'cli', 'local', 'simulator'];
const IMPORT = /(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g;

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === 'node_modules' ? [] : sources(path);
    return /\.ts$/.test(name) && !name.endsWith('.d.ts') ? [path] : [];
  });
}

/** A top-level folder, or `functions/<name>` (functions/core is one folder). */
function folderOf(path: string): string {
  const parts = relative(ROOT, path).split('/');
  return parts[0] === 'functions' && parts.length > 2 ? `functions/${parts[1]}` : (parts[0] as string);
}

/** The directory a file is in, at any depth (functions/core/runtime, simulator/kubelet). */
const directoryOf = (path: string): string => relative(ROOT, dirname(path));

/** Whether one folder holds the other: a folder and the folder of its parts are one piece. */
const nested = (a: string, b: string): boolean => a.startsWith(`${b}/`) || b.startsWith(`${a}/`);

/** Edges between folders, each with one import that makes it. */
function folderGraph(from: string[], folder: (path: string) => string = folderOf): Map<string, Map<string, string>> {
  const graph = new Map<string, Map<string, string>>();
  for (const top of from) {
    for (const file of sources(join(ROOT, top))) {
      for (const [, spec] of readFileSync(file, 'utf8').matchAll(IMPORT)) {
        const target = resolve(dirname(file), spec as string);
        const [a, b] = [folder(file), folder(target)];
        if (a === b || (folder === directoryOf && nested(a, b))) continue;
        const edges = graph.get(a) ?? new Map<string, string>();
        if (!edges.has(b)) edges.set(b, `${relative(ROOT, file)} → ${spec}`);
        graph.set(a, edges);
      }
    }
  }
  return graph;
}

/** Every cycle, as the path that closes it (depth-first search, white/grey/black). */
function cycles(graph: Map<string, Map<string, string>>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (node: string) => {
    state.set(node, 'open');
    path.push(node);
    for (const next of graph.get(node)?.keys() ?? []) {
      if (state.get(next) === 'open') found.push([...path.slice(path.indexOf(next)), next]);
      else if (!state.has(next)) visit(next);
    }
    path.pop();
    state.set(node, 'done');
  };
  for (const node of graph.keys()) if (!state.has(node)) visit(node);
  return found;
}

describe('the folders', () => {
  const graph = folderGraph(PRODUCT);

  it('import each other without a cycle', () => {
    const described = cycles(graph).map((c) => c.map((f, i) => (i + 1 < c.length ? `${f} (${graph.get(f)!.get(c[i + 1]!)})` : f)).join(' → '));
    expect(described).toEqual([]);
  });

  it('nor do the folders inside them (functions/core/runtime and functions/core/kubernetes, simulator/cluster and simulator/kubelet)', () => {
    const inner = folderGraph(PRODUCT, directoryOf);
    const folders = new Set([...inner].flatMap(([from, edges]) => [from, ...edges.keys()]));
    expect([...folders]).toEqual(expect.arrayContaining(['functions/core/runtime', 'functions/core/kubernetes', 'simulator/kubelet', 'simulator/cluster']));
    const described = cycles(inner).map((c) => c.map((f, i) => (i + 1 < c.length ? `${f} (${inner.get(f)!.get(c[i + 1]!)})` : f)).join(' → '));
    expect(described).toEqual([]);
  });

  it('finds a cycle when there is one (the check itself works)', () => {
    const g = new Map([
      ['a', new Map([['b', 'x']])],
      ['b', new Map([['c', 'y']])],
      ['c', new Map([['a', 'z']])],
    ]);
    expect(cycles(g)).toEqual([['a', 'b', 'c', 'a']]);
  });

  it('a function depends on functions/core, never on another function', () => {
    const crossing = [...graph.entries()]
      .filter(([from]) => from.startsWith('functions/') && from !== 'functions/core')
      .flatMap(([from, edges]) => [...edges.entries()].filter(([to]) => to.startsWith('functions/') && to !== 'functions/core').map(([to, via]) => `${from} → ${to}: ${via}`));
    expect(crossing).toEqual([]);
  });

  it('functions/core depends on no other product folder', () => {
    expect([...(graph.get('functions/core')?.entries() ?? [])].map(([to, via]) => `${to}: ${via}`)).toEqual([]);
  });

  it('no product folder, nor the benchmarks, imports the tests', () => {
    const intoTests = [...folderGraph([...PRODUCT, 'bench']).entries()].flatMap(([from, edges]) => [...edges.entries()].filter(([to]) => to === 'test').map(([, via]) => `${from}: ${via}`));
    expect(intoTests).toEqual([]);
  });
});
