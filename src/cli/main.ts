#!/usr/bin/env node
/**
 * `fanfold` — the command line: the same capabilities as the MCP tools, for a person and for
 * scripts (`--json`). Exit codes: 0 completed (or nothing to report), 1 the run ended otherwise,
 * 2 bad usage, a bad spec or an unknown run.
 */
import { Command, CommanderError, Option } from 'commander';
import { UsageError, errorMessage, exitCodeFor, printError } from './errors.js';
import { registerRunCommands } from './run.js';
import { registerControlCommands } from './control.js';
import { registerInspectCommands } from './inspect.js';
import { registerMemoryCommands } from './memory.js';
import { registerServeCommand } from './serve.js';
import { registerInstallCommand } from './install.js';
import { registerUiCommand } from './ui.js';
import { guardOutput } from './terminal.js';

/** Builds the program; `main` parses argv with it. Exported so tests can drive it in-process. */
export function buildProgram(): Command {
  const program = new Command();
  program
    .name('fanfold')
    .description('Dynamic workflows: fan a plan out to many sub-agents, keep every output on disk, fold back digests.')
    .version('0.1.0')
    .addOption(new Option('--store <dir>', 'run store folder (default: $FANFOLD_STORE or ./.agent_workflows)'))
    .showHelpAfterError('(run fanfold --help for usage)')
    .exitOverride();
  registerRunCommands(program);
  registerControlCommands(program);
  registerInspectCommands(program);
  registerMemoryCommands(program);
  registerServeCommand(program);
  registerInstallCommand(program);
  registerUiCommand(program);
  for (const cmd of program.commands) cmd.exitOverride();
  return program;
}

/**
 * Whether the command line asks for JSON: errors then go to stdout as `{"error": {message, code}}`.
 * Only options before a `--` count (what follows is someone else's argv).
 */
export function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).includes('--json');
}

/** The JSON error document of `--json` commands; `code` is the process exit code. */
export function jsonError(message: string, code: number): string {
  return JSON.stringify({ error: { message, code } }, null, 2) + '\n';
}

async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  const json = wantsJson(argv.slice(2));
  let commanderText = '';
  if (json) {
    // Commander's own usage errors become the JSON error instead of text on stderr.
    const capture = (c: Command) => c.configureOutput({ writeErr: (t) => void (commanderText += t), outputError: (t) => void (commanderText += t) });
    const all = (c: Command): Command[] => [c, ...c.commands.flatMap(all)];
    for (const c of all(program)) capture(c);
  }
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version end here too, with exit code 0.
      const code = e.exitCode === 0 ? 0 : 2;
      if (json && code !== 0) process.stdout.write(jsonError(e.message.replace(/^error: /, ''), code));
      else if (commanderText) process.stderr.write(commanderText);
      return code;
    }
    const code = exitCodeFor(e);
    if (json) process.stdout.write(jsonError(errorMessage(e), code));
    else printError(e);
    return code;
  }
}

guardOutput();
main(process.argv).then((code) => {
  process.exitCode = code;
});

export { UsageError };
