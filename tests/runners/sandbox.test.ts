/**
 * The bwrap sandbox of `command` (and `pi`) children: argv building, the decision table, and real
 * canaries with the real bwrap — a secret outside the project never reaches the output, a read_only
 * agent cannot write the project, a TCP connect to 127.0.0.1 never arrives, an edit agent cannot
 * write outside the project. Skipped (loudly) only where bwrap cannot start a sandbox; .ci/run
 * installs bubblewrap so CI runs them.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CommandRunner } from '../../src/runners/command.js';
import { PiRunner } from '../../src/runners/pi.js';
import { bwrapArgs, bwrapStatus, confinementOf, gitDirsOf, installRootOf, resolveReadDirs, securityNotes } from '../../src/runners/sandbox.js';
import type { RunnerInput, RunnerResult } from '../../src/runners/types.js';
import type { AgentDef, Plan } from '../../src/spec/types.js';

const CANARY = 'CANARY-SSH-KEY-6b1f0e93d2';
const BWRAP = bwrapStatus();
if (!BWRAP.path) console.warn(`[fanfold] SKIPPED the real bwrap canaries in tests/runners/sandbox.test.ts: ${BWRAP.why}`);

let root: string;
let home: string;
let project: string;
let store: string;
let outside: string;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'fanfold-sandbox-'));
  home = join(root, 'home');
  project = join(root, 'project');
  store = join(root, 'store');
  outside = join(root, 'outside');
  for (const d of [home, join(home, '.ssh'), project, store, outside]) mkdirSync(d, { recursive: true });
  writeFileSync(join(home, '.ssh', 'canary'), `${CANARY}\n`);
  writeFileSync(join(project, 'notes.txt'), 'project notes\n');
  writeFileSync(join(store, 'prompt.txt'), 'the prompt');
  writeFileSync(join(store, 'context.json'), '{"deps":[]}');
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

const agent = (more: Partial<AgentDef> = {}): AgentDef => ({ name: 'boxed', runner: 'command', tier: 'read_only', ...more });

function input(command: string[], more: Partial<AgentDef> = {}): RunnerInput {
  return {
    runId: 'r', phaseId: 'p', taskId: 't', attempt: 1, prompt: 'hello',
    agent: agent({ command, ...more }), cwd: project,
    promptFile: join(store, 'prompt.txt'), contextFile: join(store, 'context.json'),
    timeoutMs: 20_000, maxOutputBytes: 64 * 1024, signal: new AbortController().signal,
  };
}

const runner = (env: NodeJS.ProcessEnv = {}) => new CommandRunner({ baseEnv: { ...process.env, HOME: home, ...env } });
const sh = (script: string): string[] => ['sh', '-c', script];
const all = (r: RunnerResult): string => `${r.output}\n${r.stderrTail}\n${r.error?.message ?? ''}`;

describe('bwrapArgs', () => {
  it('binds the project read-only for read_only and read-write for edit, hides HOME, cuts the network', () => {
    const ro = bwrapArgs({ cwd: project, writable: false, network: false, home, readOnly: [join(store, 'prompt.txt')] });
    const at = (args: string[], flag: string, p: string) => args.findIndex((a, i) => a === flag && args[i + 1] === p && args[i + 2] === p);
    expect(at(ro, '--ro-bind-try', project)).toBeGreaterThan(-1);
    expect(at(ro, '--bind-try', project)).toBe(-1);
    expect(ro).toContain('--unshare-net');
    expect(ro).toEqual(expect.arrayContaining(['--die-with-parent', '--unshare-pid', '--new-session']));
    const tmpfsHome = ro.findIndex((a, i) => a === '--tmpfs' && ro[i + 1] === home);
    expect(tmpfsHome).toBeGreaterThan(-1);
    expect(ro.slice(-4)).toEqual(['--remount-ro', '/', '--chdir', project]);
    // /etc is never bound whole.
    expect(ro.some((a, i) => ro[i - 1] === '--ro-bind' && a === '/etc')).toBe(false);

    const rw = bwrapArgs({ cwd: project, writable: true, network: true, home, readOnly: [join(project, 'in.txt')] });
    expect(at(rw, '--bind-try', project)).toBeGreaterThan(-1);
    expect(rw).not.toContain('--unshare-net');
    // An input file inside a writable project is bound read-only on top of it.
    expect(at(rw, '--ro-bind-try', join(project, 'in.txt'))).toBeGreaterThan(at(rw, '--bind-try', project));
  });

  it('finds a worktree\'s git dirs and a package\'s install root', () => {
    const wt = join(root, 'wt');
    const gd = join(root, 'repo', '.git', 'worktrees', 'x');
    mkdirSync(wt, { recursive: true });
    mkdirSync(gd, { recursive: true });
    writeFileSync(join(wt, '.git'), `gitdir: ${gd}\n`);
    writeFileSync(join(gd, 'commondir'), '../..\n');
    expect(gitDirsOf(wt)).toEqual([gd, join(root, 'repo', '.git')]);
    expect(gitDirsOf(project)).toEqual([]);
    const bin = join(root, 'cli', 'node_modules', 'pkg', 'dist', 'cli.js');
    mkdirSync(join(bin, '..'), { recursive: true });
    writeFileSync(bin, '');
    expect(installRootOf(bin)).toBe(join(root, 'cli'));
    expect(resolveReadDirs(['~/docs', 'vendor', '/opt/x'], project, home)).toEqual([join(home, 'docs'), join(project, 'vendor'), '/opt/x']);
  });
});

describe('confinementOf', () => {
  const none = { why: 'bubblewrap (bwrap) is not installed' };
  const has = { path: '/usr/bin/bwrap' };
  it('command: confined with bwrap, unconfined (with the install hint) without; pi and sandbox: required refuse', () => {
    expect(confinementOf(agent(), has)).toEqual({ mode: 'bwrap', bwrap: '/usr/bin/bwrap' });
    const loose = confinementOf(agent(), none);
    expect(loose).toMatchObject({ mode: 'unconfined', note: expect.stringContaining('apt-get install bubblewrap') });
    expect(confinementOf(agent({ sandbox: 'required' }), none)).toMatchObject({ mode: 'refused', error: { type: 'sandbox_unavailable', retryable: false } });
    const pi = confinementOf(agent({ runner: 'pi' }), none);
    expect(pi).toMatchObject({ mode: 'refused', error: { message: expect.stringMatching(/bubblewrap.*sandbox: off/) } });
    expect(confinementOf(agent({ runner: 'pi', sandbox: 'off' }), none)).toMatchObject({ mode: 'unconfined' });
    expect(confinementOf(agent({ sandbox: 'off' }), has)).toMatchObject({ mode: 'unconfined', note: expect.stringContaining('sandbox: off') });
    expect(confinementOf(agent({ runner: 'claude' }), none)).toEqual({ mode: 'cli' });
  });

  it('securityNotes: one line for unconfined command agents with the hint, network and sandbox: off named', () => {
    const plan = {
      agents: {
        a: agent({ name: 'a' }),
        b: agent({ name: 'b', runner: 'pi' }),
        c: agent({ name: 'c', runner: 'claude', network: true }),
        d: agent({ name: 'd', sandbox: 'off' }),
      },
      tasks: ['a', 'b', 'c', 'd'].map((n) => ({ agent: n })),
      phases: [],
    } as unknown as Plan;
    const notes = securityNotes(plan, { ...process.env, FANFOLD_BWRAP: 'none' });
    expect(notes).toEqual([
      "network: 'c' may use the network (network: true)",
      "unconfined on purpose (sandbox: off): 'd' may read and write anything the owner can",
      expect.stringMatching(/^unconfined: command agent 'a' will run with the owner's full rights: .*apt-get install bubblewrap/),
      expect.stringMatching(/^will not start: 'b' needs bubblewrap/),
    ]);
    if (BWRAP.path) expect(securityNotes(plan)).toHaveLength(2);
  });
});

describe('without bwrap (FANFOLD_BWRAP=none)', () => {
  it('a command agent runs unconfined; sandbox: required and pi refuse to start', async () => {
    const r = await runner({ FANFOLD_BWRAP: 'none' }).run(input(sh('cat "$HOME/.ssh/canary"')));
    expect(r.status).toBe('succeeded');
    expect(r.output).toContain(CANARY); // unconfined means what it says
    const req = await runner({ FANFOLD_BWRAP: 'none' }).run(input(sh('echo hi'), { sandbox: 'required' }));
    expect(req).toMatchObject({ status: 'failed', error: { type: 'sandbox_unavailable', retryable: false } });
    const pi = await new PiRunner({ baseEnv: { ...process.env, HOME: home, FANFOLD_BWRAP: 'none' } }).run({ ...input([]), agent: { name: 'p', runner: 'pi', tier: 'read_only' } });
    expect(pi).toMatchObject({ status: 'failed', error: { type: 'sandbox_unavailable' } });
    expect(pi.error!.message).toContain('apt-get install bubblewrap');
  });
});

describe.skipIf(!BWRAP.path)('canaries with the real bwrap (command runner)', () => {
  it('a file outside the project (HOME/.ssh/canary) never reaches the output', async () => {
    const path = join(home, '.ssh', 'canary');
    const r = await runner().run(input(sh(`cat "$HOME/.ssh/canary"; cat '${path}'; ls -a "$HOME"; cat notes.txt`)));
    expect(all(r)).not.toContain(CANARY);
    expect(r.output).toContain('project notes'); // the project itself is readable
    // The run's inputs are readable wherever the store is.
    const inputs = await runner().run(input(sh('cat "$FANFOLD_PROMPT_FILE"; cat "$FANFOLD_CONTEXT_FILE"')));
    expect(inputs.output).toBe('the prompt{"deps":[]}');
  });

  it('readDirs makes a folder outside the project readable, and only that one', async () => {
    writeFileSync(join(outside, 'shared.txt'), 'shared data\n');
    const r = await runner().run(input(sh(`cat '${join(outside, 'shared.txt')}'; cat "$HOME/.ssh/canary"`), { readDirs: [outside] }));
    expect(r.output).toContain('shared data');
    expect(all(r)).not.toContain(CANARY);
  });

  it('a read_only agent cannot write into the project; an edit agent can, but not outside it', async () => {
    const ro = await runner().run(input(sh('echo x > written.txt')));
    expect(ro.status).toBe('failed');
    expect(ro.stderrTail).toMatch(/Read-only file system/);
    expect(existsSync(join(project, 'written.txt'))).toBe(false);

    const target = join(outside, 'escaped.txt');
    const edit = await runner().run(input(sh(`echo x > written.txt; echo y > '${target}'; echo z > "$HOME/.bashrc"; true`), { tier: 'edit' }));
    expect(edit.status).toBe('succeeded');
    expect(edit.stderrTail).toMatch(/escaped\.txt/);
    expect(readFileSync(join(project, 'written.txt'), 'utf8')).toBe('x\n');
    expect(existsSync(target)).toBe(false);
    expect(existsSync(join(home, '.bashrc'))).toBe(false);
    rmSync(join(project, 'written.txt'));
  });

  it("a command agent's TCP connect to 127.0.0.1 never arrives, unless network: true", async () => {
    let arrived = 0;
    const server = net.createServer((s) => {
      arrived++;
      s.end('CANARY-NET\n');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    const connect = ['node', '-e', `const s=require('net').connect(${port},'127.0.0.1');s.on('data',d=>process.stdout.write(d));s.on('error',e=>{console.log('refused '+e.code);process.exit(3)})`];
    try {
      const cut = await runner().run(input(connect));
      expect(cut.status).toBe('failed');
      expect(cut.output).toMatch(/refused E/);
      expect(arrived).toBe(0);
      const open = await runner().run(input(connect, { network: true }));
      expect(open.output).toContain('CANARY-NET');
      expect(arrived).toBe(1);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('a timed-out confined agent is killed with everything it started', async () => {
    const r = await runner().run({ ...input(sh('sleep 30 & sleep 30; wait')), timeoutMs: 1500 });
    expect(r.status).toBe('timed_out');
    expect(r.error?.message).toMatch(/timed out/);
  });
});
