/**
 * Values of secret-looking names in the agents' own `env` (say `API_KEY: sk-…` written in a spec)
 * are stored in run.json as `[REDACTED]`: run.json is read by every front, put into MCP answers and
 * kept for as long as the run is. The owner still has to give the real value to the child, so the
 * values go to `<root>/.secret-env/<runId>.json` instead — a 0600 file beside, never inside, the
 * run folder, read back only by the run's owner. (Secrets belong in `passEnv`, which stores only
 * names; this keeps a spec that put one in `env` working without spreading it.)
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { isSecretName } from '../redact/index.js';
import type { Plan } from '../spec/types.js';
import { SCHEMA_VERSION } from '../store/types.js';
import { writeTextAtomic } from '../store/atomic.js';

/** What replaces such a value in run.json. */
export const SECRET_ENV_PLACEHOLDER = '[REDACTED]';

/** Folder under the store root that holds the side files. */
export const SECRET_ENV_DIR = '.secret-env';

/** The side file: agent name → variable name → value. */
interface SecretEnvFile {
  schemaVersion: typeof SCHEMA_VERSION;
  agents: Record<string, Record<string, string>>;
}

/** The secret-looking values of the plan's agents' `env`, by agent; empty when there are none. */
export function secretEnvOf(plan: Pick<Plan, 'agents'>): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const [agent, def] of Object.entries(plan.agents ?? {})) {
    for (const [name, value] of Object.entries(def.env ?? {})) {
      if (!isSecretName(name) || value === SECRET_ENV_PLACEHOLDER) continue;
      (out[agent] ??= {})[name] = value;
    }
  }
  return out;
}

/** A copy of `plan` for run.json: every secret-looking value of the agents' `env` is the placeholder. */
export function planForDisk<P extends Pick<Plan, 'agents'>>(plan: P): P {
  let agents: Plan['agents'] | undefined;
  for (const [name, def] of Object.entries(plan.agents ?? {})) {
    if (!def.env || !Object.keys(def.env).some(isSecretName)) continue;
    agents ??= { ...plan.agents };
    const env = Object.fromEntries(Object.entries(def.env).map(([k, v]) => [k, isSecretName(k) ? SECRET_ENV_PLACEHOLDER : v]));
    agents[name] = { ...def, env };
  }
  return agents ? { ...plan, agents } : plan;
}

/** Writes the side file of `runId` when the plan has such values (mode 0600, folder 0700). */
export async function writeSecretEnv(root: string, runId: string, plan: Pick<Plan, 'agents'>): Promise<void> {
  const agents = secretEnvOf(plan);
  if (Object.keys(agents).length === 0) return;
  const dir = path.join(root, SECRET_ENV_DIR);
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, `${runId}.json`);
  const body: SecretEnvFile = { schemaVersion: SCHEMA_VERSION, agents };
  // Atomic, fsynced, and its new name synced into the folder (the owner reads it back on resume).
  await writeTextAtomic(file, JSON.stringify(body), { mode: 0o600 });
}

/**
 * A copy of `plan` with the placeholders of its agents' `env` replaced by the values of the side
 * file (what the owner gives its children). A missing side file leaves the placeholders.
 */
export async function restoreSecretEnv(root: string, runId: string, plan: Plan): Promise<Plan> {
  let file: SecretEnvFile;
  try {
    file = JSON.parse(await fs.readFile(path.join(root, SECRET_ENV_DIR, `${runId}.json`), 'utf8')) as SecretEnvFile;
  } catch {
    return plan;
  }
  if (file?.schemaVersion !== SCHEMA_VERSION || !file.agents || typeof file.agents !== 'object') return plan;
  const agents = { ...plan.agents };
  for (const [agent, values] of Object.entries(file.agents)) {
    const def = agents[agent];
    if (!def?.env) continue;
    const env = { ...def.env };
    for (const [name, value] of Object.entries(values)) if (env[name] === SECRET_ENV_PLACEHOLDER) env[name] = value;
    agents[agent] = { ...def, env };
  }
  return { ...plan, agents };
}
