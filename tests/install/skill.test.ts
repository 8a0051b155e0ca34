/**
 * The bundled skill, its spec reference, the /workflow command and the plugin manifests: valid
 * front matter, examples that plan, a reference that names every field of the real schema (the
 * list is derived from the zod schema, so a new field without docs fails here), tool names and
 * parameters that the real server has.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { parse as parseYaml } from 'yaml';
import * as z from 'zod';
import { describe, expect, it } from 'vitest';
import { createServer } from '../../src/mcp/server.js';
import { TOOL_NAMES } from '../../src/mcp/tools/index.js';
import { LimitsSchema, WorkflowSpecSchema } from '../../src/spec/schema.js';
import { planFromInput } from '../../src/engine/plan-file.js';
import { codexServerEntries } from '../../src/install/codex.js';
import { REPO, tempDir } from '../helpers/cli.js';

const read = (rel: string) => fs.readFileSync(path.join(REPO, rel), 'utf8');
const SKILL = read('skill/SKILL.md');
const REF = read('skill/reference/spec.md');

/** Front matter as YAML (what hosts parse), and the body. */
function splitFrontMatter(text: string): { fm: Record<string, unknown>; body: string } {
  const m = /^---\n([\s\S]*?)\n---\n([\s\S]*)$/.exec(text);
  if (!m) throw new Error('no front matter');
  return { fm: parseYaml(m[1]!) as Record<string, unknown>, body: m[2]! };
}

/** Plans a spec the way plan_workflow does (agent profiles resolved), with a fixed default runner. */
function plans(spec: unknown): { ok: true } | { ok: false; error: string } {
  try {
    planFromInput(spec, { cwd: tempDir(), env: { ...process.env, FANFOLD_RUNNER: 'claude', HOME: tempDir(), CLAUDE_CONFIG_DIR: '' } });
    return { ok: true };
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
}

function yamlBlocks(text: string): string[] {
  return [...text.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

/** Unwraps optional/default/prefault/nullable wrappers of a zod 4 schema. */
function unwrap(s: z.ZodType): z.ZodType {
  let cur: any = s;
  for (;;) {
    const t = cur?.def?.type;
    if (t === 'optional' || t === 'default' || t === 'prefault' || t === 'nullable' || t === 'readonly') cur = cur.def.innerType;
    else if (t === 'pipe') cur = cur.def.in;
    else return cur;
  }
}

/** Every field of the schema as dotted paths (`phases[].tasks[].prompt`), walked from zod itself. */
function schemaFields(schema: z.ZodType, prefix = ''): string[] {
  const s: any = unwrap(schema);
  const t = s.def.type;
  if (t === 'object') {
    const out: string[] = [];
    for (const [k, v] of Object.entries(s.shape as Record<string, z.ZodType>)) {
      const p = prefix ? `${prefix}.${k}` : k;
      out.push(p, ...schemaFields(v, p));
    }
    return out;
  }
  if (t === 'array') {
    const inner: any = unwrap(s.def.element);
    return inner.def.type === 'object' ? schemaFields(inner, `${prefix}[]`) : [];
  }
  if (t === 'record') {
    const inner: any = unwrap(s.def.valueType);
    return inner.def.type === 'object' ? schemaFields(inner, `${prefix}.<id>`) : [];
  }
  return [];
}

describe('skill/SKILL.md', () => {
  const { fm, body } = splitFrontMatter(SKILL);

  it('has front matter hosts accept: name fanfold, a description of at most 1024 characters', () => {
    expect(fm.name).toBe('fanfold');
    expect(String(fm.name)).toMatch(/^[a-z0-9-]{1,64}$/);
    expect(typeof fm.description).toBe('string');
    const d = fm.description as string;
    expect(d.length).toBeGreaterThan(200);
    expect(d.length).toBeLessThanOrEqual(1024);
    expect(Object.keys(fm).sort()).toEqual(['description', 'name']);
  });

  it('says when to pick it, and when not', () => {
    const d = (fm.description as string).toLowerCase();
    for (const w of ['audit', 'migration', 'parallel', 'research', 'packages', 'not use it for small']) expect(d, w).toContain(w);
  });

  it('teaches the whole loop', () => {
    for (const w of ['inline', 'Show the user the plan', 'approve: true', 'wait: 50', 'query_workflow', 'resumeRunId', 'fanfold stop', '{{digest.', 'final: true', 'read_only', 'maxConcurrent', 'reference/spec.md']) {
      expect(body, w).toContain(w);
    }
  });

  it('names every tool of the server, with parameters the tools really take', async () => {
    for (const t of TOOL_NAMES) expect(body, t).toContain(`\`${t} {`);
    const server = createServer({ root: tempDir(), cwd: tempDir(), log: () => {} });
    const client = new Client({ name: 't', version: '0' });
    const [a, b] = InMemoryTransport.createLinkedPair();
    await Promise.all([server.connect(b), client.connect(a)]);
    const tools = (await client.listTools()).tools;
    await client.close();
    const params = new Map(tools.map((t) => [t.name, Object.keys((t.inputSchema as { properties?: object }).properties ?? {})]));
    // Every `tool {a, b?, c: …}` written anywhere in the skill or the command must use real parameters.
    const texts = [body, read('.claude-plugin/commands/workflow.md')];
    let seen = 0;
    for (const text of texts) {
      for (const m of text.matchAll(/\b(plan_workflow|run_workflow|workflow_status|query_workflow) \{([^}]*)\}/g)) {
        const known = params.get(m[1]!);
        expect(known, m[1]).toBeDefined();
        for (const part of m[2]!.split(',')) {
          const name = part.trim().replace(/[?:].*$/, '').replace(/"/g, '').trim();
          if (!name) continue;
          expect(known, `${m[0]} uses '${name}'`).toContain(name);
          seen++;
        }
      }
    }
    expect(seen).toBeGreaterThan(15);
  });

  it('has examples that are valid specs', () => {
    const blocks = yamlBlocks(SKILL);
    expect(blocks.length).toBeGreaterThanOrEqual(4);
    for (const b of blocks) {
      const r = plans(parseYaml(b));
      expect(r.ok, `${b}\n${!r.ok && r.error}`).toBe(true);
    }
  });

  it('states the limits as the schema has them', () => {
    const d = LimitsSchema.parse({});
    expect(body).toContain(`\`maxConcurrent\` (1–16, default ${d.maxConcurrent})`);
    expect(body).toContain(`\`maxAgents\` (1–1000, default ${d.maxAgents})`);
    expect(body).toContain(`default \`${d.agentTimeout}\``);
  });
});

describe('skill/reference/spec.md', () => {
  const fields = schemaFields(WorkflowSpecSchema);

  it('derives a real field list from the schema (the check below is not vacuous)', () => {
    expect(fields).toEqual(expect.arrayContaining(['version', 'limits.maxConcurrent', 'agents.<id>.env', 'phases[].summarize.agent', 'phases[].tasks[].dependsOn']));
    expect(fields.length).toBeGreaterThan(30);
  });

  it('documents every field of the schema', () => {
    const missing = fields.filter((f) => !REF.includes(`\`${f.split('.').pop()!.replace('[]', '')}\``));
    expect(missing, 'fields of src/spec/schema.ts missing from skill/reference/spec.md').toEqual([]);
    for (const section of ['## `limits`', '## `defaults`', '## `agents.<id>`', '## `phases[]`', '## `phases[].tasks[]`']) expect(REF).toContain(section);
  });

  it('puts each field in the table of its own object', () => {
    const sectionOf = (f: string) => {
      const parent = f.includes('.') || f.includes('[]') ? f.slice(0, Math.max(f.lastIndexOf('.'), 0)) : '';
      return parent === '' ? '## Top level' : `## \`${parent}\``;
    };
    for (const f of fields) {
      const heading = sectionOf(f);
      if (f.endsWith('summarize.agent')) continue; // written inline as `{agent: <agent id>}` in the phases table
      const start = REF.indexOf(heading + '\n');
      expect(start, `section ${heading} for ${f}`).toBeGreaterThanOrEqual(0);
      const end = REF.indexOf('\n## ', start + 1);
      const section = REF.slice(start, end < 0 ? undefined : end);
      expect(section, `${f} in ${heading}`).toMatch(new RegExp(`^\\| \`${f.split('.').pop()!.replace('[]', '')}\` \\|`, 'm'));
    }
  });

  it('gives every limit its real default and range', () => {
    const defaults = LimitsSchema.parse({}) as Record<string, unknown>;
    const shape = (LimitsSchema as any).shape as Record<string, z.ZodType>;
    for (const [key, def] of Object.entries(defaults)) {
      const row = REF.split('\n').find((l) => l.startsWith(`| \`${key}\` |`));
      expect(row, key).toBeDefined();
      expect(row, `${key} default`).toContain(`\`${String(def)}\``);
      const inner: any = unwrap(shape[key]!);
      if (inner.def.type === 'number') {
        expect(row, `${key} range`).toContain(`${inner.minValue}–${inner.maxValue}`);
      } else {
        // A duration: its lower bound is 0 when the schema takes '0s', else 1 ms; the upper 24 days.
        const min = shape[key]!.safeParse('0s').success ? '0' : '1ms';
        expect(shape[key]!.safeParse('24d').success && !shape[key]!.safeParse('25d').success, `${key} max`).toBe(true);
        expect(row, `${key} range`).toContain(`| ${min}–24d |`);
      }
    }
  });

  it('has a complete example that plans, using every limit', () => {
    const [example] = yamlBlocks(REF);
    const spec = parseYaml(example!);
    expect(Object.keys(spec.limits).sort()).toEqual(Object.keys((LimitsSchema as any).shape).sort());
    const r = plans(spec);
    expect(r.ok, !r.ok ? r.error : '').toBe(true);
  });
});

describe('the /workflow command and the plugin', () => {
  const command = read('.claude-plugin/commands/workflow.md');

  it('ships one command text: the plugin copy and this repo\'s .claude copy are the same', () => {
    expect(read('.claude/commands/workflow.md')).toBe(command);
  });

  it('has front matter Claude Code reads, allows only the read-only tools, and takes $ARGUMENTS', () => {
    const { fm, body } = splitFrontMatter(command);
    expect(typeof fm.description).toBe('string');
    expect(fm['argument-hint']).toBeTruthy();
    const allowed = String(fm['allowed-tools']).split(',').map((s) => s.trim());
    const tools = new Set(allowed.map((a) => a.replace(/^mcp__(fanfold|plugin_fanfold_fanfold)__/, '')));
    expect([...tools].sort()).toEqual(['plan_workflow', 'query_workflow', 'workflow_status']);
    expect(allowed.every((a) => /^mcp__(fanfold|plugin_fanfold_fanfold)__[a-z_]+$/.test(a))).toBe(true);
    expect(body).toContain('$ARGUMENTS');
    expect(body).toContain('stop and wait');
  });

  it('has a plugin manifest whose paths exist', () => {
    const plugin = JSON.parse(read('.claude-plugin/plugin.json'));
    expect(plugin.name).toBe('fanfold');
    expect(plugin.version).toBe(JSON.parse(read('package.json')).version);
    for (const p of plugin.commands) expect(fs.existsSync(path.join(REPO, p)), p).toBe(true);
    for (const p of plugin.skills) expect(fs.existsSync(path.join(REPO, p, 'SKILL.md')), p).toBe(true);
    const server = plugin.mcpServers.fanfold;
    expect(server.command).toBe('node');
    expect(server.args[0]).toBe('${CLAUDE_PLUGIN_ROOT}/.claude-plugin/launch.mjs');
    expect(server.args.slice(1)).toEqual(['serve']);
    expect(fs.existsSync(path.join(REPO, '.claude-plugin/launch.mjs'))).toBe(true);
  });

  it('has a marketplace that lists the plugin from this folder', () => {
    const market = JSON.parse(read('.claude-plugin/marketplace.json'));
    expect(market.name).toBe('fanfold');
    expect(market.owner?.name).toBeTruthy();
    expect(market.plugins).toEqual([expect.objectContaining({ name: 'fanfold', source: './' })]);
  });

  it('ships what the installer and the plugin read (package.json files)', () => {
    const files: string[] = JSON.parse(read('package.json')).files;
    expect(files).toEqual(expect.arrayContaining(['dist', 'skill', '.claude-plugin']));
  });
});

describe('docs/hosts.md: Use it from Claude Code and Codex', () => {
  // The README keeps the short version; the reference moved to docs/hosts.md.
  const section = read('docs/hosts.md');

  it('shows the Codex table exactly as the installer writes it', () => {
    const block = /```toml\n([\s\S]*?)```/.exec(section)![1]!;
    const keys = block.split('\n').filter((l) => / = /.test(l)).map((l) => l.split(' = ')[0]);
    const entries = codexServerEntries({ command: 'n', args: [], notes: [] });
    expect(keys).toEqual(entries.map((e) => e[0]));
    for (const [k, v] of entries) if (typeof v === 'number' || k === 'default_tools_approval_mode') expect(block).toContain(`${k} = ${JSON.stringify(v)}`);
  });

  it('names both hosts, both scopes, the plugin commands and the options', () => {
    for (const w of ['fanfold install claude', '--scope project', 'fanfold install codex', '--dry-run', '--launcher path', '--legacy-skills', 'claude plugin marketplace add', 'claude plugin install fanfold@fanfold', 'CLAUDE_CONFIG_DIR', 'CODEX_HOME']) {
      expect(section, w).toContain(w);
    }
  });
});
