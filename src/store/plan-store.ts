/**
 * Stored plans: what `plan_workflow` validated, kept under `<root>/.plans/<planId>.json` so a
 * later `run_workflow {planId}` (possibly from another session) runs exactly what was shown to
 * the user. One file per plan, replaced atomically; refining a plan rewrites the same id with a
 * higher `revision`.
 *
 * Why `.plans` and not a run-id-shaped folder: run listings skip every name that is not an id,
 * and a leading dot can never be one, so plans never show up as unreadable runs.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Plan } from '../spec/types.js';
import { SCHEMA_VERSION } from './types.js';
import { StoreError, errnoCode, ioError, isStoreError, quote } from './errors.js';
import { assertId, newRunId } from './ids.js';
import { isInside, safeJoinReal } from './paths.js';
import { readJsonFile, writeJsonAtomic } from './atomic.js';

/** Folder of stored plans under the store root. */
export const PLANS_DIR = '.plans';

/**
 * Largest plan file read back. Why: a spec is at most 2 MiB and its plan a few times that; a file
 * much larger was not written by fanfold and must not be parsed into memory.
 */
export const MAX_PLAN_FILE_BYTES = 32 * 1024 * 1024;

/** `.plans/<planId>.json`. */
export interface StoredPlan {
  schemaVersion: typeof SCHEMA_VERSION;
  planId: string;
  /** 1 for a new plan; +1 each time plan_workflow refines it. */
  revision: number;
  createdAt: string;
  updatedAt: string;
  /** The spec as the host sent it, after YAML/JSON parsing (before normalization). */
  spec: unknown;
  /** The validated, normalized plan. */
  plan: Plan;
}

/**
 * The plans folder, created when missing. Refuses a `.plans` that is a symlink or not a
 * directory: plan files are written there, and a link would send those writes out of the store.
 */
async function plansDir(root: string, create: boolean): Promise<string> {
  const absRoot = path.resolve(root);
  const dir = path.join(absRoot, PLANS_DIR);
  if (create) {
    try {
      await fs.mkdir(dir, { recursive: true });
    } catch (err) {
      throw ioError('creating plans folder', dir, err);
    }
  }
  let st;
  try {
    st = await fs.lstat(dir);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return dir; // nothing stored yet; reads will say not_found
    throw ioError('checking plans folder', dir, err);
  }
  if (st.isSymbolicLink() || !st.isDirectory()) {
    throw new StoreError('path_escape', `store: ${dir} is not a plain directory (a symlink or a file); refusing to use it for plans`);
  }
  // Second lock: the folder must resolve inside the (resolved) root, whatever links sit above it.
  const [realRoot, realDir] = await Promise.all([fs.realpath(absRoot), fs.realpath(dir)]);
  if (!isInside(realRoot, realDir)) throw new StoreError('path_escape', `store: ${dir} resolves outside the store root ${realRoot}`);
  return dir;
}

/** Path of one plan file; the id is checked against the allow-list first. */
async function planFile(root: string, planId: string, create: boolean): Promise<string> {
  assertId('plan', planId);
  return safeJoinReal(await plansDir(root, create), `${planId}.json`);
}

/**
 * Stores a plan and returns the stored record. Without `planId` a fresh id is made. With
 * `planId` the plan refines an earlier one: that plan must exist (StoreError 'not_found'
 * otherwise — a typo must not silently create a second plan) and its revision goes up by one.
 * Two refinements racing on the same id: the last write wins, each write whole.
 */
export async function savePlan(root: string, input: { plan: Plan; spec: unknown; planId?: string }): Promise<StoredPlan> {
  const now = new Date().toISOString();
  let planId: string;
  let revision = 1;
  let createdAt = now;
  if (input.planId !== undefined) {
    const prev = await loadPlan(root, input.planId);
    planId = prev.planId;
    revision = prev.revision + 1;
    createdAt = prev.createdAt;
  } else {
    planId = `p${newRunId()}`;
  }
  const rec: StoredPlan = { schemaVersion: SCHEMA_VERSION, planId, revision, createdAt, updatedAt: now, spec: input.spec, plan: input.plan };
  await writeJsonAtomic(await planFile(root, planId, true), rec, { indent: 0 });
  return rec;
}

/**
 * Reads a stored plan. Throws StoreError 'invalid_id' for an id off the allow-list, 'not_found'
 * for an unknown plan (naming how to get one), 'bad_version' / 'corrupt' for a damaged file.
 */
export async function loadPlan(root: string, planId: string): Promise<StoredPlan> {
  const file = await planFile(root, planId, false);
  let rec: StoredPlan;
  try {
    rec = await readJsonFile<StoredPlan>(file, { kind: 'plan', expectVersion: SCHEMA_VERSION, maxBytes: MAX_PLAN_FILE_BYTES });
  } catch (err) {
    if (isStoreError(err, 'not_found')) {
      throw new StoreError('not_found', `unknown plan ${quote(planId)} in ${path.resolve(root)}: call plan_workflow to make one`, { cause: err });
    }
    throw err;
  }
  if (rec.planId !== planId || typeof rec.plan !== 'object' || rec.plan === null || !Array.isArray(rec.plan.tasks)) {
    throw new StoreError('corrupt', `plan file ${file} does not hold plan ${quote(planId)}`);
  }
  return rec;
}
