/**
 * The spec layer: parse a workflow spec (YAML or JSON), validate it, normalize it into a Plan,
 * and render the plan for a person. Everything else in fanfold consumes the Plan.
 */
export * from './types.js';
export { ID_PATTERN, ID_RULE, TASK_DEP_PATTERN, isId, taskRef, splitTaskDep } from './ids.js';
export {
  WorkflowSpecSchema,
  LimitsSchema,
  AgentSpecSchema,
  PhaseSpecSchema,
  TaskSpecSchema,
  DefaultsSchema,
  RUNNER_KINDS,
  MAX_PROMPT_CHARS,
  MAX_SCHEMA_CHARS,
  JsonSchemaSpec,
  type WorkflowSpec,
  type WorkflowSpecInput,
  type AgentSpec,
  type PhaseSpec,
  type TaskSpec,
} from './schema.js';
export { parseSpecText, loadSpecFile, MAX_SPEC_BYTES, MAX_ALIAS_COUNT } from './parse.js';
export { buildPlan, validateSpec, type BuildOptions, type ValidationResult } from './normalize.js';
export type { ResolveAgent } from './agents.js';
export { topologicalOrder, findCycles, criticalPath, formatCycle, type DepGraph, type TopoResult } from './graph.js';
export { taskKey, canonicalJson, KEY_VERSION, KEY_LENGTH, type TaskKeyInput } from './key.js';
export { parseDuration, formatDuration, MAX_DURATION_MS } from './duration.js';
export { formatPath, MAX_ISSUES } from './issues.js';
export { renderPlan } from './render.js';
export { estimatePlan, renderEstimate, planCost, renderPlanHeadline, summarizerCount, fmtTokens, LARGE_WORKFLOW_AGENTS, LARGE_WORKFLOW_TOKENS, type PlanEstimate, type PlanCost } from './estimate.js';
