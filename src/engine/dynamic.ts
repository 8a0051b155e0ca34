/**
 * The dynamic parts of a run: forEach, pipeline stages, adversarial verification, gates that
 * iterate, loop-until-dry and the merge of isolated edits. One mechanism serves them all: each
 * dynamic phase has virtual scheduler nodes (`<phase>/_start`, `<phase>/_done` and steps between)
 * that need no slot; when a step runs it reads the stored answers it waited for and adds the next
 * tasks to the running graph, plus the next step that waits for them.
 *
 * Everything here is derived from stored agent records and the plan, never from time: a resumed
 * run replays the same steps over the same records, makes the same tasks with the same content
 * keys, and so reuses every task that had finished.
 */
import type { AgentDef, PhaseDynamics, Plan, PlanPhase, PlanTask, TaskOrigin, TaskTemplate } from '../spec/types.js';
import { taskKey } from '../spec/key.js';
import type { AgentRecord, DynamicState, RunEvent, Verdict } from '../store/types.js';
import type { AttemptOutcome, Growth, SchedTask } from './scheduler.js';
import { CRITIC_SCHEMA, SKEPTIC_SCHEMA, answerOf, criticVerdict, identityOf, itemText, itemsOf, refutedBy, voteOf } from './findings.js';
import type { MergeItem, MergeResult } from './worktree.js';

/** What the driver needs from the run owner. */
export interface DynamicHost {
  /** The live plan: made tasks are appended to `tasks` and to their phase's `taskRefs` by `addTasks`. */
  plan: Plan;
  /** The latest succeeded record of a task whose key is current, when there is one. */
  record(ref: string): Promise<AgentRecord | undefined>;
  /** Adds made tasks to the live plan (and the owner's maps); returns the refs reused. */
  addTasks(tasks: PlanTask[]): Set<string>;
  /** Agents the run may still start under limits.maxAgents. */
  room(): number;
  journal(e: RunEvent): Promise<void>;
  /** The phase's dynamic state changed (for run.json and progress). */
  update(phaseId: string, state: DynamicState): void;
  /** Applies patches to the project's working tree (see worktree.ts). */
  applyPatches(items: MergeItem[], onApplied: (ref: string) => Promise<void>): Promise<MergeResult>;
  /** Refs whose patch an earlier owner already applied (journaled `merge.applied`). */
  mergedBefore: ReadonlySet<string>;
  /**
   * Refs of tasks made at run time that have an agent record from an earlier owner, by phase.
   * Until a resume has made them again they keep their place under limits.maxAgents, so the share
   * each phase gets does not depend on which phase happens to expand first.
   */
  recorded: ReadonlyMap<string, ReadonlySet<string>>;
  /** Whether a virtual node has reached its final state (a phase's end skipped after a failure). */
  ended(ref: string): boolean;
}

const now = () => new Date().toISOString();
const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

/** Most entries of a list kept in run.json (the rest are counted). */
const MAX_LISTED = 100;
/** Longest `{{seen}}` list handed to a converge round, in characters. */
const MAX_SEEN_CHARS = 12_000;

/** One finding waiting for (or done with) its skeptics. */
interface Finding {
  id: string;
  from: string;
  text: string;
  skeptics: string[];
  refuted?: boolean;
}

/** In-memory state of one dynamic phase; rebuilt by replaying its steps on resume. */
interface PhaseRun {
  phase: PlanPhase;
  d: PhaseDynamics;
  /** Refs of the work tasks (written, per item, per round, and fixes). */
  work: string[];
  /** Work task refs per item, in item order (for pipeline stages that follow this phase). */
  groups: { item: unknown; refs: string[] }[];
  state: DynamicState;
  findings: Finding[];
  seen: Set<string>;
  seenTexts: string[];
  round: number;
  /** Steps made so far, to name the next one. */
  steps: number;
}

/** The engine side of dynamic phases. */
export class Dynamics {
  readonly #h: DynamicHost;
  readonly #runs = new Map<string, PhaseRun>();
  readonly #keys = new Map<string, string>();
  /** Phases whose start node has made its tasks under this owner. */
  readonly #started = new Set<string>();
  /** Every task of the live plan by ref. */
  readonly #tasks = new Map<string, PlanTask>();

  constructor(host: DynamicHost) {
    this.#h = host;
    for (const t of host.plan.tasks) {
      this.#keys.set(t.ref, t.key);
      this.#tasks.set(t.ref, t);
    }
    for (const p of host.plan.phases) {
      if (!p.dynamic) continue;
      this.#keys.set(p.dynamic.done, p.dynamic.doneKey);
      const staticWork = p.dynamic.templates ? [] : [...p.taskRefs];
      this.#runs.set(p.id, {
        phase: p, d: p.dynamic, work: staticWork,
        groups: staticWork.map((ref) => ({ item: ref.slice(ref.indexOf('/') + 1), refs: [ref] })),
        state: {}, findings: [], seen: new Set(), seenTexts: [], round: 0, steps: 0,
      });
    }
  }

  /** The virtual nodes of the initial graph: each dynamic phase's start and end. */
  initialNodes(): SchedTask[] {
    const out: SchedTask[] = [];
    for (const r of this.#runs.values()) {
      out.push({ ref: r.d.start, phaseId: r.phase.id, deps: [...r.d.startDeps], virtual: true });
      // Plans stored before doneDeps existed end at their start node alone.
      out.push({ ref: r.d.done, phaseId: r.phase.id, deps: [...(r.d.doneDeps ?? [r.d.start])], virtual: true });
    }
    return out;
  }

  /** The dynamic state of every phase that has one. */
  states(): Map<string, DynamicState> {
    return new Map([...this.#runs].map(([id, r]) => [id, r.state]));
  }

  /** Work task refs of a phase (what later phases read from it): no skeptics, no checks. */
  outputsOf(phaseId: string): string[] {
    return this.#runs.get(phaseId)?.work ?? [];
  }

  /** A short note for the phase's digest: verdicts, gate, rounds, merge. */
  digestNote(phaseId: string): string | undefined {
    const s = this.#runs.get(phaseId)?.state;
    if (!s) return undefined;
    const lines: string[] = [];
    if (s.items?.dropped) lines.push(`${s.items.dropped} item(s) dropped over the cap (${s.items.dropReason ?? 'cap'}).`);
    if (s.verify) {
      lines.push(`Verified by ${s.verify.skeptics} skeptic(s) each: ${s.verify.confirmed} confirmed, ${s.verify.refuted} refuted, ${s.verify.unverified} unverified.`);
      for (const v of s.verify.verdicts.filter((x) => x.verdict === 'confirmed').slice(0, 20)) lines.push(`- confirmed ${v.id}: ${clip(v.finding, 200)}`);
      for (const v of s.verify.verdicts.filter((x) => x.verdict === 'refuted').slice(0, 10)) lines.push(`- REFUTED ${v.id}: ${clip(v.finding, 120)} (${clip(v.reasons[0] ?? '', 120)})`);
    }
    if (s.converge) lines.push(`Converged after ${s.converge.rounds} round(s): ${s.converge.findings} distinct finding(s); ${s.converge.stopped ?? ''}`);
    if (s.gate) lines.push(`Gate (${s.gate.kind}): ${s.gate.passed === true ? 'passed' : s.gate.passed === false ? 'failed' : 'pending'} after ${s.gate.iterations} of at most ${s.gate.maxIterations} run(s).`);
    if (s.merge) lines.push(`Merged ${s.merge.applied.length} patch(es)${s.merge.conflicts.length ? `; CONFLICTS: ${s.merge.conflicts.map((c) => c.ref).join(', ')}` : ''}.`);
    return lines.length ? lines.join('\n') : undefined;
  }

  /**
   * A work record as later tasks see it: refuted findings dropped. Structured findings are taken
   * out of their list; an output that was one refuted finding as a whole is replaced by a note.
   * (The record on disk keeps everything; the verdicts keep the reasons.)
   */
  withoutRefuted(rec: AgentRecord): { output: string; structured?: unknown } {
    const ref = `${rec.phaseId}/${rec.taskId}`;
    const r = this.#runs.get(rec.phaseId);
    const refuted = new Set((r?.findings ?? []).filter((f) => f.refuted && f.from === ref).map((f) => f.text));
    const keep = { output: rec.output, ...(rec.structured !== undefined ? { structured: rec.structured } : {}) };
    if (!r?.d.verify || refuted.size === 0) return keep;
    const path = r.d.verify.items;
    const answer = answerOf(rec);
    const filter = (list: unknown[]) => list.filter((item) => !refuted.has(itemText(item)));
    if (Array.isArray(answer)) return { output: JSON.stringify(filter(answer)), structured: filter(answer) };
    if (answer !== null && typeof answer === 'object') {
      const copy = structuredClone(answer) as Record<string, unknown>;
      let holder: Record<string, unknown> | undefined = copy;
      let key: string | undefined;
      if (path !== undefined) {
        const steps = path.split('.');
        key = steps.pop();
        for (const st of steps) holder = holder && typeof holder[st] === 'object' && holder[st] !== null ? (holder[st] as Record<string, unknown>) : undefined;
      } else {
        const lists = Object.entries(copy).filter(([, v]) => Array.isArray(v));
        if (lists.length === 1) key = lists[0]![0];
      }
      if (holder && key !== undefined && Array.isArray(holder[key])) {
        holder[key] = filter(holder[key] as unknown[]);
        return { output: JSON.stringify(copy), structured: copy };
      }
    }
    if (refuted.has(itemText(rec.output.trim()))) {
      return { output: `[refuted by skeptics: see the verdicts of phase ${rec.phaseId}]` };
    }
    return keep;
  }

  /** Runs one virtual node. */
  async run(task: SchedTask): Promise<AttemptOutcome> {
    const r = this.#runs.get(task.phaseId);
    if (!r) return { status: 'failed', retryable: false, cause: `no dynamic phase '${task.phaseId}'` };
    const step = task.ref.slice(task.ref.indexOf('/') + 2);
    try {
      if (task.ref === r.d.done) return { status: 'succeeded', retryable: false };
      // A phase that has ended (skipped after a failure under onFailure: continue) makes nothing more.
      if (this.#h.ended(r.d.done)) return { status: 'succeeded', retryable: false };
      if (task.ref === r.d.start) {
        // Marked once its tasks are in the plan: until then its earlier tasks keep their room.
        const out = await this.#start(r);
        this.#started.add(r.phase.id);
        return out;
      }
      if (step === 'post') return await this.#post(r, 'verify');
      if (step.startsWith('round-')) return await this.#afterRound(r, Number(step.slice(6)));
      if (step === 'verdict') return await this.#post(r, 'verdict');
      if (step.startsWith('gate-')) return await this.#afterCheck(r, Number(step.slice(5)));
      return { status: 'failed', retryable: false, cause: `unknown step ${task.ref}` };
    } catch (e) {
      return { status: 'failed', retryable: false, cause: `${task.ref}: ${e instanceof Error ? e.message : String(e)}` };
    }
  }

  // ---- making tasks ------------------------------------------------------------------------

  /** Reads the records of `refs` at once (the host caches them), before a loop reads them in order. */
  async #prefetch(refs: readonly string[]): Promise<void> {
    await Promise.all(refs.map((ref) => this.#h.record(ref)));
  }

  /** What a task of the live plan was made for (undefined for written tasks). */
  #origin(ref: string): TaskOrigin | undefined {
    return this.#tasks.get(ref)?.origin;
  }

  /**
   * Agents phase `r` may still make: the run's room under limits.maxAgents, less the places kept
   * for tasks other phases made under an earlier owner and have not made again yet.
   */
  #room(r: PhaseRun): number {
    let kept = 0;
    for (const [phaseId, refs] of this.#h.recorded) {
      // Once a phase has started again it makes what it makes; a phase the plan no longer has
      // (resume --spec) keeps nothing.
      if (phaseId === r.phase.id || this.#started.has(phaseId) || !this.#runs.has(phaseId)) continue;
      for (const ref of refs) if (!this.#tasks.has(ref)) kept++;
    }
    return this.#h.room() - kept;
  }

  #agent(name: string): AgentDef {
    const a = this.#h.plan.agents[name];
    if (!a) throw new Error(`agent '${name}' is not in the plan`);
    return a;
  }

  #make(r: PhaseRun, taskId: string, prompt: string, agentName: string, deps: string[], origin: TaskOrigin,
    extra: { schema?: Record<string, unknown>; isolation?: PlanTask['isolation'] } = {}): PlanTask {
    const agent = this.#agent(agentName);
    const ref = `${r.phase.id}/${taskId}`;
    const key = taskKey({
      phaseId: r.phase.id, taskId, prompt, agent,
      deps: deps.map((d) => ({ ref: d, key: this.#keys.get(d) ?? d })),
      ...(extra.schema ? { schema: extra.schema } : {}),
      ...(extra.isolation ? { isolation: extra.isolation } : {}),
      origin,
    });
    this.#keys.set(ref, key);
    const t: PlanTask = { ref, phaseId: r.phase.id, taskId, prompt, agent: agentName, deps, key, origin };
    if (extra.schema) t.schema = extra.schema;
    if (extra.isolation) t.isolation = extra.isolation;
    return t;
  }

  /** Adds made tasks and the next step (waiting for `waitFor`) to the graph. */
  #grow(r: PhaseRun, tasks: PlanTask[], next: string | undefined, waitFor: string[], label: string): Growth {
    const reused = this.#h.addTasks(tasks);
    for (const t of tasks) this.#tasks.set(t.ref, t);
    const sched: SchedTask[] = tasks.map((t) => ({ ref: t.ref, phaseId: t.phaseId, deps: [...t.deps] }));
    const g: Growth = { tasks: sched, done: reused };
    if (next !== undefined) {
      const ref = `${r.phase.id}/_${next}`;
      sched.push({ ref, phaseId: r.phase.id, deps: [...waitFor], virtual: true });
      g.extend = [{ ref: r.d.done, deps: [ref] }];
    }
    if (tasks.length > 0) {
      void this.#h.journal({ type: 'phase.expanded', t: now(), phaseId: r.phase.id, made: tasks.length, reused: reused.size, dropped: 0, step: label });
    }
    return g;
  }

  #templates(r: PhaseRun): TaskTemplate[] {
    return r.d.templates ?? [];
  }

  // ---- start: forEach, pipeline, converge, or straight to the checks ---------------------------

  async #start(r: PhaseRun): Promise<AttemptOutcome> {
    const d = r.d;
    if (d.forEach || d.pipeline) return this.#expandItems(r);
    if (d.converge) return { status: 'succeeded', retryable: false, grow: this.#makeRound(r, 1) };
    return this.#post(r, 'verify');
  }

  async #expandItems(r: PhaseRun): Promise<AttemptOutcome> {
    const d = r.d;
    const templates = this.#templates(r);
    // Items and, for a pipeline stage, the refs each item waits for.
    let entries: { item: unknown; after: string[] }[] = [];
    const problems: string[] = [];
    let duplicates = 0;
    if (d.forEach) {
      const from = this.#h.plan.phases.find((p) => p.id === d.forEach!.from)!;
      // Fix tasks of a gated source report on repairs, not items.
      const sourceRefs = (this.#runs.get(from.id)?.work ?? from.taskRefs).filter((ref) => this.#origin(ref)?.kind !== 'fix');
      const seen = new Set<string>();
      await this.#prefetch(sourceRefs);
      for (const ref of sourceRefs) {
        const raw = await this.#h.record(ref);
        if (!raw) {
          problems.push(`${ref} has no succeeded answer`);
          continue;
        }
        // A verified source hands on its confirmed findings only (it has ended: verdicts are in).
        const { structured: _all, ...rest } = raw;
        const rec: AgentRecord = { ...rest, ...this.withoutRefuted(raw) };
        const read = itemsOf(rec, d.forEach.items, false);
        if (read.problem) problems.push(read.problem);
        for (const item of read.items) {
          const id = identityOf(item, undefined, false);
          if (seen.has(id)) {
            duplicates++;
            continue;
          }
          seen.add(id);
          entries.push({ item, after: [...d.upstream] });
        }
      }
    } else {
      const up = this.#runs.get(d.pipeline!.from);
      const groups = up ? up.groups : (this.#h.plan.phases.find((p) => p.id === d.pipeline!.from)?.taskRefs ?? []).map((ref) => ({ item: ref.slice(ref.indexOf('/') + 1), refs: [ref] }));
      entries = groups.map((g) => ({ item: g.item, after: [...g.refs] }));
    }
    // An answer the items cannot be read from is not an empty list: the phase would run on part of
    // its items without saying so. The step fails, naming each answer and what was wrong.
    if (problems.length > 0) {
      r.state.items = { found: entries.length, made: 0, dropped: 0, duplicates, droppedItems: [], problems: problems.slice(0, 10) };
      this.#h.update(r.phase.id, r.state);
      return { status: 'failed', retryable: false, cause: `forEach of phase ${r.phase.id} cannot read its items: ${problems.slice(0, 3).join('; ')}${problems.length > 3 ? ` (and ${problems.length - 3} more)` : ''}` };
    }
    const found = entries.length;
    const perItem = Math.max(1, templates.length);
    let cap = d.forEach?.max ?? Infinity;
    let dropReason = d.forEach?.max !== undefined ? `forEach.max ${d.forEach.max}` : undefined;
    // The gate's first check needs room after the items; skeptics take what is left (or leave
    // findings unverified, reported).
    const reserve = d.gate ? 1 : 0;
    const roomItems = Math.floor(Math.max(0, this.#room(r) - reserve) / perItem);
    if (roomItems < Math.min(cap, found)) {
      cap = roomItems;
      dropReason = `limits.maxAgents ${this.#h.plan.limits.maxAgents} (room for ${roomItems} more item(s))`;
    }
    const kept = entries.slice(0, cap);
    const dropped = entries.slice(kept.length);
    const tasks: PlanTask[] = [];
    kept.forEach((e, index) => {
      const refs: string[] = [];
      for (const tm of templates) {
        const t = this.#make(r, `${tm.id}-${index + 1}`, tm.prompt, tm.agent, e.after, { kind: 'item', item: e.item, index },
          { ...(tm.schema ? { schema: tm.schema } : {}), ...(tm.isolation ? { isolation: tm.isolation } : {}) });
        tasks.push(t);
        refs.push(t.ref);
      }
      r.groups.push({ item: e.item, refs });
      r.work.push(...refs);
    });
    r.state.items = {
      found, made: tasks.length, dropped: dropped.length, duplicates,
      droppedItems: dropped.slice(0, 20).map((e) => clip(itemText(e.item, 200), 200)),
      ...(dropped.length > 0 && dropReason ? { dropReason } : {}),
      ...(problems.length > 0 ? { problems: problems.slice(0, 10) } : {}),
    };
    this.#h.update(r.phase.id, r.state);
    const g = this.#grow(r, tasks, 'post', r.work, 'items');
    if (dropped.length > 0) {
      void this.#h.journal({ type: 'phase.expanded', t: now(), phaseId: r.phase.id, made: 0, reused: 0, dropped: dropped.length, step: `dropped over ${dropReason}` });
    }
    return { status: 'succeeded', retryable: false, grow: g };
  }

  // ---- converge ------------------------------------------------------------------------------

  #makeRound(r: PhaseRun, round: number): Growth {
    r.round = round;
    const prev = round === 1 ? [...r.d.upstream] : r.work.filter((ref) => ref.endsWith(`-r${round - 1}`));
    const seen = this.#seenText(r);
    const tasks = this.#templates(r).map((tm) =>
      this.#make(r, `${tm.id}-r${round}`, tm.prompt, tm.agent, prev, { kind: 'round', round, ...(seen ? { seen } : {}) },
        { ...(tm.schema ? { schema: tm.schema } : {}), ...(tm.isolation ? { isolation: tm.isolation } : {}) }));
    r.work.push(...tasks.map((t) => t.ref));
    return this.#grow(r, tasks, `round-${round}`, tasks.map((t) => t.ref), `round ${round}`);
  }

  #seenText(r: PhaseRun): string {
    let out = '';
    for (const t of r.seenTexts) {
      const line = `- ${clip(t, 300)}\n`;
      if (out.length + line.length > MAX_SEEN_CHARS) {
        out += `- … and ${r.seenTexts.length - out.split('\n').length + 1} more\n`;
        break;
      }
      out += line;
    }
    return out;
  }

  async #afterRound(r: PhaseRun, round: number): Promise<AttemptOutcome> {
    const c = r.d.converge!;
    let fresh = 0;
    const newFindings: { from: string; item: unknown }[] = [];
    const problems: string[] = [];
    const roundRefs = r.work.filter((x) => x.endsWith(`-r${round}`));
    await this.#prefetch(roundRefs);
    for (const ref of roundRefs) {
      const rec = await this.#h.record(ref);
      if (!rec) continue;
      const read = itemsOf(rec, c.items, true);
      if (read.problem) problems.push(read.problem);
      for (const item of read.items) {
        const id = identityOf(item, c.key);
        if (r.seen.has(id)) continue;
        r.seen.add(id);
        r.seenTexts.push(itemText(item, 300));
        newFindings.push({ from: ref, item });
        fresh++;
      }
    }
    // A round whose answers cannot be read would count as dry and end the loop for a wrong reason.
    if (problems.length > 0) return this.#unreadable(r, 'converge', problems);
    // New findings are verified as they come; the next round does not wait for their skeptics.
    const skeptics = r.d.verify ? this.#makeSkeptics(r, newFindings) : [];
    const prev = r.state.converge;
    const dryRounds = fresh === 0 ? (prev?.dryRounds ?? 0) + 1 : 0;
    const newPerRound = [...(prev?.newPerRound ?? []), fresh];
    let stopped: string | undefined;
    if (dryRounds >= c.untilDry) stopped = `dry: ${dryRounds} round(s) in a row found nothing new`;
    else if (round >= c.maxRounds) stopped = `converge.maxRounds ${c.maxRounds} reached`;
    else if (this.#room(r) - skeptics.length < this.#templates(r).length) stopped = `limits.maxAgents ${this.#h.plan.limits.maxAgents} reached`;
    r.state.converge = { untilDry: c.untilDry, maxRounds: c.maxRounds, rounds: round, dryRounds, findings: r.seen.size, newPerRound, ...(stopped ? { stopped } : {}) };
    this.#h.update(r.phase.id, r.state);
    await this.#h.journal({ type: 'converge.round', t: now(), phaseId: r.phase.id, round, fresh, dryRounds });
    if (!stopped) {
      const g = this.#makeRound(r, round + 1);
      if (skeptics.length > 0) {
        const more = this.#grow(r, skeptics, undefined, [], `skeptics of round ${round}`);
        g.tasks.unshift(...more.tasks);
        g.done = new Set([...(g.done ?? []), ...(more.done ?? [])]);
        g.extend!.push({ ref: r.d.done, deps: skeptics.map((t) => t.ref) });
      }
      return { status: 'succeeded', retryable: false, grow: g };
    }
    // Rounds are over: the verdict waits for every skeptic made along the way.
    if (r.d.verify) {
      const all = r.findings.flatMap((f) => f.skeptics);
      return { status: 'succeeded', retryable: false, grow: this.#grow(r, skeptics, 'verdict', all, `skeptics of round ${round}`) };
    }
    return this.#post(r, 'merge');
  }

  // ---- after the work: verify → merge → gate --------------------------------------------------

  async #post(r: PhaseRun, from: 'verify' | 'verdict' | 'merge' | 'gate'): Promise<AttemptOutcome> {
    if (from === 'verify' && r.d.verify && !r.d.converge) {
      const found: { from: string; item: unknown }[] = [];
      const problems: string[] = [];
      await this.#prefetch(r.work);
      for (const ref of r.work) {
        const rec = await this.#h.record(ref);
        if (!rec) continue;
        const read = itemsOf(rec, r.d.verify.items, true);
        if (read.problem) problems.push(read.problem);
        for (const item of read.items) found.push({ from: ref, item });
      }
      // A wrong verify.items would leave everything unverified while looking verified.
      if (problems.length > 0) return this.#unreadable(r, 'verify', problems);
      const skeptics = this.#makeSkeptics(r, found);
      return { status: 'succeeded', retryable: false, grow: this.#grow(r, skeptics, 'verdict', skeptics.map((t) => t.ref), 'skeptics') };
    }
    if (from === 'verify') from = 'merge'; // nothing to verify, or a converge phase (verified per round)
    if (from === 'verdict') {
      await this.#verdicts(r);
      from = 'merge';
    }
    if (from === 'merge') {
      if (r.d.merge) await this.#merge(r);
      from = 'gate';
    }
    if (r.d.gate) {
      const check = this.#makeCheck(r, 1, r.work);
      if (!check) return this.#noRoom(r, 'the gate');
      return { status: 'succeeded', retryable: false, grow: this.#grow(r, [check], 'gate-1', [check.ref], 'gate') };
    }
    return { status: 'succeeded', retryable: false };
  }

  /** The step fails naming the answers its findings could not be read from. */
  #unreadable(r: PhaseRun, what: 'verify' | 'converge', problems: string[]): AttemptOutcome {
    return {
      status: 'failed', retryable: false,
      cause: `${what} of phase ${r.phase.id} cannot read its findings: ${problems.slice(0, 3).join('; ')}${problems.length > 3 ? ` (and ${problems.length - 3} more)` : ''}`,
    };
  }

  #noRoom(r: PhaseRun, what: string): AttemptOutcome {
    return { status: 'failed', retryable: false, cause: `phase ${r.phase.id}: no room for ${what} under limits.maxAgents ${this.#h.plan.limits.maxAgents}` };
  }

  // ---- verify --------------------------------------------------------------------------------

  #makeSkeptics(r: PhaseRun, found: { from: string; item: unknown }[]): PlanTask[] {
    const v = r.d.verify!;
    const tasks: PlanTask[] = [];
    const max = v.max ?? Infinity;
    for (const f of found) {
      const n = r.findings.length + 1;
      const text = itemText(f.item);
      const finding: Finding = { id: `f${n}`, from: f.from, text, skeptics: [] };
      r.findings.push(finding);
      // Unverified (reported) past verify.max or when the skeptics would not fit, the gate's first
      // check kept in reserve.
      if (n > max || this.#room(r) - tasks.length - (r.d.gate ? 1 : 0) < v.skeptics) continue;
      for (let k = 1; k <= v.skeptics; k++) {
        const prompt = v.prompt ?? skepticPrompt(this.#h.plan, r.phase);
        const t = this.#make(r, `skeptic-${n}-${k}`, prompt, v.agent, [f.from], { kind: 'skeptic', finding: text, findingId: finding.id, from: f.from, skeptic: k }, { schema: SKEPTIC_SCHEMA });
        tasks.push(t);
        finding.skeptics.push(t.ref);
      }
    }
    return tasks;
  }

  async #verdicts(r: PhaseRun): Promise<void> {
    const v = r.d.verify!;
    const verdicts: Verdict[] = [];
    let unverified = 0;
    await this.#prefetch(r.findings.flatMap((f) => f.skeptics));
    const lines: Promise<void>[] = [];
    for (const f of r.findings) {
      if (f.skeptics.length === 0) {
        unverified++;
        continue;
      }
      let refute = 0;
      const reasons: string[] = [];
      for (const ref of f.skeptics) {
        const rec = await this.#h.record(ref);
        if (!rec) continue;
        const vote = voteOf(rec);
        if (vote.refuted) refute++;
        reasons.push(clip(`${vote.refuted ? 'refutes' : 'upholds'}: ${vote.reasons}`, 300));
      }
      const verdict = refutedBy(v.refuteBy, refute, f.skeptics.length) ? 'refuted' : 'confirmed';
      f.refuted = verdict === 'refuted';
      verdicts.push({ id: f.id, from: f.from, finding: clip(f.text, 300), verdict, refute, of: f.skeptics.length, reasons });
      // Appended in call order by the journal; awaited together below.
      lines.push(this.#h.journal({ type: 'verify.verdict', t: now(), phaseId: r.phase.id, finding: f.id, from: f.from, verdict, refute, of: f.skeptics.length }));
    }
    await Promise.all(lines);
    const confirmed = verdicts.filter((x) => x.verdict === 'confirmed').length;
    r.state.verify = {
      skeptics: v.skeptics, refuteBy: v.refuteBy, findings: r.findings.length, confirmed, refuted: verdicts.length - confirmed, unverified,
      verdicts: verdicts.slice(0, MAX_LISTED),
    };
    this.#h.update(r.phase.id, r.state);
  }

  // ---- merge of isolated edits ------------------------------------------------------------------

  async #merge(r: PhaseRun): Promise<void> {
    const items: MergeItem[] = [];
    const already: string[] = [];
    await this.#prefetch(r.work);
    for (const ref of r.work) {
      const rec = await this.#h.record(ref);
      if (!rec?.patch) continue;
      if (this.#h.mergedBefore.has(ref)) already.push(ref);
      else items.push({ ref, patch: rec.patch });
    }
    const res = await this.#h.applyPatches(items, async (ref) => {
      const p = items.find((i) => i.ref === ref)!.patch;
      await this.#h.journal({ type: 'merge.applied', t: now(), phaseId: r.phase.id, ref, files: p.files.slice(0, 50) });
    });
    for (const c of res.conflicts) {
      await this.#h.journal({ type: 'merge.conflict', t: now(), phaseId: r.phase.id, ref: c.ref, files: c.files.slice(0, 50), message: clip(c.message, 500) });
    }
    r.state.merge = {
      applied: [...already, ...res.alreadyApplied, ...res.applied],
      conflicts: res.conflicts.map((c) => ({ ref: c.ref, files: c.files.slice(0, 20), message: clip(c.message, 500) })),
      empty: res.empty.length,
    };
    this.#h.update(r.phase.id, r.state);
  }

  // ---- gate ----------------------------------------------------------------------------------

  #makeCheck(r: PhaseRun, iteration: number, deps: string[]): PlanTask | undefined {
    if (this.#room(r) < 1) return undefined;
    const g = r.d.gate!;
    if (g.kind === 'command') {
      return this.#make(r, `check-${iteration}`, `Gate of phase ${r.phase.id}, run ${iteration}: ${g.command}`, g.agent, deps, { kind: 'check', iteration });
    }
    const prompt = g.prompt ?? criticPrompt(this.#h.plan, r.phase);
    return this.#make(r, `check-${iteration}`, prompt, g.agent, deps, { kind: 'check', iteration }, { schema: CRITIC_SCHEMA });
  }

  async #afterCheck(r: PhaseRun, iteration: number): Promise<AttemptOutcome> {
    const g = r.d.gate!;
    const rec = await this.#h.record(`${r.phase.id}/check-${iteration}`);
    let passed: boolean;
    let failure: string;
    if (!rec) {
      passed = false;
      failure = 'the check left no record';
    } else if (g.kind === 'command') {
      passed = rec.exitCode === 0;
      failure = `\`${g.command}\` exited with ${rec.exitCode ?? rec.signal ?? 'no code'}${rec.error ? ` (${rec.error.message})` : ''}.\n${tail(`${rec.output}\n${rec.stderrTail}`.trim(), g.maxFailureChars)}`;
    } else {
      const v = criticVerdict(rec);
      passed = v.pass;
      failure = tail(v.reasons || '(no reasons given)', g.maxFailureChars);
    }
    r.state.gate = { kind: g.kind, maxIterations: g.maxIterations, iterations: iteration, passed, ...(passed ? {} : { last: clip(failure, 500) }) };
    this.#h.update(r.phase.id, r.state);
    await this.#h.journal({ type: 'gate.checked', t: now(), phaseId: r.phase.id, iteration, passed, summary: clip(failure.split('\n')[0] ?? '', 200) });
    if (passed) return { status: 'succeeded', retryable: false };
    if (iteration >= g.maxIterations) {
      return {
        status: 'failed', retryable: false,
        cause: `gate of phase ${r.phase.id} still failing after ${iteration} run(s) (maxIterations ${g.maxIterations}): ${clip(failure.replace(/\s+/g, ' ').trim(), 300)}` +
          ' — to try again, raise maxIterations and run fanfold resume --spec (the checks and fixes done are kept)',
      };
    }
    if (this.#room(r) < 2) return this.#noRoom(r, `fix ${iteration} and gate run ${iteration + 1}`);
    const fixPrompt = g.fixPrompt ?? fixPromptOf(this.#h.plan, r.phase, g.kind);
    // The fix and the next check see the phase's work (a critic judges it, a fix repairs it), and
    // each other's result: the failure the fix answers, the fix the check judges.
    const work = r.work.filter((ref) => this.#origin(ref)?.kind !== 'fix');
    const fix = this.#make(r, `fix-${iteration}`, fixPrompt, g.fixAgent, [...work, `${r.phase.id}/check-${iteration}`], { kind: 'fix', iteration, failure });
    r.work.push(fix.ref);
    const check = this.#makeCheck(r, iteration + 1, [...work, fix.ref])!;
    return { status: 'succeeded', retryable: false, grow: this.#grow(r, [fix, check], `gate-${iteration + 1}`, [check.ref], `fix ${iteration}`) };
  }
}

/** The last `max` characters of a text (a failure's end says most). */
function tail(text: string, max: number): string {
  return text.length > max ? `…${text.slice(text.length - max + 1)}` : text;
}

function skepticPrompt(plan: Plan, phase: PlanPhase): string {
  return `You are a skeptic reviewing one finding of phase '${phase.title}' of the workflow '${plan.name}'` +
    (plan.goal ? ` (goal: ${plan.goal})` : '') + `.\n\nFinding:\n{{finding}}\n\n` +
    'Try hard to refute it: check the evidence yourself (read the files it names), look for a wrong premise, a misread, ' +
    'or a problem that is not real. Refute it only with concrete reasons. Answer with JSON: ' +
    '{"refuted": true|false, "reasons": "why, with evidence"}.\n';
}

function criticPrompt(plan: Plan, phase: PlanPhase): string {
  return `You are the critic of phase '${phase.title}' of the workflow '${plan.name}'` + (plan.goal ? ` (goal: ${plan.goal})` : '') +
    `.\nThe work of the phase is in the JSON file named by FANFOLD_CONTEXT_FILE. Judge whether it meets the goal: complete, correct, supported. ` +
    'Answer with JSON: {"pass": true|false, "reasons": ["what is wrong or missing", ...]}.\n';
}

function fixPromptOf(plan: Plan, phase: PlanPhase, kind: 'command' | 'critic'): string {
  return `The ${kind === 'command' ? 'check' : "critic's review"} after phase '${phase.title}' of the workflow '${plan.name}' failed` +
    ` (run {{iteration}}).\n\n${kind === 'command' ? 'Its output' : 'Its reasons'}:\n{{failure}}\n\nFix the cause in the project, then stop. ` +
    'Keep the change as small as the fix needs.\n';
}

/**
 * The plan as written: without the tasks a run made (they carry `origin`) and with each phase's
 * task list back to its written tasks. A copy; the input is not changed.
 */
export function staticPlan(plan: Plan): Plan {
  const tasks = plan.tasks.filter((t) => t.origin === undefined).map((t) => ({ ...t, deps: [...t.deps] }));
  const kept = new Set(tasks.map((t) => t.ref));
  const phases = plan.phases.map((p) => ({ ...p, taskRefs: p.taskRefs.filter((r) => kept.has(r)) }));
  return { ...plan, tasks, phases };
}
