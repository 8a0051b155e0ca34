/**
 * The result of planning an install for one host: the file changes and what to tell the user.
 */
import type { FileChange } from './changes.js';

/** Hosts fanfold installs into. */
export type Host = 'claude' | 'codex';

/** An install, computed but not applied. */
export interface InstallPlan {
  host: Host;
  /** 'user' or 'project' (Claude Code); 'user' for Codex. */
  scope: 'user' | 'project';
  /** The server command registered. */
  server: { command: string; args: string[] };
  changes: FileChange[];
  /** Things to know (warnings, left-as-is entries). */
  notes: string[];
  /** What to do once it is installed. */
  nextSteps: string[];
  /** The user's home, for showing paths as `~/…`. */
  home: string;
}

/** The MCP server's name in every host config. */
export const SERVER_NAME = 'fanfold';
