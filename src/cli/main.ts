#!/usr/bin/env node
/**
 * `fanfold` — the command line: the same capabilities as the MCP tools, for a person and for
 * scripts (`--json`). Exit codes: 0 completed (or nothing to report), 1 the run ended otherwise,
 * 2 bad usage, a bad spec or an unknown run.
 */
import { Command, CommanderError, Option } from 'commander';
import { UsageError, exitCodeFor, printError } from './errors.js';
import { registerRunCommands } from './run.js';
import { registerInspectCommands } from './inspect.js';
import { registerMemoryCommands } from './memory.js';
import { registerServeCommand } from './serve.js';
import { registerInstallCommand } from './install.js';

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
  registerInspectCommands(program);
  registerMemoryCommands(program);
  registerServeCommand(program);
  registerInstallCommand(program);
  for (const cmd of program.commands) cmd.exitOverride();
  return program;
}

async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version end here too, with exit code 0.
      return e.exitCode === 0 ? 0 : 2;
    }
    printError(e);
    return exitCodeFor(e);
  }
}

main(process.argv).then((code) => {
  process.exitCode = code;
});

export { UsageError };
