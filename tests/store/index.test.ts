import { describe, expect, it } from 'vitest';
import * as store from '../../src/store/index.js';

describe('store public API', () => {
  it('exports what the other layers import', () => {
    for (const name of [
      // used by engine/, cli/, search/ today
      'RunStore',
      'acquireLease',
      'readLease',
      'leaseState',
      'newRunId',
      'assertId',
      'resolveStoreRoot',
      'StoreError',
      'readJsonFile',
      'writeJsonAtomic',
      // the rest of the surface
      'Lease',
      'Journal',
      'readEvents',
      'readJournal',
      'AtomicJsonFile',
      'safeJoin',
      'safeJoinReal',
      'SafeRoot',
      'ID_PATTERN',
      'FILE_NAME_PATTERN',
      'isId',
      'isFileName',
      'assertFileName',
      'writeTextAtomic',
      'agentFileName',
      'parseAgentFileName',
      'SCHEMA_VERSION',
    ]) {
      expect(store, name).toHaveProperty(name);
    }
  });

  it('re-exports the schema version of types.ts', () => {
    expect(store.SCHEMA_VERSION).toBe(1);
  });

  it('file-name constants match the documented layout', () => {
    expect([store.RUN_FILE, store.EVENTS_FILE, store.AGENTS_DIR, store.INPUTS_DIR, store.LEASE_FILE, store.CONTROL_FILE, store.INDEX_FILE]).toEqual([
      'run.json',
      'events.jsonl',
      'agents',
      'inputs',
      'lease.json',
      'control.json',
      'index.json',
    ]);
    expect(store.DEFAULT_STORE_DIR).toBe('.agent_workflows');
    expect(store.STORE_ENV).toBe('FANFOLD_STORE');
    expect(store.DEFAULT_LEASE_TTL_MS).toBe(10_000);
  });
});
