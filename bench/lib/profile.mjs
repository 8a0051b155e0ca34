/**
 * CPU profiling of one piece of a benchmark through node:inspector (the same profile
 * `node --cpu-prof` writes, but around one call only), and a flat summary of where it went.
 */
import { Session } from 'node:inspector/promises';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';

/** Runs `fn` under the CPU profiler; writes the profile to `file` (open it in Chrome DevTools). */
export async function profiled(file, fn) {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
  let result;
  try {
    result = await fn();
  } finally {
    const { profile } = await session.post('Profiler.stop');
    session.disconnect();
    await writeFile(file, JSON.stringify(profile));
    result = { result, profile };
  }
  return result;
}

/**
 * Self time per function and per source file of a profile: { total, idle, byFunction, byFile },
 * lists of { name, ms } largest first. `(idle)` is time the thread waited (I/O, timers).
 */
export function flatProfile(profile) {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i];
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
  }
  const byFunction = new Map();
  const byFile = new Map();
  let total = 0;
  let idle = 0;
  for (const [id, ms] of self) {
    const cf = nodes.get(id).callFrame;
    total += ms;
    if (cf.functionName === '(idle)') idle += ms;
    const file = cf.url ? shortUrl(cf.url) : cf.functionName;
    const fn = `${cf.functionName || '(anonymous)'} ${file}${cf.url ? `:${cf.lineNumber + 1}` : ''}`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + ms);
    byFile.set(file, (byFile.get(file) ?? 0) + ms);
  }
  const list = (m) => [...m].map(([name, ms]) => ({ name, ms })).sort((a, b) => b.ms - a.ms);
  return { total, idle, byFunction: list(byFunction), byFile: list(byFile) };
}

function shortUrl(url) {
  const p = url.replace(/^file:\/\//, '');
  const i = p.indexOf('/node_modules/');
  if (i >= 0) return p.slice(i + 1);
  const d = p.indexOf('/dist/');
  if (d >= 0) return p.slice(d + 1);
  return url.startsWith('node:') ? url : path.basename(p);
}
