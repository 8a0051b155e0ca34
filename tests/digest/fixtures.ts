/** Builders of plans, runs and agent records for the digest tests. */
import type { Plan, PlanPhase, PlanTask } from '../../src/spec/types.js';
import type { AgentRecord, RunRecord, RunStatus } from '../../src/store/types.js';

/** A phase with `n` tasks named t0001…; `taskRefs` filled. */
export function makePhase(id: string, n: number, extra: Partial<PlanPhase> = {}): PlanPhase {
  const taskRefs = Array.from({ length: n }, (_, i) => `${id}/${taskName(i)}`);
  return { id, title: extra.title ?? id, dependsOn: [], onFailure: 'continue', taskRefs, ...extra };
}

/** `t0001`, `t0002`, … */
export function taskName(i: number): string {
  return `t${String(i + 1).padStart(4, '0')}`;
}

const T0 = Date.parse('2026-01-10T09:00:00.000Z');

/** ISO time `ms` after the fixtures' run start. */
export function at(ms: number): string {
  return new Date(T0 + ms).toISOString();
}

/** An agent record with sensible defaults (succeeded, 1 s, no usage). */
export function makeRecord(partial: Partial<AgentRecord> & { phaseId: string; taskId: string }): AgentRecord {
  const startMs = 0;
  const durationMs = partial.durationMs ?? 1000;
  const output = partial.output ?? `output of ${partial.phaseId}/${partial.taskId}`;
  return {
    schemaVersion: 1,
    runId: 'r-test',
    key: `k-${partial.phaseId}-${partial.taskId}`,
    attempt: 1,
    status: 'succeeded',
    agent: 'worker',
    runner: 'command',
    prompt: 'do it',
    output,
    outputBytes: Buffer.byteLength(output),
    truncated: false,
    exitCode: partial.status && partial.status !== 'succeeded' ? 1 : 0,
    signal: null,
    stderrTail: '',
    startedAt: at(startMs),
    endedAt: at(startMs + durationMs),
    durationMs,
    ...partial,
  };
}

/** A failed record with a typed error and a stderr tail. */
export function failedRecord(phaseId: string, taskId: string, message: string, stderr = ''): AgentRecord {
  return makeRecord({
    phaseId,
    taskId,
    status: 'failed',
    output: '',
    exitCode: 2,
    stderrTail: stderr,
    error: { type: 'exit_code', message, retryable: false },
  });
}

/** A plan over the given phases (tasks derived from taskRefs). */
export function makePlan(phases: PlanPhase[], goal?: string): Plan {
  const tasks: PlanTask[] = phases.flatMap((p) =>
    p.taskRefs.map((ref) => {
      const taskId = ref.slice(ref.indexOf('/') + 1);
      return { ref, phaseId: p.id, taskId, prompt: 'p', agent: 'worker', deps: [], key: `k-${p.id}-${taskId}` };
    }),
  );
  return {
    schemaVersion: 1,
    name: 'test plan',
    ...(goal ? { goal } : {}),
    limits: {
      maxConcurrent: 8,
      maxAgents: 1000,
      agentTimeoutMs: 600_000,
      runTimeoutMs: 3_600_000,
      retries: 1,
      retryBackoffMs: 1000,
      maxOutputBytes: 262_144,
      maxContextBytes: 65_536,
    },
    agents: { worker: { name: 'worker', runner: 'command', command: ['true'], tier: 'read_only' } },
    phases,
    tasks,
    criticalPath: { length: phases.length, refs: [] },
    agentCount: tasks.length,
    warnings: [],
  };
}

/** A run record over `plan` with the given status. */
export function makeRun(plan: Plan, status: RunStatus, extra: Partial<RunRecord> = {}): RunRecord {
  const total = plan.tasks.length;
  // Counts that add up: a completed run's tasks all succeeded, any other run's are pending (tests
  // that need other counts set run.phases themselves).
  const done = status === 'completed';
  const countsOf = (n: number) => ({ total: n, succeeded: done ? n : 0, failed: 0, skipped: 0, running: 0, pending: done ? 0 : n });
  const counts = countsOf(total);
  return {
    schemaVersion: 1,
    runId: 'r-test',
    name: plan.name,
    status,
    cwd: '/tmp/project',
    createdAt: at(0),
    startedAt: at(0),
    ...(status !== 'running' ? { endedAt: at(120_000) } : {}),
    elapsedMs: 120_000,
    resumes: 0,
    plan,
    phases: plan.phases.map((p) => ({ id: p.id, status: done ? 'completed' : 'pending', counts: countsOf(p.taskRefs.length) })),
    totals: counts,
    updatedAt: at(120_000),
    ...extra,
  };
}

/** Deterministic pseudo-random generator (mulberry32) for filler text. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS =
  'module function returns value config parser handler request cache layer index table stream buffer queue worker token schema record field option adapter client server route'.split(' ');

/** `lines` lines of bland filler prose. */
export function filler(lines: number, seed = 1): string {
  const next = rng(seed);
  const out: string[] = [];
  for (let i = 0; i < lines; i++) {
    const n = 6 + Math.floor(next() * 8);
    const words: string[] = [];
    for (let k = 0; k < n; k++) words.push(WORDS[Math.floor(next() * WORDS.length)]!);
    out.push(`The ${words.join(' ')}.`);
  }
  return out.join('\n');
}

/** A whole run: records of every attempt, the latest per task, and the run record. */
export interface Scenario {
  run: RunRecord;
  attempts: AgentRecord[];
  latest: AgentRecord[];
}

/** Hostile text planted in outputs, causes and names. */
export const HOSTILE =
  '<script>document.title="PWNED";document.body.setAttribute("data-pwned","1")</script><img src=x onerror="document.body.setAttribute(\'data-pwned\',\'2\')"> ``` | **bold** </pre></code>';

/**
 * A three-phase run (`map` with `n` tasks on 8 simulated slots, `reduce` with 4, `synth` final with
 * 1): every 9th map task fails once and succeeds on retry, every 25th fails for good (its reduce
 * dependants are skipped), outputs carry findings and, when `hostile`, HTML and Markdown attacks.
 */
export function scenario(n: number, status: RunStatus, opts: { hostile?: boolean; reason?: string; outputLines?: number } = {}): Scenario {
  const phases = [
    makePhase('map', n, { title: 'Map every module' }),
    makePhase('reduce', 4, { title: 'Reduce findings by area', dependsOn: ['map'] }),
    makePhase('synth', 1, { title: 'Write the synthesis', dependsOn: ['reduce'], final: true }),
  ];
  const plan = makePlan(phases, 'Find bugs and risky code across the repository');
  const next = rng(42);
  const slots = Array.from({ length: 8 }, () => 0);
  const attempts: AgentRecord[] = [];
  const place = (durationMs: number): { start: number; end: number } => {
    let k = 0;
    for (let i = 1; i < slots.length; i++) if (slots[i]! < slots[k]!) k = i;
    const start = slots[k]! + 50;
    slots[k] = start + durationMs;
    return { start, end: start + durationMs };
  };
  const hostile = opts.hostile ? `\n${HOSTILE}\n` : '\n';
  for (let i = 0; i < n; i++) {
    const taskId = taskName(i);
    const tries = i % 9 === 4 ? 2 : 1;
    for (let attempt = 1; attempt <= tries; attempt++) {
      const durationMs = 2000 + Math.floor(next() * 9000);
      const { start, end } = place(durationMs);
      const fails = (attempt < tries) || i % 25 === 24;
      const output = fails
        ? ''
        : `## Module ${taskId}\n${filler(opts.outputLines ?? 6, i)}\nFound ${i % 7} bugs in src/mod${i}.ts${hostile}total: ${i * 3} lines reviewed`;
      attempts.push(
        makeRecord({
          phaseId: 'map',
          taskId,
          attempt,
          status: fails ? (i % 50 === 49 ? 'timed_out' : 'failed') : 'succeeded',
          output,
          exitCode: fails ? 1 : 0,
          stderrTail: fails ? `warning: something\nError: cannot parse src/mod${i}.ts${opts.hostile ? HOSTILE : ''}\n` : '',
          ...(fails ? { error: { type: 'exit_code', message: `exited with code 1${opts.hostile ? ` ${HOSTILE}` : ''}`, retryable: attempt < tries } } : {}),
          startedAt: at(start),
          endedAt: at(end),
          durationMs,
          usage: { inputTokens: 1200, outputTokens: 300 },
          costUsd: 0.0042,
          truncated: i % 40 === 7,
          outputBytes: i % 40 === 7 ? 9_000_000 : Buffer.byteLength(output),
        }),
      );
    }
  }
  const mapEnd = Math.max(...slots);
  for (let k = 0; k < 8; k++) slots[k] = mapEnd;
  for (let j = 0; j < 4; j++) {
    const durationMs = 5000 + j * 1000;
    const { start, end } = place(durationMs);
    const skipped = j === 3 && n >= 25;
    attempts.push(
      makeRecord({
        phaseId: 'reduce',
        taskId: taskName(j),
        status: skipped ? 'skipped' : 'succeeded',
        output: skipped ? '' : `Area ${j}: ${3 + j} critical bugs, ${10 + j} warnings${hostile}`,
        startedAt: at(skipped ? mapEnd : start),
        endedAt: at(skipped ? mapEnd : end),
        durationMs: skipped ? 0 : durationMs,
        ...(skipped ? { error: { type: 'dependency_failed', message: 'depends on map/t0025 which failed', retryable: false } } : {}),
      }),
    );
  }
  const synthStart = Math.max(...slots) + 100;
  const cut = status !== 'completed' && status !== 'running';
  if (!cut || status === 'failed') {
    attempts.push(
      makeRecord({
        phaseId: 'synth',
        taskId: taskName(0),
        output: `# Synthesis\n\nThe repository has ${n} modules; the riskiest are listed below.\n\n\`\`\`ts\nconst x = 1;\n\`\`\`\n${hostile}\n- mod3: unchecked input\n- mod7: race in cache\n`,
        startedAt: at(synthStart),
        endedAt: at(synthStart + 15_000),
        durationMs: 15_000,
        usage: { inputTokens: 40_000, outputTokens: 2000 },
        costUsd: 0.31,
      }),
    );
  }
  const end = synthStart + 15_500;
  const latest = latestOf(attempts);
  const run = makeRun(plan, status, {
    name: opts.hostile ? `audit ${HOSTILE}` : 'repo audit',
    elapsedMs: end,
    endedAt: status === 'running' ? undefined : at(end),
    updatedAt: at(end),
    ...(opts.reason ? { reason: opts.reason } : {}),
  });
  if (status === 'running') delete run.endedAt;
  run.phases = phases.map((p) => {
    const mine = latest.filter((r) => r.phaseId === p.id);
    const succeeded = mine.filter((r) => r.status === 'succeeded').length;
    const failed = mine.filter((r) => r.status === 'failed' || r.status === 'timed_out').length;
    const skipped = mine.filter((r) => r.status === 'skipped').length;
    const cancelled = mine.filter((r) => r.status === 'cancelled').length;
    const total = p.taskRefs.length;
    const phaseStatus = mine.length === 0 ? (cut ? 'stopped' : 'pending') : succeeded === total ? 'completed' : failed > 0 ? 'failed' : 'stopped';
    return { id: p.id, status: phaseStatus, counts: { total, succeeded, failed, cancelled, skipped, running: 0, pending: total - mine.length } };
  });
  return { run, attempts, latest };
}

function latestOf(records: AgentRecord[]): AgentRecord[] {
  const m = new Map<string, AgentRecord>();
  for (const r of records) {
    const k = `${r.phaseId}/${r.taskId}`;
    const seen = m.get(k);
    if (!seen || r.attempt > seen.attempt) m.set(k, r);
  }
  return [...m.values()];
}
