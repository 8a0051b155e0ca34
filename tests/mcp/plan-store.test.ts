/**
 * The plan store (`<root>/.plans/<planId>.json`): ids checked before paths, refinement only of
 * existing plans, versioned files, and refusal of symlinked or damaged storage.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildPlan } from '../../src/spec/index.js';
import { RunStore, StoreError } from '../../src/store/index.js';
import { PLANS_DIR, loadPlan, savePlan } from '../../src/store/plan-store.js';
import { commandSpec, tempDir } from './helpers.js';

const plan = (n = 2) => buildPlan(commandSpec(n));

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(StoreError);
    return (e as StoreError).code;
  }
  return 'no error';
}

describe('plan store', () => {
  it('saves a new plan under a fresh id and reads it back', async () => {
    const root = path.join(tempDir(), 'store');
    const spec = commandSpec(2);
    const saved = await savePlan(root, { plan: plan(), spec });
    expect(saved.planId).toMatch(/^p[a-z0-9]{12}$/);
    expect(saved.revision).toBe(1);
    const back = await loadPlan(root, saved.planId);
    expect(back).toEqual(saved);
    expect(back.spec).toEqual(spec);
    const onDisk = fs.readdirSync(path.join(root, PLANS_DIR));
    expect(onDisk).toEqual([`${saved.planId}.json`]); // no temp files left behind
  });

  it('refines an existing plan: same id, revision + 1, createdAt kept', async () => {
    const root = tempDir();
    const first = await savePlan(root, { plan: plan(2), spec: 1 });
    await new Promise((r) => setTimeout(r, 5));
    const second = await savePlan(root, { plan: plan(3), spec: 2, planId: first.planId });
    expect(second.planId).toBe(first.planId);
    expect(second.revision).toBe(2);
    expect(second.createdAt).toBe(first.createdAt);
    expect(second.updatedAt > first.updatedAt).toBe(true);
    expect((await loadPlan(root, first.planId)).plan.agentCount).toBe(3);
  });

  it('refuses to refine a plan that does not exist', async () => {
    const root = tempDir();
    expect(await code(savePlan(root, { plan: plan(), spec: 0, planId: 'pmissing' }))).toBe('not_found');
    expect(fs.existsSync(path.join(root, PLANS_DIR, 'pmissing.json'))).toBe(false);
  });

  it.each(['../x', '..', 'a/b', '', ' p', 'p.json', 'x'.repeat(65), 'p\u0000', '-rf'])('refuses plan id %j', async (id) => {
    const root = tempDir();
    expect(await code(loadPlan(root, id))).toBe('invalid_id');
    expect(await code(savePlan(root, { plan: plan(), spec: 0, planId: id }))).toBe('invalid_id');
  });

  it('refuses a .plans folder that is a symlink out of the store', async () => {
    const root = tempDir();
    const outside = tempDir();
    fs.symlinkSync(outside, path.join(root, PLANS_DIR));
    expect(await code(savePlan(root, { plan: plan(), spec: 0 }))).toBe('path_escape');
    expect(fs.readdirSync(outside)).toEqual([]);
  });

  it('refuses a plan file that is a symlink', async () => {
    const root = tempDir();
    const saved = await savePlan(root, { plan: plan(), spec: 0 });
    const file = path.join(root, PLANS_DIR, `${saved.planId}.json`);
    const elsewhere = path.join(tempDir(), 'x.json');
    fs.renameSync(file, elsewhere);
    fs.symlinkSync(elsewhere, file);
    expect(await code(loadPlan(root, saved.planId))).toBe('path_escape');
    expect(await code(savePlan(root, { plan: plan(), spec: 0, planId: saved.planId }))).toBe('path_escape');
  });

  it('refuses damaged files and other schema versions loudly', async () => {
    const root = tempDir();
    const saved = await savePlan(root, { plan: plan(), spec: 0 });
    const file = path.join(root, PLANS_DIR, `${saved.planId}.json`);
    fs.writeFileSync(file, '{"schemaVersion": 1, "planId": "');
    expect(await code(loadPlan(root, saved.planId))).toBe('corrupt');
    fs.writeFileSync(file, JSON.stringify({ ...saved, schemaVersion: 2 }));
    expect(await code(loadPlan(root, saved.planId))).toBe('bad_version');
    fs.writeFileSync(file, JSON.stringify({ ...saved, planId: 'pother' }));
    expect(await code(loadPlan(root, saved.planId))).toBe('corrupt');
    fs.writeFileSync(file, JSON.stringify({ ...saved, plan: null }));
    expect(await code(loadPlan(root, saved.planId))).toBe('corrupt');
  });

  it('stays out of the run listing', async () => {
    const root = tempDir();
    await savePlan(root, { plan: plan(), spec: 0 });
    expect(await RunStore.listRuns(root)).toEqual([]);
  });

  it('keeps concurrent saves whole (atomic replace)', async () => {
    const root = tempDir();
    const first = await savePlan(root, { plan: plan(1), spec: 0 });
    await Promise.all(Array.from({ length: 10 }, (_, i) => savePlan(root, { plan: plan(i + 1), spec: i, planId: first.planId })));
    const back = await loadPlan(root, first.planId);
    expect(back.revision).toBeGreaterThanOrEqual(2);
    expect(back.plan.tasks.length).toBe(back.plan.agentCount);
    expect(fs.readdirSync(path.join(root, PLANS_DIR))).toEqual([`${first.planId}.json`]);
  });
});
