/**
 * Where a running dashboard records its URL, so `workflow_status` can offer it to the person
 * (`dashboard: <url>`) while it runs.
 *
 * Why outside the project folder: the URL carries the dashboard's access token, and sub-agents
 * can read the project (and the store inside it). The file lives in the user's state folder
 * (`$XDG_STATE_HOME/fanfold/dashboards`, else `~/.local/state/fanfold/dashboards`; tests point
 * `FANFOLD_UI_DIR` elsewhere), in a folder only the user may enter (0700), in a file only the user
 * may read (0600). One file per store, named by a hash of the store's path.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { isInside, processAlive, writeTextAtomic } from '../store/index.js';

/** Environment variable that names the folder of dashboard URL files (tests, unusual homes). */
export const UI_DIR_ENV = 'FANFOLD_UI_DIR';

/** Contents of a dashboard URL file, schema version 1. */
export interface DashboardFile {
  schemaVersion: 1;
  /** The URL with its token. */
  url: string;
  port: number;
  /** The `fanfold ui` process serving it. */
  pid: number;
  /** Absolute store root it serves. */
  root: string;
  startedAt: string;
}

/** The folder of dashboard URL files for this user. */
export function dashboardDir(env: NodeJS.ProcessEnv = process.env): string {
  const given = env[UI_DIR_ENV]?.trim();
  if (given) return path.resolve(given);
  const state = env.XDG_STATE_HOME?.trim();
  const base = state && path.isAbsolute(state) ? state : path.join(os.homedir(), '.local', 'state');
  return path.join(base, 'fanfold', 'dashboards');
}

/** The URL file of the dashboard serving store `root`. */
export function dashboardFile(root: string, env: NodeJS.ProcessEnv = process.env): string {
  const id = createHash('sha256').update(path.resolve(root)).digest('hex').slice(0, 24);
  return path.join(dashboardDir(env), `${id}.json`);
}

/**
 * Writes the URL file for `info.root`. Refuses a location inside `projectDir` or inside the store
 * (where sub-agents read), and makes sure the folder is the user's alone.
 */
export async function writeDashboardFile(info: Omit<DashboardFile, 'schemaVersion'>, projectDir: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const file = dashboardFile(info.root, env);
  const dir = path.dirname(file);
  for (const inside of [path.resolve(projectDir), path.resolve(info.root)]) {
    if (isInside(inside, dir)) {
      throw new Error(`ui: refusing to write the dashboard URL (it holds the access token) to ${dir}, inside ${inside} where sub-agents can read it; set ${UI_DIR_ENV} to a folder outside the project`);
    }
  }
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  // Why chmod after mkdir: mkdir leaves an existing folder's mode alone, and the umask may widen none but narrow it.
  await fs.chmod(dir, 0o700);
  const body: DashboardFile = { schemaVersion: 1, ...info };
  await writeTextAtomic(file, JSON.stringify(body, null, 2) + '\n', { mode: 0o600 });
  await fs.chmod(file, 0o600);
  return file;
}

/** Removes the URL file of `root`, if it is still this process's. */
export async function removeDashboardFile(root: string, pid = process.pid, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const file = dashboardFile(root, env);
  const cur = await readFileInfo(file);
  // Why check the pid: a second dashboard on the same store may have replaced the file since.
  if (cur && cur.pid !== pid) return;
  await fs.rm(file, { force: true });
}

async function readFileInfo(file: string): Promise<DashboardFile | undefined> {
  try {
    const v = JSON.parse(await fs.readFile(file, 'utf8')) as Partial<DashboardFile>;
    if (v.schemaVersion !== 1 || typeof v.url !== 'string' || typeof v.pid !== 'number' || typeof v.root !== 'string') return undefined;
    return v as DashboardFile;
  } catch {
    return undefined;
  }
}

/**
 * The URL of a dashboard serving `root` now, or undefined: the file must exist, name this store
 * and a live process on this host.
 */
export async function readDashboardUrl(root: string, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  const info = await readFileInfo(dashboardFile(root, env));
  if (!info || path.resolve(info.root) !== path.resolve(root)) return undefined;
  return processAlive(info.pid) ? info.url : undefined;
}
