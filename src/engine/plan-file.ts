/**
 * Turning a spec file into a plan, the one way every entry point (CLI, owner, MCP) does it, so
 * agent resolution and validation never differ between them.
 */
import path from 'node:path';
import { buildPlan, loadSpecFile } from '../spec/index.js';
import type { Plan } from '../spec/types.js';

/** Loads, validates and normalizes a spec file; throws SpecError naming every problem. */
export async function loadPlanFile(file: string): Promise<Plan> {
  const { spec } = await loadSpecFile(path.resolve(file));
  return buildPlan(spec);
}

/** Validates and normalizes a spec given as an object or as YAML/JSON text. */
export function planFromInput(input: unknown): Plan {
  return buildPlan(input);
}
