/**
 * Pure helpers over a dependency graph given as node ids (in declaration order) and, per node,
 * the ids it depends on. Edges to ids that are not nodes are ignored (the caller reports them).
 * Everything is deterministic: ties are broken by declaration order. Nothing recurses, so a long
 * chain cannot overflow the stack.
 */

/** A dependency graph: `deps.get(n)` lists the nodes `n` depends on (must finish before it). */
export interface DepGraph {
  /** Node ids in declaration order (the tie-breaker everywhere). */
  nodes: readonly string[];
  /** Direct dependencies per node; a missing entry means none. */
  deps: ReadonlyMap<string, readonly string[]>;
}

/** Result of topologicalOrder: the order, or one cycle that prevents it. */
export type TopoResult = { ok: true; order: string[] } | { ok: false; cycle: string[] };

/** Dependencies of each node as declaration indexes, unknown ids dropped, duplicates kept once. */
function indexEdges(graph: DepGraph): { index: Map<string, number>; edges: number[][] } {
  const index = new Map<string, number>();
  graph.nodes.forEach((n, i) => {
    if (!index.has(n)) index.set(n, i);
  });
  const edges = graph.nodes.map((n) => {
    const out = new Set<number>();
    for (const d of graph.deps.get(n) ?? []) {
      const j = index.get(d);
      if (j !== undefined) out.add(j);
    }
    return [...out];
  });
  return { index, edges };
}

/** A binary min-heap of numbers (declaration indexes). */
class MinHeap {
  readonly #items: number[] = [];
  get size(): number {
    return this.#items.length;
  }
  push(v: number): void {
    const a = this.#items;
    a.push(v);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p]! <= a[i]!) break;
      [a[p], a[i]] = [a[i]!, a[p]!];
      i = p;
    }
  }
  pop(): number {
    const a = this.#items;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && a[l]! < a[m]!) m = l;
        if (r < a.length && a[r]! < a[m]!) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i]!, a[m]!];
        i = m;
      }
    }
    return top;
  }
}

/**
 * Orders the nodes so every node comes after its dependencies; among nodes ready at the same
 * time, the one declared first goes first (so an acyclic spec keeps its written order where it
 * can). Returns a cycle instead when there is one.
 */
export function topologicalOrder(graph: DepGraph): TopoResult {
  const { edges } = indexEdges(graph);
  const n = graph.nodes.length;
  const dependents: number[][] = Array.from({ length: n }, () => []);
  const waiting = new Array<number>(n).fill(0);
  edges.forEach((ds, i) => {
    waiting[i] = ds.length;
    for (const d of ds) dependents[d]!.push(i);
  });
  const ready = new MinHeap();
  waiting.forEach((w, i) => {
    if (w === 0) ready.push(i);
  });
  const order: string[] = [];
  while (ready.size > 0) {
    const i = ready.pop();
    order.push(graph.nodes[i]!);
    for (const j of dependents[i]!) {
      waiting[j] = waiting[j]! - 1;
      if (waiting[j] === 0) ready.push(j);
    }
  }
  if (order.length === n) return { ok: true, order };
  const cycles = findCycles(graph);
  return { ok: false, cycle: cycles[0] ?? [] };
}

/** Strongly connected components (Tarjan, iterative), as lists of declaration indexes. */
function components(edges: number[][]): number[][] {
  const n = edges.length;
  const index = new Array<number>(n).fill(-1);
  const low = new Array<number>(n).fill(0);
  const onStack = new Array<boolean>(n).fill(false);
  const stack: number[] = [];
  const out: number[][] = [];
  let counter = 0;
  for (let root = 0; root < n; root++) {
    if (index[root] !== -1) continue;
    const work: Array<[node: number, next: number]> = [[root, 0]];
    index[root] = low[root] = counter++;
    stack.push(root);
    onStack[root] = true;
    while (work.length > 0) {
      const frame = work[work.length - 1]!;
      const [v, k] = frame;
      const ds = edges[v]!;
      if (k < ds.length) {
        frame[1] = k + 1;
        const w = ds[k]!;
        if (index[w] === -1) {
          index[w] = low[w] = counter++;
          stack.push(w);
          onStack[w] = true;
          work.push([w, 0]);
        } else if (onStack[w]) {
          low[v] = Math.min(low[v]!, index[w]!);
        }
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent) low[parent[0]] = Math.min(low[parent[0]]!, low[v]!);
      if (low[v] === index[v]) {
        const comp: number[] = [];
        let w: number;
        do {
          w = stack.pop()!;
          onStack[w] = false;
          comp.push(w);
        } while (w !== v);
        out.push(comp);
      }
    }
  }
  return out;
}

/**
 * Every independent cycle, one per strongly connected component, each as its path closed on its
 * first node (`['a', 'b', 'a']`: a depends on b, b on a). Each starts at the component's
 * earliest-declared node and is the shortest cycle through it. Ordered by that first node.
 */
export function findCycles(graph: DepGraph): string[][] {
  const { edges } = indexEdges(graph);
  const cycles: Array<{ start: number; path: number[] }> = [];
  for (const comp of components(edges)) {
    const members = new Set(comp);
    const start = Math.min(...comp);
    if (comp.length === 1 && !edges[start]!.includes(start)) continue;
    // Breadth-first search inside the component for the shortest way back to `start`.
    const prev = new Map<number, number>();
    const queue: number[] = [start];
    let found = false;
    for (let q = 0; q < queue.length && !found; q++) {
      const v = queue[q]!;
      for (const w of edges[v]!) {
        if (!members.has(w)) continue;
        if (w === start) {
          prev.set(-1, v);
          found = true;
          break;
        }
        if (!prev.has(w)) {
          prev.set(w, v);
          queue.push(w);
        }
      }
    }
    const path: number[] = [start];
    for (let v = prev.get(-1)!; v !== start; v = prev.get(v)!) path.push(v);
    path.push(start);
    // `path` was collected backwards from the last hop; put it in dependency direction.
    const forward = [start, ...path.slice(1, -1).reverse(), start];
    cycles.push({ start, path: forward });
  }
  cycles.sort((a, b) => a.start - b.start);
  return cycles.map((c) => c.path.map((i) => graph.nodes[i]!));
}

/** Formats a cycle path as `a → b → a`, eliding the middle of very long cycles. */
export function formatCycle(cycle: readonly string[], max = 12): string {
  if (cycle.length <= max) return cycle.join(' → ');
  const head = cycle.slice(0, max - 3);
  const tail = cycle.slice(-2);
  return [...head, `… ${cycle.length - head.length - tail.length} more`, ...tail].join(' → ');
}

/**
 * The longest dependency chain, counted in nodes, with its nodes from first to last. `order` must
 * be a topological order of `graph` (see topologicalOrder). Ties go to the chain that ends first
 * in `order` and, within it, to the dependency earliest in `order`.
 */
export function criticalPath(graph: DepGraph, order: readonly string[]): { length: number; refs: string[] } {
  const position = new Map<string, number>();
  order.forEach((n, i) => position.set(n, i));
  const length = new Map<string, number>();
  const via = new Map<string, string>();
  let end: string | undefined;
  for (const n of order) {
    let best = 0;
    let bestDep: string | undefined;
    for (const d of graph.deps.get(n) ?? []) {
      const l = length.get(d);
      if (l === undefined) continue;
      if (l > best || (l === best && bestDep !== undefined && position.get(d)! < position.get(bestDep)!)) {
        best = l;
        bestDep = d;
      }
    }
    length.set(n, best + 1);
    if (bestDep !== undefined) via.set(n, bestDep);
    if (end === undefined || best + 1 > length.get(end)!) end = n;
  }
  if (end === undefined) return { length: 0, refs: [] };
  const refs: string[] = [];
  for (let n: string | undefined = end; n !== undefined; n = via.get(n)) refs.push(n);
  refs.reverse();
  return { length: refs.length, refs };
}
