/**
 * Refs name one task's output across the store: `<runId>/<phaseId>/<taskId>`. They arrive from
 * hosts and sub-agents, so they are parsed strictly: each part must pass the store's id
 * allow-list before it is used to build any path.
 */
import { StoreError, assertId } from '../store/index.js';
import { SearchError } from './errors.js';

/** URI prefix under which the MCP layer exposes agent outputs. */
export const REF_URI_PREFIX = 'fanfold://runs/';

/** Longest ref accepted (three 64-char ids, the URI form's extra words, separators). */
const MAX_REF_CHARS = 256;

/** The parts of a ref, each a valid store id. */
export interface RefParts {
  runId: string;
  phaseId: string;
  taskId: string;
}

const EXPECTED = "expected a ref '<runId>/<phaseId>/<taskId>' (or 'fanfold://runs/<runId>/agents/<phaseId>/<taskId>')";

function show(value: unknown): string {
  if (typeof value !== 'string') return value === null ? 'null' : typeof value;
  const shown = JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
  return shown;
}

/** The ref string of a task: `<runId>/<phaseId>/<taskId>`. */
export function formatRef(parts: RefParts): string {
  return `${parts.runId}/${parts.phaseId}/${parts.taskId}`;
}

/** The resource URI of a task's output: `fanfold://runs/<runId>/agents/<phaseId>/<taskId>`. */
export function refToUri(parts: RefParts): string {
  return `${REF_URI_PREFIX}${parts.runId}/agents/${parts.phaseId}/${parts.taskId}`;
}

/**
 * Parses `<runId>/<phaseId>/<taskId>` or its URI form. Throws SearchError 'bad_ref' naming what
 * was expected and what arrived: wrong type, NUL bytes, too many or too few parts, or a part off
 * the id allow-list (`..`, `.`, empty, spaces, non-ASCII…).
 */
export function parseRef(ref: unknown): RefParts {
  if (typeof ref !== 'string') throw new SearchError('bad_ref', `${EXPECTED}, got ${show(ref)}`);
  if (ref.length === 0) throw new SearchError('bad_ref', `${EXPECTED}, got an empty string`);
  if (ref.length > MAX_REF_CHARS) throw new SearchError('bad_ref', `${EXPECTED} of at most ${MAX_REF_CHARS} characters, got ${ref.length}`);
  // Checked apart from the allow-list so the message says what is wrong; the allow-list would refuse it too.
  if (ref.includes('\0')) throw new SearchError('bad_ref', `${EXPECTED}, got ${show(ref)} (contains a NUL byte)`);
  let parts: string[];
  if (ref.startsWith(REF_URI_PREFIX)) {
    const rest = ref.slice(REF_URI_PREFIX.length).split('/');
    if (rest.length !== 4 || rest[1] !== 'agents') throw new SearchError('bad_ref', `${EXPECTED}, got ${show(ref)}`);
    parts = [rest[0]!, rest[2]!, rest[3]!];
  } else {
    parts = ref.split('/');
    if (parts.length !== 3) {
      throw new SearchError('bad_ref', `${EXPECTED}, got ${show(ref)} (${parts.length} part${parts.length === 1 ? '' : 's'})`);
    }
  }
  const kinds = ['run', 'phase', 'task'] as const;
  const ids = parts.map((part, i) => {
    try {
      return assertId(kinds[i]!, part);
    } catch (err) {
      if (err instanceof StoreError) throw new SearchError('bad_ref', `${EXPECTED}, got ${show(ref)}: ${err.message.replace(/^store: /, '')}`, { cause: err });
      throw err;
    }
  });
  return { runId: ids[0]!, phaseId: ids[1]!, taskId: ids[2]! };
}
