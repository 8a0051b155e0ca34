/**
 * Turning failures into tool answers a host model can act on: what was wrong, and how to fix the
 * call. Misuse the host can correct comes back as `isError: true`; only protocol misuse throws.
 */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { SpecError } from '../spec/types.js';
import { StoreError } from '../store/errors.js';
import { SearchError } from '../search/errors.js';
import { errorResult } from './answer.js';

/** A mistake in a tool call that the handler found itself; its message already says how to fix it. */
export class ToolInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ToolInputError';
  }
}

/** Most spec issues listed in an answer (a SpecError carries at most 50 already). */
const MAX_LISTED_ISSUES = 50;

/** Text listing a SpecError's issues with their paths, one per line. */
export function specIssuesText(err: SpecError): string {
  const lines = err.issues.slice(0, MAX_LISTED_ISSUES).map((i) => `- ${i.path || '(spec)'}: ${i.message}`);
  if (err.issues.length > MAX_LISTED_ISSUES) lines.push(`- … and ${err.issues.length - MAX_LISTED_ISSUES} more`);
  return lines.join('\n');
}

/**
 * The answer for an error thrown while serving `tool`. `hint` adds what to do next for errors
 * that do not explain themselves (e.g. where to find run ids).
 */
export function toolError(tool: string, err: unknown, hint?: string): CallToolResult {
  if (err instanceof SpecError) {
    return errorResult(
      `${tool}: the workflow spec is invalid (${err.issues.length} ${err.issues.length === 1 ? 'issue' : 'issues'}):\n` +
        `${specIssuesText(err)}\n` +
        'Fix each path above in the spec and call again (pass the same planId to plan_workflow to refine a plan).',
    );
  }
  if (err instanceof ToolInputError) return errorResult(`${tool}: ${err.message}`);
  if (err instanceof StoreError || err instanceof SearchError) {
    const extra = hint ?? defaultHint(err);
    return errorResult(`${tool}: ${err.message}${extra ? `\n${extra}` : ''}${err.retryable ? '\n(This may be temporary: trying again later can help.)' : ''}`);
  }
  const msg = err instanceof Error ? err.message : String(err);
  return errorResult(`${tool}: ${msg}${hint ? `\n${hint}` : ''}`);
}

function defaultHint(err: StoreError | SearchError): string | undefined {
  switch (err.code) {
    case 'invalid_id':
    case 'bad_ref':
      return 'Use the ids exactly as fanfold returned them (workflow_status without runId lists the recent runs).';
    case 'unknown_run':
      return 'Call workflow_status without runId to list the recent runs and their ids.';
    case 'bad_query':
    case 'bad_option':
      return 'Adjust the query or options as described and call again.';
    default:
      return undefined;
  }
}
