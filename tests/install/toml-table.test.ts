/**
 * The TOML table editor: it sets a few keys of one table in a file people edit by hand, and must
 * leave every other byte alone. Checked byte for byte, and against Python's tomllib (the output
 * must parse and mean the input plus exactly our keys) when it is available.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TomlEditError, readSimpleValue, tomlString, tomlValue, upsertTomlTable, type TomlValue } from '../../src/install/toml-table.js';
import { hasTomlOracle, parseToml, parseTomlAll, type OracleResult } from './toml-oracle.js';

const T = ['mcp_servers', 'fanfold'];
const ENTRIES: Array<[string, TomlValue]> = [
  ['command', '/usr/bin/node'],
  ['args', ['/opt/fanfold/dist/cli/main.js', 'serve']],
  ['startup_timeout_sec', 30],
  ['tool_timeout_sec', 660],
  ['default_tools_approval_mode', 'approve'],
];
const OURS = {
  command: '/usr/bin/node',
  args: ['/opt/fanfold/dist/cli/main.js', 'serve'],
  startup_timeout_sec: 30,
  tool_timeout_sec: 660,
  default_tools_approval_mode: 'approve',
};

/** A config like a real user's: comments everywhere, other servers, sub-tables, tricky values. */
const BUSY = `# Codex config — hand edited
model = "gpt-5.5"   # the default model
approval_policy = "never"
notes = """
[mcp_servers.fanfold]
this header is inside a multi-line string and must not count
"""
literal = '''
[not.a.table]
'''
paths = [
  "a", # first
  'b',
  [1, 2], # nested
]
inline = { a = 1, "b c" = "d", nested = { x = [1, 2] } }
when = 1979-05-27 07:32:00Z
pi = 3.14_15
"quoted key" = 'x'
dotted.key.here = true

[model_providers.local]  # a provider
name = "Local"
base_url = "http://127.0.0.1:8080/v1"

[mcp_servers.other]
command = "other-server"  # keep me
args = ["--flag", "x]y", "#not-a-comment"]

[mcp_servers.other.env]
TOKEN = "abc"

[[profiles.list]]
name = "one"

[[profiles.list]]
name = "two"
`;

function oracleCheck(before: string, after: string, expectOurs: Record<string, unknown>) {
  if (!hasTomlOracle()) return;
  const [a, b] = parseTomlAll([before, after]) as [OracleResult, OracleResult];
  expect(a.ok, `input must be valid TOML: ${(a as { error?: string }).error}`).toBe(true);
  expect(b.ok, `output must be valid TOML: ${(b as { error?: string }).error}\n${after}`).toBe(true);
  if (!a.ok || !b.ok) return;
  const want = structuredClone(a.value);
  want.mcp_servers ??= {};
  want.mcp_servers.fanfold = { ...(want.mcp_servers.fanfold ?? {}), ...expectOurs };
  expect(b.value).toEqual(want);
}

describe('upsertTomlTable: adding the table', () => {
  it('writes the table into an empty file', () => {
    const r = upsertTomlTable('', T, ENTRIES);
    expect(r.text).toBe(
      '[mcp_servers.fanfold]\ncommand = "/usr/bin/node"\nargs = ["/opt/fanfold/dist/cli/main.js", "serve"]\n' +
        'startup_timeout_sec = 30\ntool_timeout_sec = 660\ndefault_tools_approval_mode = "approve"\n',
    );
    expect(r).toMatchObject({ changed: true, createdTable: true, added: ENTRIES.map((e) => e[0]), updated: [], unchanged: [] });
    oracleCheck('', r.text, OURS);
  });

  it('appends to a busy file and leaves every existing byte in place', () => {
    const r = upsertTomlTable(BUSY, T, ENTRIES);
    expect(r.text.startsWith(BUSY)).toBe(true);
    expect(r.text.slice(BUSY.length)).toBe(`\n[mcp_servers.fanfold]\n${ENTRIES.map(([k, v]) => `${k} = ${tomlValue(v)}`).join('\n')}\n`);
    oracleCheck(BUSY, r.text, OURS);
  });

  it('adds a newline and a blank line when the file ends without one', () => {
    const r = upsertTomlTable('model = "x"', T, [['command', 'n']]);
    expect(r.text).toBe('model = "x"\n\n[mcp_servers.fanfold]\ncommand = "n"\n');
    const r2 = upsertTomlTable('model = "x"\n\n', T, [['command', 'n']]);
    expect(r2.text).toBe('model = "x"\n\n[mcp_servers.fanfold]\ncommand = "n"\n');
  });

  it('keeps CRLF line endings', () => {
    const before = 'model = "x"\r\n[mcp_servers.other]\r\ncommand = "o"\r\n';
    const r = upsertTomlTable(before, T, ENTRIES);
    expect(r.text.startsWith(before)).toBe(true);
    expect(r.text.slice(before.length)).not.toMatch(/[^\r]\n/);
    oracleCheck(before, r.text, OURS);
  });

  it('keeps a byte order mark', () => {
    const before = '\ufeffmodel = "x"\n';
    const r = upsertTomlTable(before, T, [['command', 'n']]);
    expect(r.text.startsWith(before)).toBe(true);
  });

  it('adds the table when only a sub-table of it exists (defining the super-table later is valid TOML)', () => {
    const before = '[mcp_servers.fanfold.env]\nFOO = "bar"\n';
    const r = upsertTomlTable(before, T, ENTRIES);
    expect(r.createdTable).toBe(true);
    expect(r.text.startsWith(before)).toBe(true);
    oracleCheck(before, r.text, OURS);
  });

  it('adds the table next to servers that are written with dotted keys', () => {
    const before = 'mcp_servers.other.command = "o"\n';
    const r = upsertTomlTable(before, T, ENTRIES);
    oracleCheck(before, r.text, OURS);
  });
});

describe('upsertTomlTable: an existing table', () => {
  const installed = upsertTomlTable(BUSY, T, ENTRIES).text;

  it('changes nothing when every key already holds its value (idempotent)', () => {
    const r = upsertTomlTable(installed, T, ENTRIES);
    expect(r).toMatchObject({ changed: false, createdTable: false, added: [], updated: [], unchanged: ENTRIES.map((e) => e[0]) });
    expect(r.text).toBe(installed);
  });

  it('counts equal values written differently as unchanged (quotes, escapes, underscores, hex, multi-line arrays)', () => {
    const text = `[mcp_servers.fanfold]
command = '/usr/bin/node'
args = [
  "/opt/fanfold/dist/cli/main.js", # where it lives
  'serve',
]
startup_timeout_sec = 0x1e
tool_timeout_sec = 6_60
default_tools_approval_mode = "\\u0061pprove"
`;
    const r = upsertTomlTable(text, T, ENTRIES);
    expect(r.changed).toBe(false);
    expect(r.unchanged).toHaveLength(5);
  });

  it('replaces changed values in place, keeping trailing comments, other keys and sub-tables', () => {
    const text = `# top
[mcp_servers.fanfold]
command = "/old/node"   # which node
args = ["/old/main.js", "serve"]
enabled = true
tool_timeout_sec = 60
env = { A = "1" }

# about the next table
[mcp_servers.fanfold.tools.run_workflow]
approval_mode = "prompt"

[other]
x = 1
`;
    const r = upsertTomlTable(text, T, ENTRIES);
    expect(r.updated).toEqual(['command', 'args', 'tool_timeout_sec']);
    expect(r.added).toEqual(['startup_timeout_sec', 'default_tools_approval_mode']);
    expect(r.text).toBe(`# top
[mcp_servers.fanfold]
command = "/usr/bin/node"   # which node
args = ["/opt/fanfold/dist/cli/main.js", "serve"]
enabled = true
tool_timeout_sec = 660
env = { A = "1" }
startup_timeout_sec = 30
default_tools_approval_mode = "approve"

# about the next table
[mcp_servers.fanfold.tools.run_workflow]
approval_mode = "prompt"

[other]
x = 1
`);
    oracleCheck(text, r.text, OURS);
  });

  it('replaces a value that spans lines, and one it cannot read (a float), whole', () => {
    const text = '[mcp_servers.fanfold]\nargs = [\n  "a",\n  "b",\n]\ntool_timeout_sec = 60.5\n';
    const r = upsertTomlTable(text, T, ENTRIES);
    expect(r.updated).toEqual(['args', 'tool_timeout_sec']);
    expect(r.text).toContain('args = ["/opt/fanfold/dist/cli/main.js", "serve"]\ntool_timeout_sec = 660\n');
    oracleCheck(text, r.text, OURS);
  });

  it('finds the table under a quoted or spaced header', () => {
    for (const header of ['[mcp_servers."fanfold"]', "[ mcp_servers . 'fanfold' ]", '[mcp_servers.fanfold]   # ours']) {
      const text = `${header}\ncommand = "/usr/bin/node"\n`;
      const r = upsertTomlTable(text, T, ENTRIES);
      expect(r.createdTable, header).toBe(false);
      expect(r.unchanged).toEqual(['command']);
      oracleCheck(text, r.text, OURS);
    }
  });

  it('adds keys right after the header when the table is empty, even at the end of a file without a newline', () => {
    expect(upsertTomlTable('[mcp_servers.fanfold]', T, [['command', 'n']]).text).toBe('[mcp_servers.fanfold]\ncommand = "n"\n');
    expect(upsertTomlTable('[mcp_servers.fanfold]\n[x]\n', T, [['command', 'n']]).text).toBe('[mcp_servers.fanfold]\ncommand = "n"\n[x]\n');
    expect(upsertTomlTable('[mcp_servers.fanfold]\nargs = []', T, [['command', 'n']]).text).toBe('[mcp_servers.fanfold]\nargs = []\ncommand = "n"\n');
  });

  it('warns about enabled = false and leaves it', () => {
    const r = upsertTomlTable('[mcp_servers.fanfold]\nenabled = false\n', T, ENTRIES);
    expect(r.warnings.join()).toMatch(/enabled = false/);
    expect(r.text).toContain('enabled = false');
  });
});

describe('upsertTomlTable: refusals', () => {
  const refuse = (text: string, line: number, pattern: RegExp) => {
    let err: unknown;
    try {
      upsertTomlTable(text, T, ENTRIES);
    } catch (e) {
      err = e;
    }
    expect(err, text).toBeInstanceOf(TomlEditError);
    expect((err as TomlEditError).line, text).toBe(line);
    expect((err as Error).message, text).toMatch(pattern);
  };

  it('refuses the table written as an inline table or with dotted keys', () => {
    refuse('[mcp_servers]\nfanfold = { command = "x" }\n', 2, /inline table/);
    refuse('x = 1\n[mcp_servers]\nother = {}\nfanfold.command = "x"\n', 4, /dotted keys/);
    refuse('mcp_servers.fanfold.command = "x"\n', 1, /dotted keys/);
    refuse('mcp_servers = { other = { command = "x" } }\n', 1, /set as a value/);
  });

  it('refuses arrays of tables and duplicate headers or keys', () => {
    refuse('[[mcp_servers]]\nname = "x"\n', 1, /array of tables/);
    refuse('[[mcp_servers.fanfold]]\n', 1, /array of tables/);
    refuse('[mcp_servers.fanfold]\ncommand = "a"\n[mcp_servers.fanfold]\n', 3, /appears twice/);
    refuse('[mcp_servers.fanfold]\ncommand = "a"\ncommand = "b"\n', 3, /set twice/);
  });

  it('refuses text it cannot follow, naming the line', () => {
    refuse('a = "unterminated\n', 1, /unterminated string/);
    refuse('a = """never closed\n[x]\n', 1, /unterminated multi-line string/);
    refuse('ok = 1\nb = [1, 2\n', 3, /unterminated array|expected ',' or ']'/);
    refuse('[table\n', 1, /close the table header/);
    refuse('k v\n', 1, /expected '='/);
    refuse('a = 1 2\n', 1, /after a complete statement/);
    refuse('a =\n', 1, /expected a value/);
  });
});

describe('TOML values', () => {
  it('has an oracle that rejects invalid TOML (so its checks mean something)', () => {
    if (!hasTomlOracle()) return;
    expect(parseToml('a = ').ok).toBe(false);
    expect(parseToml('[t]\n[t]\n').ok).toBe(false);
    expect(parseToml('[mcp_servers]\nfanfold = {}\n[mcp_servers.fanfold]\n').ok).toBe(false);
  });

  it('writes strings TOML can read back, escaping what it must', () => {
    const samples = ['plain', 'C:\\Program Files\\node.exe', 'quote " here', 'tab\tnew\nline', 'del\x7f', 'ctl\x01', 'ünï 😀', "it's"];
    for (const s of samples) expect(readSimpleValue(tomlString(s)), s).toBe(s);
    expect(tomlString('del\x7f')).toBe('"del\\u007F"');
    expect(() => tomlString('\ud800')).toThrow(/lone surrogate/);
    expect(() => tomlValue(1.5)).toThrow(/integers only/);
    if (hasTomlOracle()) {
      const r = parseToml(samples.map((s, i) => `k${i} = ${tomlString(s)}`).join('\n'));
      expect(r.ok && Object.values(r.value)).toEqual(samples);
    }
  });

  it('reads simple values and gives up on the rest', () => {
    expect(readSimpleValue('"a\\"b"')).toBe('a"b');
    expect(readSimpleValue("'a\\b'")).toBe('a\\b');
    expect(readSimpleValue('-1_000')).toBe(-1000);
    expect(readSimpleValue('0o17')).toBe(15);
    expect(readSimpleValue('0b101')).toBe(5);
    expect(readSimpleValue('[ "a", [1, true], ]')).toEqual(['a', [1, true]]);
    expect(readSimpleValue('[]')).toEqual([]);
    for (const s of ['1.5', '1979-05-27', '{ a = 1 }', '"""x"""', 'nan', '[1.5]', '"\\q"']) expect(readSimpleValue(s), s).toBeUndefined();
  });

  it('round-trips any string through write and read (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme-composite', maxLength: 40 }), (s) => {
        expect(readSimpleValue(tomlString(s))).toBe(s);
      }),
      { numRuns: 300 },
    );
  });

  it('keeps the rest of a file intact whatever other servers hold (property, with the oracle)', () => {
    const safeKey = fc.stringMatching(/^[a-z][a-z0-9_]{0,8}$/);
    const val = fc.oneof(fc.string({ maxLength: 12 }), fc.integer({ min: -1e6, max: 1e6 }), fc.boolean(), fc.array(fc.string({ maxLength: 6 }), { maxLength: 3 }));
    fc.assert(
      fc.property(fc.uniqueArray(safeKey.filter((k) => k !== 'fanfold'), { minLength: 0, maxLength: 4 }), fc.array(fc.tuple(safeKey, val), { maxLength: 4 }), (servers, kvs) => {
        const body = servers
          .map((s) => `[mcp_servers.${s}]\n${[...new Map(kvs).entries()].map(([k, v]) => `${k} = ${tomlValue(v)}  # c`).join('\n')}\n`)
          .join('\n');
        const r = upsertTomlTable(body, T, ENTRIES);
        expect(r.text.startsWith(body)).toBe(true);
        const again = upsertTomlTable(r.text, T, ENTRIES);
        expect(again.changed).toBe(false);
        return true;
      }),
      { numRuns: 150 },
    );
    if (hasTomlOracle()) oracleCheck(BUSY, upsertTomlTable(BUSY, T, ENTRIES).text, OURS);
  });
});
