import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { criticalPath, findCycles, formatCycle, topologicalOrder, type DepGraph } from '../../src/spec/index.js';

/** Builds a graph from `node: dep dep` lines. */
function g(spec: Record<string, string[]>): DepGraph {
  return { nodes: Object.keys(spec), deps: new Map(Object.entries(spec)) };
}

describe('topologicalOrder', () => {
  test('dependencies come first; ready nodes keep declaration order', () => {
    const r = topologicalOrder(g({ c: ['a'], a: [], b: [], d: ['c', 'b'] }));
    expect(r).toEqual({ ok: true, order: ['a', 'c', 'b', 'd'] });
  });

  test('an acyclic graph already in order keeps its order', () => {
    expect(topologicalOrder(g({ a: [], b: ['a'], c: [], d: ['b', 'c'] }))).toEqual({ ok: true, order: ['a', 'b', 'c', 'd'] });
  });

  test('edges to unknown nodes are ignored; duplicate edges count once', () => {
    expect(topologicalOrder(g({ a: ['zzz'], b: ['a', 'a'] }))).toEqual({ ok: true, order: ['a', 'b'] });
  });

  test('a cycle is returned instead of an order', () => {
    const r = topologicalOrder(g({ x: [], a: ['c'], b: ['a'], c: ['b'] }));
    expect(r).toEqual({ ok: false, cycle: ['a', 'c', 'b', 'a'] });
  });

  test('a chain of 100k nodes does not overflow the stack', () => {
    const nodes = Array.from({ length: 100_000 }, (_, i) => `n${i}`);
    const deps = new Map(nodes.map((n, i) => [n, i === 0 ? [] : [nodes[i - 1]!]]));
    const r = topologicalOrder({ nodes: [...nodes].reverse(), deps });
    expect(r.ok && r.order[0] === 'n0' && r.order.at(-1) === 'n99999').toBe(true);
    expect(findCycles({ nodes, deps })).toEqual([]);
    expect(criticalPath({ nodes, deps }, nodes).length).toBe(100_000);
  });

  test('property: every node appears once, after all its dependencies', () => {
    fc.assert(
      fc.property(dagArb(), (graph) => {
        const r = topologicalOrder(graph);
        expect(r.ok).toBe(true);
        if (!r.ok) return;
        expect([...r.order].sort()).toEqual([...graph.nodes].sort());
        const at = new Map(r.order.map((n, i) => [n, i]));
        for (const n of graph.nodes) for (const d of graph.deps.get(n) ?? []) expect(at.get(d)!).toBeLessThan(at.get(n)!);
      }),
    );
  });
});

/** Random DAGs: node i may depend only on nodes before it, then the node list is shuffled. */
function dagArb() {
  return fc
    .integer({ min: 0, max: 25 })
    .chain((n) =>
      fc.tuple(
        fc.constant(n),
        fc.array(fc.array(fc.nat({ max: 24 }), { maxLength: 4 }), { minLength: n, maxLength: n }),
        fc.shuffledSubarray(Array.from({ length: n }, (_, i) => i), { minLength: n, maxLength: n }),
      ),
    )
    .map(([n, raw, order]) => {
      const deps = new Map<string, string[]>();
      for (let i = 0; i < n; i++) deps.set(`n${i}`, raw[i]!.filter((d) => d < i).map((d) => `n${d}`));
      return { nodes: order.map((i) => `n${i}`), deps } satisfies DepGraph;
    });
}

describe('findCycles', () => {
  test('a 3-cycle is its path, closed on the earliest-declared node', () => {
    expect(findCycles(g({ a: ['b'], b: ['c'], c: ['a'] }))).toEqual([['a', 'b', 'c', 'a']]);
    expect(formatCycle(['a', 'b', 'c', 'a'])).toBe('a → b → c → a');
  });

  test('a self-loop is a cycle of one', () => {
    expect(findCycles(g({ a: ['a'], b: [] }))).toEqual([['a', 'a']]);
  });

  test('independent cycles are each reported once, in declaration order', () => {
    const cycles = findCycles(g({ p: ['q'], q: ['p'], x: [], a: ['b'], b: ['c'], c: ['a'], d: ['a'] }));
    expect(cycles).toEqual([
      ['p', 'q', 'p'],
      ['a', 'b', 'c', 'a'],
    ]);
  });

  test('the shortest cycle through the first node is chosen', () => {
    // a → b → a, and a → c → d → a: both through a; the shorter one is reported.
    expect(findCycles(g({ a: ['c', 'b'], b: ['a'], c: ['d'], d: ['a'] }))).toEqual([['a', 'b', 'a']]);
  });

  test('an acyclic graph has none', () => {
    expect(findCycles(g({ a: [], b: ['a'], c: ['a', 'b'] }))).toEqual([]);
  });

  test('property: a returned cycle is a real closed walk along dependency edges', () => {
    const arb = fc
      .integer({ min: 1, max: 12 })
      .chain((n) => fc.array(fc.array(fc.nat({ max: n - 1 }), { maxLength: 3 }), { minLength: n, maxLength: n }));
    fc.assert(
      fc.property(arb, (raw) => {
        const graph: DepGraph = {
          nodes: raw.map((_, i) => `n${i}`),
          deps: new Map(raw.map((ds, i) => [`n${i}`, ds.map((d) => `n${d}`)])),
        };
        const cycles = findCycles(graph);
        const topo = topologicalOrder(graph);
        expect(cycles.length === 0).toBe(topo.ok);
        for (const c of cycles) {
          expect(c[0]).toBe(c.at(-1));
          expect(new Set(c.slice(0, -1)).size).toBe(c.length - 1);
          for (let i = 0; i + 1 < c.length; i++) expect(graph.deps.get(c[i]!)).toContain(c[i + 1]);
        }
      }),
    );
  });

  test('formatCycle elides the middle of a long cycle', () => {
    const cycle = [...Array.from({ length: 30 }, (_, i) => `n${i}`), 'n0'];
    const text = formatCycle(cycle);
    expect(text.startsWith('n0 → n1 → ')).toBe(true);
    expect(text).toMatch(/… 20 more → n29 → n0$/);
  });
});

describe('criticalPath', () => {
  test('longest chain counted in nodes, with its nodes in order', () => {
    const graph = g({ a: [], b: [], c: ['a'], d: ['c', 'b'], e: ['b'] });
    const r = topologicalOrder(graph);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(criticalPath(graph, r.order)).toEqual({ length: 3, refs: ['a', 'c', 'd'] });
  });

  test('ties go to the earliest chain', () => {
    const graph = g({ a: [], b: [], c: ['a'], d: ['b'] });
    expect(criticalPath(graph, ['a', 'b', 'c', 'd'])).toEqual({ length: 2, refs: ['a', 'c'] });
  });

  test('empty graph and single node', () => {
    expect(criticalPath(g({}), [])).toEqual({ length: 0, refs: [] });
    expect(criticalPath(g({ a: [] }), ['a'])).toEqual({ length: 1, refs: ['a'] });
  });

  test('property: the path is a chain of dependency edges no shorter than any chain', () => {
    fc.assert(
      fc.property(dagArb(), (graph) => {
        const r = topologicalOrder(graph);
        if (!r.ok) throw new Error('dag expected');
        const cp = criticalPath(graph, r.order);
        expect(cp.length).toBe(cp.refs.length);
        for (let i = 1; i < cp.refs.length; i++) expect(graph.deps.get(cp.refs[i]!)).toContain(cp.refs[i - 1]);
        // Brute-force longest chain.
        const memo = new Map<string, number>();
        const longest = (n: string): number => {
          if (memo.has(n)) return memo.get(n)!;
          const v = 1 + Math.max(0, ...(graph.deps.get(n) ?? []).map(longest));
          memo.set(n, v);
          return v;
        };
        expect(cp.length).toBe(Math.max(0, ...graph.nodes.map(longest)));
      }),
    );
  });
});
